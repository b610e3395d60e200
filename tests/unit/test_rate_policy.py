"""The rate policy as settings read it: a list of windows, and the older single-window variables."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from render_service.models.rates import RateWindow, parse_rate_windows
from render_service.settings import Settings

REQUIRED = {"TABLE_NAME": "t", "BUCKET_NAME": "b"}


def settings(**env: str) -> Settings:
    return Settings.model_validate(REQUIRED | env)


def test_the_default_stays_five_an_hour() -> None:
    assert settings().rate_limits == (RateWindow(limit=5, seconds=3600),)


def test_rate_limits_is_a_json_list_of_windows_kept_shortest_first() -> None:
    windows = [{"limit": 20, "seconds": 86400}, {"limit": 5, "seconds": 3600}]
    assert settings(RATE_LIMITS=json.dumps(windows)).rate_limits == (
        RateWindow(limit=5, seconds=3600),
        RateWindow(limit=20, seconds=86400),
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RATE_LIMIT_RENDERS": "7"}, RateWindow(limit=7, seconds=3600)),
        ({"RATE_LIMIT_WINDOW_SECONDS": "86400"}, RateWindow(limit=5, seconds=86400)),
        ({"RATE_LIMIT_RENDERS": "5", "RATE_LIMIT_WINDOW_SECONDS": "86400"}, RateWindow(limit=5, seconds=86400)),
    ],
)
def test_the_older_single_window_variables_still_make_one_window(env: dict[str, str], expected: RateWindow) -> None:
    assert settings(**env).rate_limits == (expected,)


def test_both_the_list_and_the_older_variables_is_refused_at_cold_start() -> None:
    with pytest.raises(ValidationError, match="not both"):
        settings(RATE_LIMITS='[{"limit": 5, "seconds": 3600}]', RATE_LIMIT_RENDERS="5")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[]", "at least one window"),
        ("5/hour", "JSON list"),
        ('[{"limit": 1, "seconds": 60}, {"limit": 2, "seconds": 60}]', "may appear once"),
        ('[{"limit": 0, "seconds": 60}]', "greater than or equal to 1"),
        ('[{"limit": 1, "seconds": 0}]', "greater than or equal to 1"),
        ('[{"limit": 1}]', "Field required"),
        ('{"limit": 1, "seconds": 60}', "tuple"),
    ],
)
def test_a_bad_policy_names_the_variable_and_the_rule(raw: str, message: str) -> None:
    with pytest.raises(ValidationError, match="RATE_LIMITS") as refused:
        settings(RATE_LIMITS=raw)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(3600, "hour"), (86400, "day"), (6 * 3600, "6 hours"), (7 * 86400, "7 days"), (90, "90 seconds"), (60, "minute")],
)
def test_a_window_is_described_as_a_person_says_it(seconds: int, said: str) -> None:
    assert RateWindow(limit=3, seconds=seconds).describe() == f"3 renders per {said}"


def test_a_window_is_aligned_to_the_epoch() -> None:
    day = RateWindow(limit=1, seconds=86400)
    assert day.bounds(1_700_006_400 + 5) == (1_700_006_400, 1_700_006_400 + 86400)
    assert parse_rate_windows([{"limit": 1, "seconds": 86400}]) == (day,)
