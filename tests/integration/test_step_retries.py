"""Step Functions may run a task again after it did its write: the render keeps its ending and is announced."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from render_service.errors import RenderAlreadyFinished
from render_service.lifecycle import lifecycle
from render_service.models.jobs import OutputObject, RenderError, RenderJob, RenderStatus
from render_service.models.steps import CatchError, OutputResult
from render_service.models.timeline import RenderRequest
from render_service.workflow.steps import Steps

REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 2}]}})


def _rendering(steps: Steps) -> str:
    job = RenderJob(render_id=str(uuid.uuid4()), user_id="alice", request=REQUEST, cost=1)
    steps.accounting.admit(job)
    steps.accounting.acquire_slot(job)
    steps.renders.start_rendering(job.render_id)
    return job.render_id


def test_a_retried_complete_announces_again_and_settles_once(aws: Any) -> None:
    steps = Steps(lifecycle())
    render_id = _rendering(steps)
    output = OutputResult(key=f"renders/alice/{render_id}.mp4", sizeBytes=10, durationSeconds=2.0)

    assert steps.complete_render(render_id, output) == RenderStatus.complete
    assert steps.complete_render(render_id, output) == RenderStatus.complete
    assert steps.finalize_render(render_id).key == output.key  # a late FinalizeRender retry too

    job = steps.renders.require(render_id)
    assert (job.status, job.cost, job.progress) == (RenderStatus.complete, 1, 100)
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Succeeded", "Render Succeeded"]
    assert steps.accounting.balance("alice") == 99


def test_an_output_joined_after_a_cancel_is_removed(aws: Any) -> None:
    steps = Steps(lifecycle())
    render_id = _rendering(steps)
    key = f"renders/alice/{render_id}.mp4"
    aws.s3.put_object(Bucket="renders-test-bucket", Key=key, Body=b"mp4")
    steps.accounting.finish(render_id, RenderStatus.cancelled, error=RenderError(code="CANCELLED", message="by user"))

    with pytest.raises(RenderAlreadyFinished):
        steps.complete_render(render_id, OutputResult(key=key, sizeBytes=3, durationSeconds=1.0))

    assert aws.s3.list_objects_v2(Bucket="renders-test-bucket", Prefix="renders/").get("KeyCount") == 0
    assert steps.renders.require(render_id).status == RenderStatus.cancelled


def test_a_failure_after_a_completion_announces_the_success(aws: Any) -> None:
    steps = Steps(lifecycle())
    render_id = _rendering(steps)
    output = OutputObject(key=f"renders/alice/{render_id}.mp4", size_bytes=10, duration_seconds=2.0)
    steps.accounting.finish(render_id, RenderStatus.complete, output=output, actual_cost=1)

    failure = steps.ends.attempt_failed(render_id, CatchError(Error="PublishFailed"))
    assert failure.retry is False
    assert steps.renders.require(render_id).status == RenderStatus.complete
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Succeeded"]


def test_a_retried_failure_announces_again_and_refunds_once(aws: Any) -> None:
    steps = Steps(lifecycle())
    render_id = _rendering(steps)
    error = CatchError(Error="SourceInvalid", Cause='{"errorType": "SourceInvalid", "errorMessage": "scenes[0]: bad"}')

    assert steps.ends.attempt_failed(render_id, error).retry is False
    assert steps.ends.attempt_failed(render_id, error).retry is False

    assert steps.renders.require(render_id).error == RenderError(code="SOURCE_INVALID", message="scenes[0]: bad")
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Failed", "Render Failed"]
    assert steps.accounting.balance("alice") == 100


def test_a_failure_after_a_cancel_leaves_the_cancel_alone(aws: Any) -> None:
    steps = Steps(lifecycle())
    render_id = _rendering(steps)
    steps.accounting.finish(render_id, RenderStatus.cancelled, error=RenderError(code="CANCELLED", message="by user"))

    failure = steps.ends.attempt_failed(render_id, CatchError(Error="States.ALL"))
    assert (failure.retry, failure.code) == (False, "CANCELLED")
    assert aws.received_events() == []
    assert steps.accounting.balance("alice") == 100


def test_only_outputs_of_renders_that_did_not_complete_are_discarded(aws: Any) -> None:
    steps = Steps(lifecycle())
    done, cancelled = _rendering(steps), _rendering(steps)
    for render_id in (done, cancelled):
        aws.s3.put_object(Bucket="renders-test-bucket", Key=f"renders/alice/{render_id}.mp4", Body=b"mp4")
    output = OutputObject(key=f"renders/alice/{done}.mp4", size_bytes=3, duration_seconds=1.0)
    steps.accounting.finish(done, RenderStatus.complete, output=output, actual_cost=1)
    steps.accounting.finish(cancelled, RenderStatus.cancelled, error=RenderError(code="CANCELLED", message="x"))

    # What Reconcile does when the cancelled render's execution reports ABORTED.
    assert steps.ends.reconcile(done, "SUCCEEDED") == RenderStatus.complete
    assert steps.ends.reconcile(cancelled, "ABORTED") == RenderStatus.cancelled

    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket="renders-test-bucket", Prefix="renders/")["Contents"]]
    assert keys == [f"renders/alice/{done}.mp4"]
