"""PollRender: progress from chunk items, dead chunks dispatched again, and a bounded number of attempts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from render_service.data import items as it
from render_service.errors import ChunkFailed, ResourceLimitExceeded
from render_service.models.jobs import Chunk, ChunkStatus, RenderJob, RenderStatus
from render_service.models.timeline import RenderRequest
from render_service.workflow.steps import MAX_CHUNK_ATTEMPTS, Steps

TABLE = "renders-test"
REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 2}]}})


class RecordingLambda:
    """Stands in for Lambda's async invoke: keeps what would have started a chunk worker."""

    def __init__(self) -> None:
        self.dispatched: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["InvocationType"] == "Event"
        self.dispatched.append(json.loads(kwargs["Payload"]))
        return {"StatusCode": 202}


@pytest.fixture
def steps(aws: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Steps, RecordingLambda]:
    monkeypatch.setenv("CHUNK_FUNCTION_NAME", "ChunkWorker")
    monkeypatch.setenv("CHUNK_STALL_SECONDS", "60")
    monkeypatch.setenv("CHUNK_DISPATCH_TIMEOUT_SECONDS", "600")
    from render_service.lifecycle import lifecycle
    from render_service.service import reset

    reset()
    recorder = RecordingLambda()
    return Steps(lifecycle(), lambda_client=recorder), recorder  # type: ignore[arg-type]


def rendering_job(steps: Steps, chunks: int) -> str:
    job = RenderJob(render_id=str(uuid.uuid4()), user_id="alice", request=REQUEST)
    steps.accounting.admit(job)
    steps.accounting.acquire_slot(job)
    steps.renders.start_rendering(job.render_id)
    steps.renders.put_chunks([Chunk(render_id=job.render_id, index=i, frames=100, spec="{}") for i in range(chunks)])
    return job.render_id


def set_chunk(aws: Any, render_id: str, index: int, **fields: Any) -> None:
    names = {f"#{k}": k for k in fields}
    aws.dynamodb.update_item(
        TableName=TABLE,
        Key=it.key(it.render_pk(render_id), it.chunk_sk(1, index)),
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{k}": it.serialize_value(v) for k, v in fields.items()},
    )


def test_progress_is_the_share_of_frames_done_and_never_goes_down(
    aws: Any, steps: tuple[Steps, RecordingLambda]
) -> None:
    step, _ = steps
    render_id = rendering_job(step, chunks=2)
    now = datetime.now(UTC).isoformat()
    set_chunk(aws, render_id, 0, status="running", attempts=1, framesDone=100, heartbeatAt=now)
    set_chunk(aws, render_id, 1, status="running", attempts=1, framesDone=50, heartbeatAt=now)
    first = step.poll_render(render_id)
    assert (first.status, first.progress) == ("rendering", 5 + 85 * 150 // 200)

    set_chunk(aws, render_id, 1, framesDone=10)  # a re-dispatched chunk starts again from zero
    again = step.poll_render(render_id)
    assert again.progress >= first.progress
    assert step.renders.require(render_id).progress == first.progress

    set_chunk(aws, render_id, 1, status="done", framesDone=100, key="work/x/chunk-0001.mp4")
    set_chunk(aws, render_id, 0, status="done", key="work/x/chunk-0000.mp4")
    done = step.poll_render(render_id)
    assert (done.status, done.progress) == ("done", 90)
    assert step.renders.require(render_id).phase == "finalizing"


def test_failed_and_stalled_chunks_are_dispatched_again(aws: Any, steps: tuple[Steps, RecordingLambda]) -> None:
    step, recorder = steps
    render_id = rendering_job(step, chunks=3)
    stale = (datetime.now(UTC) - timedelta(seconds=120)).isoformat()
    fresh = datetime.now(UTC).isoformat()
    set_chunk(aws, render_id, 0, status="failed", attempts=1, error="ffmpeg: killed")
    set_chunk(aws, render_id, 1, status="running", attempts=1, heartbeatAt=stale)
    set_chunk(aws, render_id, 2, status="running", attempts=1, heartbeatAt=fresh)

    assert step.poll_render(render_id).status == "rendering"
    assert sorted((d["index"], d["attempt"]) for d in recorder.dispatched) == [(0, 2), (1, 2)]
    chunks = {c.index: c for c in step.renders.list_chunks(render_id)}
    assert (chunks[0].status, chunks[0].attempts) == (ChunkStatus.dispatched, 2)
    assert (chunks[1].status, chunks[1].attempts) == (ChunkStatus.dispatched, 2)
    assert (chunks[2].status, chunks[2].attempts) == (ChunkStatus.running, 1)

    step.poll_render(render_id)  # a second poll does not dispatch the same attempt twice
    assert len(recorder.dispatched) == 2


def test_a_chunk_out_of_attempts_fails_the_render_with_its_reason(
    aws: Any, steps: tuple[Steps, RecordingLambda]
) -> None:
    step, recorder = steps
    render_id = rendering_job(step, chunks=1)
    set_chunk(aws, render_id, 0, status="failed", attempts=MAX_CHUNK_ATTEMPTS, error="scenes[0]: decode error")
    with pytest.raises(ChunkFailed, match=r"chunk 0 failed 3 times; last: scenes\[0\]: decode error"):
        step.poll_render(render_id)
    assert recorder.dispatched == []


def test_a_chunk_that_failed_for_a_permanent_reason_fails_the_render_at_once_with_it(
    aws: Any, steps: tuple[Steps, RecordingLambda]
) -> None:
    step, recorder = steps
    render_id = rendering_job(step, chunks=2)
    message = "chunk 1: ffmpeg went past its memory budget (2752 MiB)"
    set_chunk(aws, render_id, 1, status="failed", attempts=1, error=message, errorCode="RESOURCE_LIMIT_EXCEEDED")

    with pytest.raises(ResourceLimitExceeded, match=r"memory budget"):
        step.poll_render(render_id)
    assert recorder.dispatched == [], "dispatching it again would fail the same way"


def test_a_dispatched_chunk_waits_for_a_worker_before_it_counts_as_lost(
    aws: Any, steps: tuple[Steps, RecordingLambda]
) -> None:
    step, recorder = steps
    render_id = rendering_job(step, chunks=2)
    queued_a_while = (datetime.now(UTC) - timedelta(seconds=300)).isoformat()
    lost = (datetime.now(UTC) - timedelta(seconds=700)).isoformat()
    set_chunk(aws, render_id, 0, status="dispatched", attempts=1, dispatchedAt=queued_a_while)
    set_chunk(aws, render_id, 1, status="dispatched", attempts=1, dispatchedAt=lost)

    step.poll_render(render_id)

    assert [(d["index"], d["attempt"]) for d in recorder.dispatched] == [(1, 2)]


def test_a_worker_claims_only_the_attempt_it_was_sent(aws: Any, steps: tuple[Steps, RecordingLambda]) -> None:
    step, _ = steps
    render_id = rendering_job(step, chunks=1)
    assert step.renders.dispatch_chunk(render_id, 0, attempt=1, seen=ChunkStatus.pending)
    # superseded before any worker started
    assert step.renders.dispatch_chunk(render_id, 0, attempt=2, seen=ChunkStatus.dispatched)
    assert not step.renders.claim_chunk(render_id, 0, attempt=1)
    assert step.renders.claim_chunk(render_id, 0, attempt=2)
    assert not step.renders.claim_chunk(render_id, 0, attempt=2)  # a duplicate delivery
    (chunk,) = step.renders.list_chunks(render_id)
    assert (chunk.status, chunk.attempts) == (ChunkStatus.running, 2)


@pytest.mark.parametrize("seconds", [1, 12])
def test_a_single_chunk_is_rendered_inline_with_no_worker_and_no_poll_wait(
    aws: Any, steps: tuple[Steps, RecordingLambda], seconds: float
) -> None:
    step, recorder = steps
    request = RenderRequest.model_validate(
        {"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": seconds}]}}
    )
    job = RenderJob(render_id=str(uuid.uuid4()), user_id="alice", request=request)
    step.accounting.admit(job)
    step.accounting.acquire_slot(job)

    started = step.start_render(job.render_id)
    # What a FinalizeRender of an execution started before StartRender named its output finds.
    output = step.finalize_render(job.render_id)

    assert (started.status, started.waitSeconds) == ("made", 0)
    assert started.output == output, "StartRender names the output it made, for CompleteRender"
    assert recorder.dispatched == []
    assert output.key == f"renders/alice/{job.render_id}.mp4"
    assert output.durationSeconds == pytest.approx(seconds, abs=0.05)
    # The job itself is completed by CompleteRender, not here.
    assert step.renders.require(job.render_id).status == RenderStatus.rendering


def test_the_first_poll_waits_at_most_the_poll_interval(aws: Any, steps: tuple[Steps, RecordingLambda]) -> None:
    step, recorder = steps
    assert step.settings.poll_interval_seconds == 5
    request = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 40}]}})
    job = RenderJob(render_id=str(uuid.uuid4()), user_id="alice", request=request)
    step.accounting.admit(job)
    step.accounting.acquire_slot(job)

    started = step.start_render(job.render_id)

    assert (started.status, started.waitSeconds) == ("rendering", 5)
    assert len(recorder.dispatched) == 3
