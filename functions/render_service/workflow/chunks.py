"""One chunk worker run: claim-checked, heartbeating, and abandoning work nobody needs any more."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from render_service import clients, errors
from render_service.data.renders import RenderRepository
from render_service.engines import ffmpeg as engine
from render_service.models.jobs import TERMINAL
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

    def run(self, render_id: str, index: int, attempt: int) -> dict[str, Any]:
        job = self.renders.get(render_id)
        chunk = self.renders.get_chunk(render_id, index)
        if job is None or job.status in TERMINAL or chunk is None or chunk.attempts != attempt:
            logger.info("chunk no longer wanted; skipping")
            return {"status": "skipped"}
        if not self.renders.claim_chunk(render_id, index, attempt):
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
            if not self.renders.chunk_progress(render_id, index, attempt, frames_done):
                raise Superseded(f"chunk {index} attempt {attempt} was superseded")
            current = self.renders.get(render_id, consistent=False)
            if current is None or current.status in TERMINAL:
                raise Superseded(f"render {render_id} has ended")

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
            self.renders.chunk_failed(render_id, index, attempt, exc.message)
            logger.warning("chunk failed", extra={"error": exc.message})
            return {"status": "failed", "error": exc.message}
        except Exception:
            self.renders.chunk_failed(render_id, index, attempt, "internal error in the chunk worker")
            raise
        self.renders.chunk_done(render_id, index, attempt, key, spec.frames)
        return {"status": "done", "key": key}
