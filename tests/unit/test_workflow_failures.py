"""What a failed attempt means, from the Catch payload Step Functions hands RecordFailure: the
user's reason, and whether the whole render is tried again (and with safer settings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from render_service import errors
from render_service.lifecycle import classify
from render_service.models.steps import CatchError, StepInput


def _ours(failure: type[errors.RenderFailure], message: str = "it broke") -> CatchError:
    cause = json.dumps({"errorType": failure.__name__, "errorMessage": message, "stackTrace": []})
    return CatchError(Error=failure.__name__, Cause=cause)


def test_our_failures_keep_their_code_and_message(load_event: Callable[..., dict[str, Any]]) -> None:
    state = StepInput.model_validate(load_event("workflow_step_failed"))
    assert state.error is not None
    found = classify(state.error)
    assert (found.reason.code, found.reason.message) == ("SOURCE_INVALID", "scenes[0].src: is not a video file")
    assert not found.transient


def test_unexpected_errors_say_what_kind_without_internals() -> None:
    cause = json.dumps({"errorType": "KeyError", "errorMessage": "'secret internal detail'", "stackTrace": ["x"]})
    found = classify(CatchError(Error="KeyError", Cause=cause))
    assert found.reason.code == "INTERNAL"
    assert "secret" not in found.reason.message
    assert "KeyError" in found.reason.message
    assert not found.transient  # a bug fails the same way every time


def test_garbage_causes() -> None:
    assert classify(CatchError(Error="Custom", Cause="not json")).reason.code == "INTERNAL"
    assert classify(CatchError()).reason.code == "INTERNAL"


@pytest.mark.parametrize(
    "failure",
    [
        errors.SourceInvalid,
        errors.SourceNotAllowed,
        errors.SourceTooLarge,
        errors.RenderTooLong,
        errors.SourceUnavailable,
    ],
)
def test_permanent_failures_fail_at_once(failure: type[errors.RenderFailure]) -> None:
    found = classify(_ours(failure))
    assert (found.reason.code, found.transient, found.safer) == (failure.code, False, False)


def test_a_source_that_timed_out_or_answered_5xx_is_retried_as_it_was() -> None:
    found = classify(_ours(errors.SourceTemporarilyUnavailable, "scenes[0].src: cdn.example answered HTTP 503"))
    assert (found.reason.code, found.transient, found.safer) == ("SOURCE_UNAVAILABLE", True, False)


@pytest.mark.parametrize("failure", [errors.EncodeFailed, errors.EncodeTimedOut, errors.ChunkFailed])
def test_ffmpeg_failures_are_retried_with_safer_settings(failure: type[errors.RenderFailure]) -> None:
    found = classify(_ours(failure))
    assert (found.transient, found.safer) == (True, True)


@pytest.mark.parametrize(
    ("error", "code", "safer"),
    [
        ("Lambda.TooManyRequestsException", "TEMPORARILY_UNAVAILABLE", False),
        ("ServiceBusy", "TEMPORARILY_UNAVAILABLE", False),
        ("States.Timeout", "TIMED_OUT", False),
        ("Sandbox.Timedout", "WORKER_CRASHED", True),
        ("Runtime.ExitError", "WORKER_CRASHED", True),
    ],
)
def test_throttling_timeouts_and_crashed_runtimes_are_retried(error: str, code: str, safer: bool) -> None:
    found = classify(CatchError(Error=error, Cause="whatever the runtime said"))
    assert (found.reason.code, found.transient, found.safer) == (code, True, safer)
