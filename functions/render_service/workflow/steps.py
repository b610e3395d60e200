"""The state machine's tasks. Each one reads the job by id, does one thing, and returns a small dict
that the state machine keeps under `$.slot`, `$.progress` or `$.output` (see infra/constructs/workflow.py).

Every step may be retried by Step Functions, so each is safe to run twice. The steps that run
ffmpeg on user media (StartRender, FinalizeRender, and the chunk worker) only touch the render's
own items; credits and slots are moved by the small steps (AcquireSlot, CompleteRender, MarkFailed).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from render_service import clients, errors, links, retention, storage
from render_service.data.accounting import Accounting, ExecutionSeen
from render_service.data.renders import RenderRepository
from render_service.engines import ffmpeg as engine
from render_service.engines.ffmpeg import stills
from render_service.logic import pricing
from render_service.logic.renders import CANCELLED, event_detail, limits
from render_service.models.jobs import (
    TERMINAL,
    Chunk,
    ChunkStatus,
    OutputObject,
    Phase,
    RenderError,
    RenderJob,
    RenderStatus,
    SlotState,
)
from render_service.models.remotion import RemotionRequest
from render_service.notify import DetailType, EventPublisher, PublishFailed
from render_service.settings import Settings, get_settings
from render_service.workflow.remotion import RemotionSteps
from render_service.workflow.watch import render_ended

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

logger = Logger(child=True)
metrics = Metrics()

MAX_CHUNK_ATTEMPTS = 3
# Progress bands: preparing 0-5, chunks 5-90, joining 90-100.
_RENDER_START, _RENDER_END = 5, 90
# A waiting render whose workflow never ran its first step for this long never will: its
# StartExecution failed and the rollback did not happen (the API timed out in between).
GHOST_AFTER = timedelta(minutes=5)
SUBMISSION_LOST = RenderError(code="SUBMISSION_LOST", message="the render's workflow never started; it was refunded")


def first_wait(plan: engine.RenderPlan, poll_interval: int) -> int:
    """Seconds before the first poll: the longest chunk's own length, at most the usual interval.

    x264 at our presets renders a chunk in about its own length or less on a Lambda's vCPUs, so
    a 1-second render is polled after 1 s rather than after the full interval (5 s deployed).
    Step Functions waits whole seconds, and at least one.
    """
    longest = max((c.frames / c.fps for c in plan.chunks), default=0.0)
    return max(1, min(poll_interval, math.ceil(longest)))


class Steps:
    def __init__(self, settings: Settings, lambda_client: LambdaClient | None = None) -> None:
        db = clients.dynamodb()
        self.lambda_client = lambda_client or clients.lambda_()
        self.settings = settings
        self.renders = RenderRepository(db, settings.table_name)
        self.accounting = Accounting(db, settings.table_name, limits(settings))
        self.events = EventPublisher(clients.events(), settings.event_bus_name)
        self.remotion = RemotionSteps(settings, self.renders)

    # --- AcquireSlot -----------------------------------------------------------------

    def acquire_slot(self, render_id: str) -> dict[str, Any]:
        job = self.renders.require(render_id)
        if job.status in TERMINAL:
            raise errors.RenderAlreadyFinished(f"render {render_id} is already {job.status}")
        if not job.execution_seen:
            self.renders.mark_execution_seen(render_id)
        acquired = job.slot == SlotState.held or (
            # First in, first out per user: an earlier waiting render goes first.
            not self._earlier_waiting(job) and self.accounting.acquire_slot(job)
        )
        return {"acquired": acquired, "waitSeconds": self.settings.slot_wait_seconds}

    def _earlier_waiting(self, job: RenderJob) -> list[RenderJob]:
        """Earlier renders still waiting, after ending any lost one among them so it can't block the queue."""
        now = datetime.now(UTC)
        return [earlier for earlier in self.renders.waiting_before(job) if not self._end_if_lost(earlier, now)]

    def _end_if_lost(self, job: RenderJob, now: datetime) -> bool:
        """Ends (and refunds) a render whose workflow never started; True if it is out of the way."""
        if job.execution_seen or now - job.created_at < GHOST_AFTER:
            return False
        try:
            ended = self.accounting.finish(
                job.render_id, RenderStatus.failed, error=SUBMISSION_LOST, only_if_unseen=True
            )
        except ExecutionSeen:
            return False  # its workflow showed up after all
        except errors.RenderAlreadyFinished:
            return True
        logger.error("ended a render whose workflow never started", extra={"lost_render": job.render_id})
        # Best effort: the ending is committed, and this step belongs to another render.
        self._announce(DetailType.failed, event_detail(ended, error=SUBMISSION_LOST.model_dump()), best_effort=True)
        return True

    # --- SweepLostRenders (scheduled) ------------------------------------------------

    def sweep_lost_submissions(self) -> dict[str, Any]:
        """Ends lost submissions that no later render of the same user comes to sweep."""
        now = datetime.now(UTC)
        candidates = self.renders.unseen_active_before(now - GHOST_AFTER)
        ended = [job.render_id for job in candidates if self._end_if_lost(job, now)]
        return {"checked": len(candidates), "ended": ended}

    # --- StartRender -----------------------------------------------------------------

    def start_render(self, render_id: str) -> dict[str, Any]:
        job = self.renders.start_rendering(render_id)
        if job.attempts == 1:
            self._announce(DetailType.started, event_detail(job), best_effort=True)
        if isinstance(job.request, RemotionRequest):
            return self.remotion.start(job)
        s3 = clients.s3()
        plan = engine.plan_render(
            render_id, job.request, s3=s3, bucket=self.settings.bucket_name, settings=self.settings
        )
        s3.put_object(
            Bucket=self.settings.bucket_name,
            Key=f"{storage.work_prefix(render_id)}plan.json",
            Body=plan.model_dump_json().encode(),
            ContentType="application/json",
        )
        if plan.remux:
            # Nothing to render: each scene is a staged source as it is, and FinalizeRender
            # remuxes them. The chunks are recorded done (their key is the source) and the
            # workflow goes straight on: no worker, no poll wait.
            self.renders.put_chunks(
                [
                    Chunk(
                        render_id=render_id,
                        index=spec.index,
                        frames=spec.frames,
                        spec=spec.model_dump_json(),
                        status=ChunkStatus.done,
                        frames_done=spec.frames,
                        key=spec.sources[0].key,
                    )
                    for spec in plan.chunks
                ]
            )
            self.renders.record_progress(render_id, _RENDER_END, Phase.finalizing)
            logger.info("render planned as a remux", extra={"render_id": render_id, "scenes": len(plan.chunks)})
            return {"status": "done", "progress": _RENDER_END, "waitSeconds": 0}
        self.renders.put_chunks(
            [
                Chunk(render_id=render_id, index=spec.index, frames=spec.frames, spec=spec.model_dump_json())
                for spec in plan.chunks
            ]
        )
        for chunk in self.renders.list_chunks(render_id):
            if chunk.attempts == 0:
                self._dispatch(chunk, attempt=1)
        self.renders.record_progress(render_id, _RENDER_START, Phase.rendering)
        logger.info("render planned", extra={"render_id": render_id, "chunks": len(plan.chunks)})
        wait = first_wait(plan, self.settings.poll_interval_seconds)
        return {"status": "rendering", "progress": _RENDER_START, "waitSeconds": wait}

    def _dispatch(self, chunk: Chunk, attempt: int) -> None:
        # Conditional on the status this step saw: a worker that claimed it meanwhile keeps it.
        if not self.renders.dispatch_chunk(chunk.render_id, chunk.index, attempt, seen=chunk.status):
            return  # another poll already dispatched this attempt
        self.lambda_client.invoke(
            FunctionName=self.settings.chunk_function_name,
            InvocationType="Event",
            Payload=json.dumps({"renderId": chunk.render_id, "index": chunk.index, "attempt": attempt}).encode(),
        )

    # --- PollRender ------------------------------------------------------------------

    def _dead(self, chunk: Chunk, now: datetime) -> str | None:
        """Why a chunk needs dispatching again, or None while it is fine.

        A dispatched chunk may sit in Lambda's async queue (or the local worker pool) for a
        while before a worker claims it; only a claimed chunk is expected to heartbeat.
        """
        stall = timedelta(seconds=self.settings.chunk_stall_seconds)
        unclaimed = timedelta(seconds=self.settings.chunk_dispatch_timeout_seconds)
        if chunk.status == ChunkStatus.failed:
            return chunk.error or "the chunk worker failed"
        if chunk.status == ChunkStatus.running and chunk.heartbeat_at and now - chunk.heartbeat_at > stall:
            return f"no progress for {self.settings.chunk_stall_seconds} s"
        if chunk.status == ChunkStatus.dispatched and chunk.dispatched_at and now - chunk.dispatched_at > unclaimed:
            return f"no worker picked it up within {self.settings.chunk_dispatch_timeout_seconds} s"
        return None

    def poll_render(self, render_id: str) -> dict[str, Any]:
        job = self.renders.require(render_id)
        if job.status in TERMINAL:
            raise errors.RenderAlreadyFinished(f"render {render_id} is already {job.status}")
        if isinstance(job.request, RemotionRequest):
            return self.remotion.poll(job)
        chunks = self.renders.list_chunks(render_id)
        if not chunks:
            raise errors.RenderNotReady(f"render {render_id} has no chunks yet")
        now = datetime.now(UTC)
        for chunk in chunks:
            reason = self._dead(chunk, now)
            if reason is None:
                continue
            if chunk.attempts >= MAX_CHUNK_ATTEMPTS:
                raise errors.ChunkFailed(f"chunk {chunk.index} failed {chunk.attempts} times; last: {reason}")
            logger.warning(
                "re-dispatching chunk", extra={"render_id": render_id, "chunk": chunk.index, "reason": reason}
            )
            self._dispatch(chunk, attempt=chunk.attempts + 1)
        total = sum(c.frames for c in chunks) or 1
        done_frames = sum(min(c.frames_done, c.frames) for c in chunks)
        finished = all(c.status == ChunkStatus.done for c in chunks)
        progress = _RENDER_END if finished else _RENDER_START + (_RENDER_END - _RENDER_START) * done_frames // total
        phase = Phase.finalizing if finished else Phase.rendering
        self.renders.record_progress(render_id, progress, phase)
        return {
            "status": "done" if finished else "rendering",
            "progress": max(progress, job.progress),
            "waitSeconds": self.settings.poll_interval_seconds,
        }

    # --- FinalizeRender: join and upload (media only; the job is completed next) -----

    def finalize_render(self, render_id: str) -> dict[str, Any]:
        job = self.renders.require(render_id)
        if job.status == RenderStatus.complete and job.output:
            return _output_result(job.output)  # a retry after CompleteRender ran
        if job.status in TERMINAL:
            raise errors.RenderAlreadyFinished(f"render {render_id} is already {job.status}")
        if isinstance(job.request, RemotionRequest):
            return _output_result(self.remotion.finalize(job))
        chunks = self.renders.list_chunks(render_id)
        if not chunks or any(c.status != ChunkStatus.done or not c.key for c in chunks):
            raise errors.RenderNotReady(f"render {render_id}: not every chunk is done")
        s3 = clients.s3()
        plan_body = s3.get_object(Bucket=self.settings.bucket_name, Key=f"{storage.work_prefix(render_id)}plan.json")
        plan = engine.RenderPlan.model_validate_json(plan_body["Body"].read())
        key = storage.output_key(job.user_id, render_id)
        info = engine.join_chunks(
            plan,
            [c.key for c in chunks if c.key],
            key,
            s3=s3,
            bucket=self.settings.bucket_name,
            settings=self.settings,
            stills=stills.keys_for(job.user_id, render_id),
            cancelled=render_ended(self.renders, render_id),
        )
        output = OutputObject(
            key=key,
            size_bytes=info.size_bytes,
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
            poster_key=info.stills.poster if info.stills else None,
            thumbnail_key=info.stills.thumbnail if info.stills else None,
        )
        logger.info("render joined", extra={"render_id": render_id, "bytes": info.size_bytes})
        return _output_result(output)

    # --- CompleteRender: the job, the settlement and the announcement ----------------

    def complete_render(self, render_id: str, output: dict[str, Any]) -> dict[str, Any]:
        result = OutputObject(
            key=output["key"],
            size_bytes=output["sizeBytes"],
            duration_seconds=output["durationSeconds"],
            width=output.get("width"),
            height=output.get("height"),
            poster_key=output.get("posterKey"),
            thumbnail_key=output.get("thumbnailKey"),
        )
        job = self.renders.require(render_id)
        if job.status == RenderStatus.complete:
            finished = job  # a retry after the write: announce again rather than never
        else:
            result = retention.service().retain(job.user_id, result)  # tagged for expiry; until when
            actual_cost = pricing.cost(job.request, result.duration_seconds, self.settings)
            try:
                finished = self.accounting.finish(
                    render_id, RenderStatus.complete, output=result, actual_cost=actual_cost
                )
            except errors.RenderAlreadyFinished:
                self._discard_output(render_id)  # cancelled while the join ran
                raise
        retention.service().schedule_reminder(finished)
        self._announce_success(finished)
        return {"status": finished.status.value}

    def _discard_output(self, render_id: str) -> None:
        """Removes an output that belongs to no completed render (cancelled or failed after the join)."""
        job = self.renders.require(render_id)
        if job.status in (RenderStatus.cancelled, RenderStatus.failed):
            storage.delete_output(clients.s3(), self.settings.bucket_name, job.user_id, render_id)

    def _announce_success(self, job: RenderJob) -> None:
        assert job.output is not None
        s3 = clients.s3()
        bucket = self.settings.bucket_name
        ttl = retention.link_seconds(job.output, self.settings.download_url_ttl_seconds)
        url, expires = links.output_url(job.output.key, ttl)
        output = {
            "bucket": bucket,
            "key": job.output.key,
            "url": url,
            "expiresAt": expires.isoformat(),
            "sizeBytes": job.output.size_bytes,
            "durationSeconds": job.output.duration_seconds,
            "posterKey": job.output.poster_key,
            "thumbnailKey": job.output.thumbnail_key,
            "retainedUntil": job.output.retained_until.isoformat() if job.output.retained_until else None,
        }
        self._announce(DetailType.succeeded, event_detail(job, output=output))
        storage.delete_prefix(s3, bucket, storage.work_prefix(job.render_id))

    def _announce(self, detail_type: DetailType, detail: dict[str, Any], *, best_effort: bool = False) -> None:
        try:
            self.events.publish(detail_type, [detail])
        except (PublishFailed, ClientError):
            if not best_effort:
                raise  # the task fails and Step Functions retries it (see the workflow's Retry)
            logger.exception("could not announce", extra={"detail_type": detail_type.value})
            metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=1)

    # --- MarkFailed ------------------------------------------------------------------

    def mark_failed(self, render_id: str, error: dict[str, Any] | None) -> dict[str, Any]:
        reason = failure_reason(error or {})
        try:
            finished = self.accounting.finish(render_id, RenderStatus.failed, error=reason)
        except errors.RenderAlreadyFinished:
            current = self.renders.require(render_id)
            logger.info("render already ended", extra={"render_id": render_id, "status": current.status})
            # A retried step whose first run failed after its write: announce again rather than
            # never (events are at-least-once). Cancel announces its own ending.
            if current.status == RenderStatus.failed and current.error:
                self._announce(DetailType.failed, event_detail(current, error=current.error.model_dump()))
            elif current.status == RenderStatus.complete and current.output:
                self._announce_success(current)
            return {"status": current.status.value}
        self.remotion.stop(finished)  # a remotion render still going there is stopped
        self._announce(DetailType.failed, event_detail(finished, error=reason.model_dump()))
        storage.delete_prefix(clients.s3(), self.settings.bucket_name, storage.work_prefix(render_id))
        self._discard_output(render_id)  # a join that finished before a later step failed
        logger.warning("render failed", extra={"render_id": render_id, "code": reason.code, "reason": reason.message})
        return {"status": finished.status.value}

    # --- Reconcile (EventBridge: Step Functions execution status change) -------------

    def reconcile(self, render_id: str, execution_status: str) -> dict[str, Any]:
        """Ends a render whose execution ended without MarkFailed (timed out, aborted, or failing
        while failing), so that no accepted render is left active, holding a slot and credits."""
        job = self.renders.get(render_id)
        if job is not None and job.status in TERMINAL:
            # A cancel stops the execution, not a FinalizeRender already running: its upload
            # would belong to no render.
            self._discard_output(render_id)
        if job is None or job.status in TERMINAL:
            return {"status": job.status.value if job else "unknown"}
        if job.cancel_requested:
            # The user's cancel stopped the execution and has not written its ending yet.
            to, reason, detail_type = RenderStatus.cancelled, CANCELLED, DetailType.cancelled
        else:
            to, detail_type = RenderStatus.failed, DetailType.failed
            reason = _EXECUTION_ENDINGS.get(
                execution_status, RenderError(code="INTERNAL", message="the render's workflow ended unexpectedly")
            )
        try:
            finished = self.accounting.finish(render_id, to, error=reason)
        except errors.RenderAlreadyFinished:
            return {"status": self.renders.require(render_id).status.value}
        extra = {} if to == RenderStatus.cancelled else {"error": reason.model_dump()}
        self._announce(detail_type, event_detail(finished, **extra))
        self._discard_output(render_id)
        logger.error("render reconciled", extra={"render_id": render_id, "execution_status": execution_status})
        return {"status": finished.status.value}


def _output_result(output: OutputObject) -> dict[str, Any]:
    return {
        "key": output.key,
        "sizeBytes": output.size_bytes,
        "durationSeconds": output.duration_seconds,
        "width": output.width,
        "height": output.height,
        "posterKey": output.poster_key,
        "thumbnailKey": output.thumbnail_key,
    }


_EXECUTION_ENDINGS = {
    "TIMED_OUT": RenderError(code="TIMED_OUT", message="the render took longer than allowed"),
    "ABORTED": RenderError(code="ABORTED", message="the render's workflow was stopped"),
    "FAILED": RenderError(code="INTERNAL", message="the render's workflow failed unexpectedly"),
}


def _failure_classes(base: type[errors.RenderFailure]) -> dict[str, type[errors.RenderFailure]]:
    """Every RenderFailure by class name: the name Lambda reports as the error type."""
    found = {base.__name__: base}
    for sub in base.__subclasses__():
        found |= _failure_classes(sub)
    return found


_FAILURES = _failure_classes(errors.RenderFailure)


def failure_reason(error: dict[str, Any]) -> RenderError:
    """Turns a Step Functions Catch payload ({Error, Cause}) into what the user is told.

    Our own failures carry a message written for users; anything else is summarised without
    internals (the execution history keeps the full cause for ops).
    """
    name = str(error.get("Error", ""))
    try:
        cause = json.loads(error.get("Cause") or "{}")
    except json.JSONDecodeError:
        cause = {}
    kind = cause.get("errorType", name) if isinstance(cause, dict) else name
    if kind in _FAILURES:
        return RenderError(code=_FAILURES[kind].code, message=str(cause.get("errorMessage", kind))[:1000])
    if name == "States.Timeout":
        return RenderError(code="TIMED_OUT", message="the render took longer than allowed")
    return RenderError(code="INTERNAL", message=f"the render failed unexpectedly ({kind or 'unknown error'})")


@cache
def steps() -> Steps:
    return Steps(get_settings())
