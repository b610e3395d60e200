"""Every ending goes through the lifecycle: retries are scheduled or the render ends, exactly once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from render_service import errors
from render_service.lifecycle import lifecycle
from render_service.logic import renders
from render_service.models.jobs import Phase, RenderJob, RenderStatus
from render_service.models.steps import CatchError
from render_service.models.timeline import RenderRequest

REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 2}]}})


def _rendering(user: str = "alice") -> str:
    ends = lifecycle()
    job = RenderJob(render_id=str(uuid.uuid4()), user_id=user, request=REQUEST, cost=1)
    ends.accounting.admit(job)
    ends.accounting.acquire_slot(job)
    ends.renders.start_rendering(job.render_id)
    return job.render_id


def _caught(failure: type[Exception], message: str = "it broke") -> CatchError:
    return CatchError(
        Error=failure.__name__, Cause=json.dumps({"errorType": failure.__name__, "errorMessage": message})
    )


def test_a_transient_failure_schedules_the_next_attempt_and_get_shows_it(aws: Any) -> None:
    ends = lifecycle()
    render_id = _rendering()

    failure = ends.attempt_failed(render_id, _caught(errors.SourceTemporarilyUnavailable, "scenes[0].src: HTTP 503"))

    assert (failure.retry, failure.waitSeconds, failure.code) == (True, 30, "SOURCE_UNAVAILABLE")
    view = renders.get("alice", render_id)
    assert (view.status, view.phase, view.attempts, view.maxAttempts) == ("rendering", "retrying", 1, 3)
    assert view.lastError is not None
    assert view.lastError.message == "scenes[0].src: HTTP 503"
    assert view.nextAttemptAt is not None
    assert timedelta(seconds=25) < view.nextAttemptAt - datetime.now(UTC) <= timedelta(seconds=30)
    assert view.estimatedSecondsRemaining is None
    # A repeated RecordFailure (a Lambda retry) changes nothing and still says retry.
    assert ends.attempt_failed(render_id, _caught(errors.SourceTemporarilyUnavailable)).retry is True
    assert ends.accounting.balance("alice") == 99  # reserved, not settled
    assert aws.received_events() == []

    again = ends.renders.start_rendering(render_id)
    assert (again.attempts, again.phase, again.next_attempt_at) == (2, Phase.preparing, None)
    assert ends.renders.start_rendering(render_id).attempts == 2, "a retried StartRender is the same attempt"


def test_the_waits_grow_and_the_last_attempt_fails_and_refunds_once(aws: Any) -> None:
    ends = lifecycle()
    render_id = _rendering()
    waits = []
    for _ in range(2):
        failure = ends.attempt_failed(render_id, _caught(errors.ChunkFailed))
        waits.append(failure.waitSeconds)
        ends.renders.start_rendering(render_id)

    final = ends.attempt_failed(render_id, _caught(errors.ChunkFailed, "chunk 0 failed 3 times"))

    assert waits == [30, 120]
    assert (final.retry, final.code, final.attempt) == (False, "CHUNK_FAILED", 3)
    job = ends.renders.require(render_id)
    assert (job.status, job.safe_mode, job.refunded) == (RenderStatus.failed, True, True)
    assert ends.accounting.balance("alice") == 100
    assert ends.accounting.snapshot("alice").active == 0
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Failed"]


def test_a_permanent_failure_ends_the_render_at_once(aws: Any) -> None:
    ends = lifecycle()
    render_id = _rendering()

    failure = ends.attempt_failed(render_id, _caught(errors.SourceInvalid, "scenes[0].src: is not a video file"))

    assert (failure.retry, failure.code, failure.message) == (
        False,
        "SOURCE_INVALID",
        "scenes[0].src: is not a video file",
    )
    assert ends.renders.require(render_id).status == RenderStatus.failed


def test_cancel_while_waiting_for_a_retry_ends_it_once(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ends = lifecycle()
    monkeypatch.setattr(ends, "_stop_execution", lambda render_id: None)
    render_id = _rendering()
    ends.attempt_failed(render_id, _caught(errors.EncodeFailed))

    assert renders.cancel("alice", render_id).status == "cancelled"

    with pytest.raises(errors.RenderAlreadyFinished):
        ends.renders.start_rendering(render_id)  # the wait ends, but no attempt starts
    assert ends.attempt_failed(render_id, _caught(errors.EncodeFailed)).retry is False
    assert ends.accounting.balance("alice") == 100
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Cancelled"]


def test_an_ending_announced_again_carries_the_same_event_id(aws: Any) -> None:
    ends = lifecycle()
    render_id = _rendering()
    ends.attempt_failed(render_id, _caught(errors.SourceInvalid))
    ends.attempt_failed(render_id, _caught(errors.SourceInvalid))  # a retried step announces again

    events = aws.received_events()
    assert [e["detail-type"] for e in events] == ["Render Failed", "Render Failed"]
    assert len({e["detail"]["eventId"] for e in events}) == 1
    assert events[0]["detail"]["error"]["code"] == "SOURCE_INVALID"


def test_the_estimate_appears_once_progress_allows_it(aws: Any) -> None:
    ends = lifecycle()
    render_id = _rendering()
    assert renders.get("alice", render_id).estimatedSecondsRemaining is None  # nothing to go on yet

    ends.renders.record_progress(render_id, 50, Phase.rendering)
    job = ends.renders.require(render_id)
    assert job.attempt_started_at is not None
    later = job.attempt_started_at + timedelta(seconds=20)

    assert renders.estimated_seconds_remaining(job, later) == 20
