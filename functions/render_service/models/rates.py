"""The render rate policy: a list of fixed windows, each `{limit, seconds}` (5 an hour, 20 a day).

One home for the rule, read by the functions' settings (`RATE_LIMITS`, JSON) and by the CDK app
(context `rateLimits`), so a policy the functions would refuse never deploys.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

# Every window is one more item in the admission transaction (DynamoDB allows 100).
MAX_RATE_WINDOWS = 5
MAX_WINDOW_SECONDS = 366 * 86400
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


class RateWindow(BaseModel):
    """At most `limit` renders per user in each fixed window of `seconds` (aligned to the epoch, so
    86400 is a UTC day)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(ge=1, le=1_000_000, description="Renders admitted per window.")
    seconds: int = Field(ge=1, le=MAX_WINDOW_SECONDS, description="Window length in seconds.")

    def bounds(self, at: int) -> tuple[int, int]:
        """The start and end (epoch seconds) of the window holding `at`."""
        start = at - at % self.seconds
        return start, start + self.seconds

    @property
    def span(self) -> str:
        """`hour`, `day`, `6 hours`, `90 seconds`: the window as a person says it."""
        for unit, name in _UNITS:
            if self.seconds % unit == 0:
                count = self.seconds // unit
                return name if count == 1 else f"{count} {name}s"
        raise AssertionError("unreachable: every length is a whole number of seconds")

    def describe(self) -> str:
        return f"{self.limit} renders per {self.span}"


def _from_json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError('must be a JSON list of windows, e.g. [{"limit": 5, "seconds": 3600}]') from None
    return value


def _distinct_sorted(windows: tuple[RateWindow, ...]) -> tuple[RateWindow, ...]:
    if not windows:
        raise ValueError("must hold at least one window")
    lengths = [window.seconds for window in windows]
    if len(set(lengths)) != len(lengths):
        raise ValueError("each window length (seconds) may appear once")
    return tuple(sorted(windows, key=lambda window: window.seconds))


RateWindows = Annotated[
    tuple[RateWindow, ...],
    BeforeValidator(_from_json),
    Field(max_length=MAX_RATE_WINDOWS),
    AfterValidator(_distinct_sorted),
]
DEFAULT_RATE_WINDOWS: tuple[RateWindow, ...] = (RateWindow(limit=5, seconds=3600),)

_adapter: TypeAdapter[tuple[RateWindow, ...]] = TypeAdapter(RateWindows)


def parse_rate_windows(value: Any) -> tuple[RateWindow, ...]:
    """A list of `{limit, seconds}` (or its JSON text), checked: 1 to 5 windows, distinct lengths."""
    return _adapter.validate_python(value)


def legacy_rate_window(limit: Any, seconds: Any) -> list[dict[str, Any]]:
    """The single window of the old settings (`RATE_LIMIT_RENDERS`, `RATE_LIMIT_WINDOW_SECONDS`,
    or context `rateLimitRenders`, `rateLimitWindowSeconds`), a missing half taking its old default."""
    default = DEFAULT_RATE_WINDOWS[0]
    return [
        {
            "limit": default.limit if limit is None else limit,
            "seconds": default.seconds if seconds is None else seconds,
        }
    ]


def rate_windows_json(windows: tuple[RateWindow, ...]) -> str:
    return json.dumps([window.model_dump() for window in windows], separators=(",", ":"))
