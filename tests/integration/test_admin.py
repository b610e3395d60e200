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


# --- the operator's view of renders ------------------------------------------------------

BUCKET = "renders-test-bucket"
BUS = "renders-test-bus"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:RenderWorkflow"
WHERE = ["--table", TABLE]
WORKFLOW = [*WHERE, "--state-machine-arn", MACHINE_ARN]
CANCEL = [*WORKFLOW, "--bucket", BUCKET, "--event-bus", BUS]


def _admit(user: str, subject: str) -> str:
    """A render admitted as the API admits one (rate window, credits, job), its workflow not started."""
    import uuid

    from render_service.logic import pricing
    from render_service.models.jobs import RenderJob
    from render_service.models.requests import parse_request
    from render_service.service import service

    svc = service()
    request = parse_request(
        {
            "subject": {"type": "movie", "id": subject},
            "timeline": {"scenes": [{"type": "clip", "src": f"s3://{BUCKET}/inputs/{user}/a.mp4", "duration": 30}]},
        }
    )
    job = RenderJob(
        render_id=str(uuid.uuid4()),
        user_id=user,
        request=request,
        cost=pricing.cost(request, pricing.duration_bound(request), svc.settings),
    )
    svc.accounting.admit(job)
    return job.render_id


def test_active_lists_every_users_active_renders_newest_first(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    alices = _admit("alice", "m1")
    bobs = _admit("bob", "m2")
    assert main(["active", *WHERE]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["RENDER", "USER", "SUBJECT", "ENGINE", "STATUS", "PHASE", "PROGRESS", "AGE"]
    assert [row.split()[:7] for row in rows] == [
        [bobs, "bob", "movie:m2", "ffmpeg", "queued", "queued", "0%"],
        [alices, "alice", "movie:m1", "ffmpeg", "queued", "queued", "0%"],
    ]
    assert main(["active", *WHERE, "--limit", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[1].split()[0] == bobs
    assert out[-1].startswith("more: --cursor ")


def test_show_gives_the_execution_console_link(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    render_id = _admit("alice", "m1")
    assert main(["show", render_id, *WORKFLOW]) == 0
    view = json.loads(capsys.readouterr().out)
    assert (view["userId"], view["status"]) == ("alice", "queued")
    assert view["consoleUrl"].endswith(
        f"#/v2/executions/details/{MACHINE_ARN.replace('stateMachine', 'execution')}:{render_id}"
    )


def test_cancel_refunds_once_and_announces_once(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    render_id = _admit("alice", "m1")
    main(["balance", *WHERE, "--user", "alice"])
    assert capsys.readouterr().out.strip() == "alice: balance 99"
    assert main(["cancel", render_id, *CANCEL]) == 0
    assert capsys.readouterr().out.strip() == f"{render_id}: cancelled (user alice, refunded)"
    assert main(["cancel", render_id, *CANCEL]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("admin: error: RENDER_ALREADY_FINISHED")
    main(["balance", *WHERE, "--user", "alice"])
    assert capsys.readouterr().out.strip() == "alice: balance 100"
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Cancelled"]
    assert main(["renders", *WHERE, "--user", "alice", "--status", "cancelled"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[1].split()[:5] == [
        render_id,
        "alice",
        "movie:m1",
        "ffmpeg",
        "cancelled",
    ]


def test_cancel_needs_the_workflow_and_the_bus(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("STATE_MACHINE_ARN", "EVENT_BUS_NAME"):
        monkeypatch.delenv(variable)
    with pytest.raises(SystemExit):
        main(["cancel", "r1", *WHERE, "--bucket", BUCKET])
