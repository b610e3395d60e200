"""The workflow's steps for renders of engine remotion; `steps.py` hands such jobs here.

The state machine is the same for every engine: StartRender, then Wait / PollRender until done,
then FinalizeRender and CompleteRender. What differs is said here:

- StartRender starts the render at Remotion and keeps its id and bucket on the job. If the job
  ended meanwhile (a cancel while Remotion was planning), it cancels the render it just started.
- PollRender reads Remotion's progress: the cost report is kept on the job, progress becomes
  ours (never lower), a fatal error or Remotion's timeout rule fails the render, and the Wait
  before the next poll is the kind's interval.
- FinalizeRender copies the output into our bucket and probes it, as for ffmpeg.
- Any ending before Remotion is done (cancel, timeout, a failure of ours) asks Remotion to stop.

Each step may run twice (Step Functions retries): a started render is never started again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from aws_lambda_powertools import Logger

from render_service import clients, errors, outputs, storage
from render_service.data.renders import RenderRepository
from render_service.engines import remotion as engine
from render_service.engines.ffmpeg import stills
from render_service.engines.remotion.protocol import RenderProgress
from render_service.models.jobs import EngineCosts, OutputObject, Phase, RemotionRender, RenderJob
from render_service.models.remotion import RemotionRequest
from render_service.settings import Settings

logger = Logger(child=True)

_STARTED = 5


def request_of(job: RenderJob) -> RemotionRequest:
    if not isinstance(job.request, RemotionRequest):
        raise TypeError(f"render {job.render_id} is not a remotion render")
    return job.request


class RemotionSteps:
    def __init__(self, settings: Settings, renders: RenderRepository) -> None:
        self.settings = settings
        self.renders = renders

    @cached_property
    def function(self) -> engine.RemotionFunction:
        # Built on first use: a deployment without Remotion never needs it (and would refuse).
        return engine.function(self.settings)

    # --- StartRender ---------------------------------------------------------------------

    def start(self, job: RenderJob) -> dict[str, Any]:
        request = request_of(job)
        if job.remotion is None:
            started = self.function.start(request)
            state = RemotionRender(render_id=started.render_id, bucket=started.bucket)
            try:
                self.renders.save_remotion(job.render_id, state)
            except errors.RenderAlreadyFinished:
                # Ended while Remotion planned (a cancel): nobody else knows this render exists.
                self._stop_at_remotion(job.render_id, state)
                raise
            logger.info(
                "remotion render started",
                extra={"render_id": job.render_id, "remotion_render_id": started.render_id, "bucket": started.bucket},
            )
        self.renders.record_progress(job.render_id, _STARTED, Phase.rendering)
        return {"status": "rendering", "progress": _STARTED, "waitSeconds": request.limits.poll_seconds}

    # --- PollRender ----------------------------------------------------------------------

    def poll(self, job: RenderJob) -> dict[str, Any]:
        request = request_of(job)
        state = job.remotion
        if state is None:
            raise errors.RenderNotReady(f"render {job.render_id} has not started at Remotion")
        progress = self.function.progress(state.render_id, state.bucket)
        self.renders.save_remotion(job.render_id, _with_progress(state, progress))
        now = datetime.now(UTC)
        # A timeout raises, and RecordFailure asks Remotion to stop, as for every failure.
        seen = engine.watch(progress, request, started=job.started_at or now, now=now)
        self.renders.record_progress(job.render_id, seen.progress, Phase(seen.phase))
        return {
            "status": "done" if seen.done else "rendering",
            "progress": max(seen.progress, job.progress),
            "waitSeconds": request.limits.poll_seconds,
        }

    # --- FinalizeRender ------------------------------------------------------------------

    def finalize(self, job: RenderJob) -> OutputObject:
        state = job.remotion
        if state is None or not state.out_key:
            raise errors.RenderNotReady(f"render {job.render_id}: Remotion has not reported its output")
        key = storage.output_key(job.user_id, job.render_id)
        info = engine.deliver(
            RenderProgress(done=True, outKey=state.out_key, outBucket=state.out_bucket, bucket=state.bucket),
            request_of(job),
            remotion_s3=self.function.s3,
            s3=clients.s3(),
            bucket=self.settings.bucket_name,
            key=key,
            settings=self.settings,
            stills=stills.keys_for(job.user_id, job.render_id),
        )
        logger.info("remotion output delivered", extra={"render_id": job.render_id, "bytes": info.size_bytes})
        return outputs.made(key, info)

    # --- endings ---------------------------------------------------------------------------

    def stop(self, job: RenderJob) -> None:
        """Asks Remotion to stop a render that ended on our side before it was done (best effort)."""
        if job.remotion is not None and not job.remotion.out_key:
            self._stop_at_remotion(job.render_id, job.remotion)

    def _stop_at_remotion(self, render_id: str, state: RemotionRender) -> None:
        try:
            written = self.function.cancel(state.render_id, state.bucket)
        except errors.RemotionUnavailable:
            logger.exception("could not cancel at Remotion", extra={"render_id": render_id})
            return
        logger.info(
            "cancel requested at Remotion",
            extra={"render_id": render_id, "remotion_render_id": state.render_id, "written": written},
        )


def _with_progress(state: RemotionRender, progress: RenderProgress) -> RemotionRender:
    costs = progress.costs
    update: dict[str, Any] = {
        "costs": EngineCosts(
            accrued=costs.accruedSoFar, currency=costs.currency, display=costs.displayCost, disclaimer=costs.disclaimer
        )
    }
    if progress.done and progress.outKey:
        update |= {"out_key": progress.outKey, "out_bucket": progress.outBucket or progress.bucket or state.bucket}
    return state.model_copy(update=update)
