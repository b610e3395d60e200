"""The operator CLI grants credits through the same ledger as renders."""

from __future__ import annotations

from typing import Any

import pytest

from infra.admin import main

TABLE = "renders-test"


def test_grant_then_read_the_balance(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grant-credits", "--table", TABLE, "--user", "carol", "--amount", "25", "--reason", "support #1"]) == 0
    assert capsys.readouterr().out.strip() == "carol: balance 125"
    main(["grant-credits", "--table", TABLE, "--user", "carol", "--amount", "-5", "--reason", "correction"])
    main(["balance", "--table", TABLE, "--user", "carol"])
    assert capsys.readouterr().out.strip().splitlines()[-1] == "carol: balance 120"


def test_arguments_are_required(aws: Any) -> None:
    with pytest.raises(SystemExit):
        main(["grant-credits", "--table", TABLE, "--user", "carol"])
