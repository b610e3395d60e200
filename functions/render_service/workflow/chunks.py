"""One chunk worker run: claim-checked, heartbeating, and abandoning work nobody needs any more."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from render_service import clients, errors
from render_service.data.renders import RenderRepository
from render_service.engines import ffmpeg as engine
from render_service.models.jobs import TERMINAL
from render_service.models.steps import ChunkTask
from render_service.settings import Settings, get_settings
from render_service.workflow.watch import render_ended

logger = Logger(child=True)

HEARTBEAT_SECONDS = 2.0


class Superseded(Exception):
    """This attempt is no longer wanted: the render ended or the chunk was dispatched again."""


class ChunkWorker:
    def __init__(self, settings: Settings, renders: RenderRepository) -> None:
        self.settings = settings
        self.renders = renders

    @classmethod
    def default(cls) -> ChunkWorker:
        settings = get_settings()
        return cls(settings, RenderRepository(clients.dynamodb(), settings.table_name))

    def run(self, task: ChunkTask) -> dict[str, Any]:
        render_id, index, attempt, which = task.renderId, task.index, task.attempt, task.renderAttempt
        job = self.renders.get(render_id)
        chunk = self.renders.get_chunk(render_id, index, render_attempt=which)
        if job is None or job.status in TERMINAL or job.attempts != which or chunk is None or chunk.attempts != attempt:
            logger.info("chunk no longer wanted; skipping")
            return {"status": "skipped"}
        if not self.renders.claim_chunk(render_id, index, attempt, render_attempt=which):
            logger.info("chunk attempt superseded before it started; skipping")
            return {"status": "skipped"}
        spec = engine.ChunkSpec.model_validate_json(chunk.spec)
        last_beat = 0.0

        def on_progress(frames_done: int) -> None:
            nonlocal last_beat
            now = time.monotonic()
            if now - last_beat < HEARTBEAT_SECONDS:
                return
            last_beat = now
            if not self.renders.chunk_progress(render_id, index, attempt, frames_done, render_attempt=which):
                raise Superseded(f"chunk {index} attempt {attempt} was superseded")
            current = self.renders.get(render_id, consistent=False)
            if current is None or current.status in TERMINAL or current.attempts != which:
                raise Superseded(f"render {render_id} has ended or moved to another attempt")

        try:
            key = engine.render_chunk(
                spec,
                s3=clients.s3(),
                bucket=self.settings.bucket_name,
                settings=self.settings,
                on_progress=on_progress,
                cancelled=render_ended(self.renders, render_id),
            )
        except (Superseded, errors.RenderCancelled) as exc:
            logger.info("chunk abandoned", extra={"reason": str(exc)})
            return {"status": "abandoned"}
        except errors.ServiceError as exc:
            permanent = isinstance(exc, errors.RenderFailure) and not exc.transient
            self.renders.chunk_failed(
                render_id, index, attempt, exc.message, code=exc.code if permanent else None, render_attempt=which
            )
            logger.warning("chunk failed", extra={"error": exc.message})
            return {"status": "failed", "error": exc.message}
        except Exception:
            self.renders.chunk_failed(
                render_id, index, attempt, "internal error in the chunk worker", render_attempt=which
            )
            raise
        self.renders.chunk_done(render_id, index, attempt, key, spec.frames, render_attempt=which)
        return {"status": "done", "key": key}
