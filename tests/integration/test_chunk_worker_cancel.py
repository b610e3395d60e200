"""A chunk worker whose render is cancelled stops its ffmpeg and uploads nothing (moto + real ffmpeg)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from render_service import clients
from render_service.engines import ffmpeg as engine
from render_service.models.jobs import Chunk, ChunkStatus, RenderJob, RenderStatus
from render_service.models.steps import ChunkTask
from render_service.models.timeline import RenderRequest
from render_service.workflow.chunks import ChunkWorker
from render_service.workflow.steps import Steps

# A minute of 1080p title takes tens of seconds of x264 here; the cancel comes long before.
REQUEST = RenderRequest.model_validate(
    {
        "timeline": {"scenes": [{"type": "title", "text": "a long title", "duration": 60}]},
        "output": {"resolution": "1080p", "fps": 30, "quality": "high"},
    }
)


@pytest.fixture
def steps(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Steps:
    monkeypatch.setenv("WORK_DIR", str(tmp_path))
    from render_service.lifecycle import lifecycle
    from render_service.service import reset

    reset()
    return Steps(lifecycle(), lambda_client=object())  # type: ignore[arg-type]


def test_cancelling_a_render_stops_its_running_chunk(steps: Steps, aws: Any) -> None:
    job = RenderJob(render_id=str(uuid.uuid4()), user_id="alice", request=REQUEST)
    steps.accounting.admit(job)
    steps.accounting.acquire_slot(job)
    steps.renders.start_rendering(job.render_id)
    plan = engine.plan_render(
        job.render_id, REQUEST, s3=clients.s3(), bucket=steps.settings.bucket_name, settings=steps.settings
    )
    spec = plan.chunks[0].model_copy(update={"index": 0})
    steps.renders.put_chunks([Chunk(render_id=job.render_id, index=0, frames=spec.frames, spec=spec.model_dump_json())])
    assert steps.renders.dispatch_chunk(job.render_id, 0, attempt=1, seen=ChunkStatus.pending)

    worker = ChunkWorker(steps.settings, steps.renders)
    result: Future[dict[str, Any]] = Future()
    thread = threading.Thread(
        target=lambda: result.set_result(worker.run(ChunkTask(renderId=job.render_id, index=0, attempt=1))), daemon=True
    )
    thread.start()
    # Cancel once the worker has claimed the chunk and its ffmpeg is encoding.
    for _ in range(600):
        chunk = steps.renders.get_chunk(job.render_id, 0)
        if chunk is not None and chunk.status == ChunkStatus.running and chunk.frames_done > 0:
            break
        thread.join(timeout=0.2)
    steps.accounting.finish(job.render_id, RenderStatus.cancelled)

    assert result.result(timeout=120) == {"status": "abandoned"}
    chunk = steps.renders.get_chunk(job.render_id, 0)
    assert chunk is not None
    assert chunk.status == ChunkStatus.running  # never marked done
    assert chunk.frames_done < spec.frames
    listed = aws.s3.list_objects_v2(Bucket=steps.settings.bucket_name, Prefix=f"work/{job.render_id}/")
    assert "Contents" not in listed
