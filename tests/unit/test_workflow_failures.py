"""What a failed render tells its user, from the Catch payload Step Functions hands MarkFailed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from render_service.workflow.steps import failure_reason


def test_our_failures_keep_their_code_and_message(load_event: Callable[..., dict[str, Any]]) -> None:
    event = load_event("workflow_step_failed")
    reason = failure_reason(event["error"])
    assert (reason.code, reason.message) == ("SOURCE_INVALID", "scenes[0].src: is not a video file")


def test_unexpected_errors_say_what_kind_without_internals() -> None:
    cause = json.dumps({"errorType": "KeyError", "errorMessage": "'secret internal detail'", "stackTrace": ["x"]})
    reason = failure_reason({"Error": "KeyError", "Cause": cause})
    assert reason.code == "INTERNAL"
    assert "secret" not in reason.message
    assert "KeyError" in reason.message


def test_timeouts_and_garbage_causes() -> None:
    assert failure_reason({"Error": "States.Timeout", "Cause": "took too long"}).code == "TIMED_OUT"
    assert failure_reason({"Error": "Lambda.Unknown", "Cause": "not json"}).code == "INTERNAL"
    assert failure_reason({}).code == "INTERNAL"
