"""The state machine's tasks. Each one reads the job by id, does one thing, and returns a small
model that the state machine keeps under `$.slot`, `$.progress`, `$.output` or `$.failure` (see
`models/steps.py` and infra/constructs/workflow.py).

Every step may be retried by Step Functions, so each is safe to run twice. The steps that run
ffmpeg on user media (StartRender, FinalizeRender, and the chunk worker) only touch the render's
own items; every ending (CompleteRender, RecordFailure, Reconcile, the sweep) is the lifecycle's.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from render_service import clients, errors, outputs, storage
from render_service.engines import ffmpeg as engine
from render_service.engines.ffmpeg import stills
from render_service.lifecycle import Lifecycle, lifecycle
from render_service.models.events import DetailType
from render_service.models.jobs import (
    TERMINAL,
    Chunk,
    ChunkStatus,
    OutputObject,
    Phase,
    RenderJob,
    RenderStatus,
    SlotState,
)
from render_service.models.remotion import RemotionRequest
from render_service.models.steps import ChunkTask, OutputResult, ProgressResult, SlotResult
from render_service.models.timeline import Quality, RenderRequest
from render_service.service import on_reset
from render_service.workflow.watch import render_ended

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

MAX_CHUNK_ATTEMPTS = 3
# Progress bands: preparing 0-5, chunks 5-90, joining 90-100.
_RENDER_START, _RENDER_END = 5, 90
_INLINE_PROGRESS_SECONDS = 2.0
_DISPATCH_THREADS = 8
# Safe mode (after ffmpeg itself failed) renders one step down the quality ladder.
_SAFER_QUALITY = {Quality.high: Quality.medium, Quality.medium: Quality.low, Quality.low: Quality.low}


def first_wait(plan: engine.RenderPlan, poll_interval: int) -> int:
    """Seconds before the first poll: the longest chunk's own length, at most the usual interval.

    x264 at our presets renders a chunk in about its own length or less on a Lambda's vCPUs, so
    a 1-second render is polled after 1 s rather than after the full interval (5 s deployed).
    Step Functions waits whole seconds, and at least one.
    """
    longest = max((c.frames / c.fps for c in plan.chunks), default=0.0)
    return max(1, min(poll_interval, math.ceil(longest)))


def next_wait(done: int, total: int, started: datetime | None, now: datetime, poll_interval: int) -> int:
    """Seconds before the next poll: half the time the frames done so far say is left, between 1 s
    and the usual interval. Polls thin out while chunks run and come every second near the end,
    so a finished render waits about a second, not a whole interval (and PollRender runs less)."""
    if done <= 0 or started is None:
        return poll_interval
    elapsed = max((now - started).total_seconds(), 0.0)
    remaining = elapsed * (total - done) / done
    return max(1, min(poll_interval, math.ceil(remaining / 2)))


class Steps:
    def __init__(self, ends: Lifecycle, lambda_client: LambdaClient | None = None) -> None:
        self.ends = ends
        self.lambda_client = lambda_client or clients.lambda_()
        self.settings = ends.settings
        self.renders = ends.renders
        self.accounting = ends.accounting

    # --- AcquireSlot -----------------------------------------------------------------

    def acquire_slot(self, render_id: str) -> SlotResult:
        job = self.renders.require(render_id)
        if job.status in TERMINAL:
            raise errors.RenderAlreadyFinished(f"render {render_id} is already {job.status}")
        if not job.execution_seen:
            self.renders.mark_execution_seen(render_id)
        acquired = job.slot == SlotState.held or (
            # First in, first out per user: an earlier waiting render goes first.
            not self._earlier_waiting(job) and self.accounting.acquire_slot(job)
        )
        return SlotResult(acquired=acquired, waitSeconds=self.settings.slot_wait_seconds)

    def _earlier_waiting(self, job: RenderJob) -> list[RenderJob]:
        """Earlier renders still waiting, after ending any lost one among them so it can't block the queue."""
        now = datetime.now(UTC)
        return [earlier for earlier in self.renders.waiting_before(job) if not self.ends.end_if_lost(earlier, now)]

    # --- StartRender -----------------------------------------------------------------

    def start_render(self, render_id: str) -> ProgressResult:
        job = self.renders.start_rendering(render_id)
        if job.attempts == 1:
            self.ends.announce(DetailType.started, job, best_effort=True)
        if isinstance(job.request, RemotionRequest):
            return ProgressResult.model_validate(self.ends.remotion.start(job))
        s3 = clients.s3()
        with engine.prepare_render(
            render_id,
            _attempt_request(job, job.request),
            s3=s3,
            bucket=self.settings.bucket_name,
            settings=self.settings,
            smart_copy=not job.safe_mode,
        ) as prepared:
            if prepared.plan.inline:
                return self._render_inline(job, prepared, s3)
            plan = _for_attempt(prepared.stage(s3, self.settings.bucket_name), job.attempts)
            self._put_plan(plan)
            self.renders.put_chunks(_chunk_items(plan))
            fresh = [c for c in self.renders.list_chunks(render_id, render_attempt=job.attempts) if c.attempts == 0]
            # A few at once: each is a conditional write and an async invoke, 40 of them for 10 minutes.
            with ThreadPoolExecutor(max_workers=_DISPATCH_THREADS, thread_name_prefix="dispatch") as pool:
                list(pool.map(lambda chunk: self._dispatch(chunk, attempt=1), fresh))
            self.renders.record_progress(render_id, _RENDER_START, Phase.rendering)
            if plan.audio is not None:
                self._encode_audio_track(plan, prepared, s3)
        logger.info(
            "render planned",
            extra={"render_id": render_id, "chunks": len(plan.chunks), "attempt": job.attempts, "safe": job.safe_mode},
        )
        wait = first_wait(plan, self.settings.poll_interval_seconds)
        return ProgressResult(status="rendering", progress=_RENDER_START, waitSeconds=wait)

    def _encode_audio_track(self, plan: engine.RenderPlan, prepared: engine.Prepared, s3: S3Client) -> None:
        """While the chunks render, from the sources still on disk; FinalizeRender runs only after
        this step returns, so the join always finds the track."""
        try:
            engine.encode_audio_track(
                plan,
                prepared.local,
                s3=s3,
                bucket=self.settings.bucket_name,
                settings=self.settings,
                cancelled=render_ended(self.renders, plan.render_id),
            )
        except errors.RenderCancelled:
            # The render has its ending, and its execution is being stopped: the step has nothing
            # left to do, and failing it would only race that stop (the chunks drop their work too).
            logger.info("render ended while its audio track was encoded", extra={"render_id": plan.render_id})

    def _put_plan(self, plan: engine.RenderPlan, output: OutputObject | None = None) -> None:
        attempt = plan.chunks[0].render_attempt
        s3 = clients.s3()
        s3.put_object(
            Bucket=self.settings.bucket_name,
            Key=storage.plan_key(plan.render_id, attempt),
            Body=plan.model_dump_json().encode(),
            ContentType="application/json",
        )
        if output is not None:
            s3.put_object(
                Bucket=self.settings.bucket_name,
                Key=storage.inline_output_key(plan.render_id, attempt),
                Body=output.model_dump_json().encode(),
                ContentType="application/json",
            )

    def _render_inline(self, job: RenderJob, prepared: engine.Prepared, s3: S3Client) -> ProgressResult:
        """A remux or a single chunk, rendered here from the sources planning just fetched: no chunk
        worker, no S3 round trip but the output's, no poll wait, and no FinalizeRender: the result
        names the output, and the state machine goes straight on to CompleteRender. The plan, the
        output (`storage.inline_output_key`) and done chunks are stored too, so a FinalizeRender
        still finds it all (an execution of an older definition, started before a deploy)."""
        render_id = job.render_id
        plan = _for_attempt(prepared.plan, job.attempts)
        last = [time.monotonic()]

        def on_progress(frames_done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= _INLINE_PROGRESS_SECONDS:
                last[0] = now
                share = min(frames_done, plan.total_frames) / max(plan.total_frames, 1)
                self.renders.record_progress(
                    render_id, _RENDER_START + int((_RENDER_END - _RENDER_START) * share), Phase.rendering
                )

        info = engine.render_inline(
            plan,
            prepared.local,
            storage.output_key(job.user_id, render_id),
            s3=s3,
            bucket=self.settings.bucket_name,
            settings=self.settings,
            on_progress=on_progress,
            stills=stills.keys_for(job.user_id, render_id),
            cancelled=render_ended(self.renders, render_id),
        )
        output = outputs.made(storage.output_key(job.user_id, render_id), info)
        self._put_plan(plan, output)
        self.renders.put_chunks(_chunk_items(plan, made=output.key))
        self.renders.record_progress(render_id, _RENDER_END, Phase.finalizing)
        logger.info(
            "render made inline",
            extra={"render_id": render_id, "remux": plan.remux, "audio_copied": plan.audio_copy is not None,
                   "scenes": len(plan.chunks), "bytes": info.size_bytes},
        )  # fmt: skip
        return ProgressResult(status="made", progress=_RENDER_END, waitSeconds=0, output=_output_result(output))

    def _dispatch(self, chunk: Chunk, attempt: int) -> None:
        # Conditional on the status this step saw: a worker that claimed it meanwhile keeps it.
        if not self.renders.dispatch_chunk(
            chunk.render_id, chunk.index, attempt, seen=chunk.status, render_attempt=chunk.render_attempt
        ):
            return  # another poll already dispatched this attempt
        task = ChunkTask(
            renderId=chunk.render_id, renderAttempt=chunk.render_attempt, index=chunk.index, attempt=attempt
        )
        self.lambda_client.invoke(
            FunctionName=self.settings.chunk_function_name,
            InvocationType="Event",
            Payload=task.model_dump_json().encode(),
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

    def poll_render(self, render_id: str) -> ProgressResult:
        job = self.renders.require(render_id)
        if job.status in TERMINAL:
            raise errors.RenderAlreadyFinished(f"render {render_id} is already {job.status}")
        if isinstance(job.request, RemotionRequest):
            return ProgressResult.model_validate(self.ends.remotion.poll(job))
        chunks = self.renders.list_chunks(render_id, render_attempt=job.attempts)
        if not chunks:
            raise errors.RenderNotReady(f"render {render_id} has no chunks yet")
        now = datetime.now(UTC)
        for chunk in chunks:
            reason = self._dead(chunk, now)
            if reason is None:
                continue
            if chunk.status == ChunkStatus.failed and chunk.error_code:
                # The same input fails the same way (a media bound, a budget): no point in another try.
                failure = errors.permanent_failure(chunk.error_code, chunk.error or reason)
                if failure is not None:
                    raise failure
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
        return ProgressResult(
            status="done" if finished else "rendering",
            progress=max(progress, job.progress),
            waitSeconds=next_wait(done_frames, total, job.attempt_started_at, now, self.settings.poll_interval_seconds),
        )

    # --- FinalizeRender: join and upload (media only; the job is completed next) -----

    def finalize_render(self, render_id: str) -> OutputResult:
        job = self.renders.require(render_id)
        if job.status == RenderStatus.complete and job.output:
            return _output_result(job.output)  # a retry after CompleteRender ran
        if job.status in TERMINAL:
            raise errors.RenderAlreadyFinished(f"render {render_id} is already {job.status}")
        if isinstance(job.request, RemotionRequest):
            return _output_result(self.ends.remotion.finalize(job))
        chunks = self.renders.list_chunks(render_id, render_attempt=job.attempts)
        if not chunks or any(c.status != ChunkStatus.done or not c.key for c in chunks):
            raise errors.RenderNotReady(f"render {render_id}: not every chunk is done")
        s3 = clients.s3()
        plan_body = s3.get_object(Bucket=self.settings.bucket_name, Key=storage.plan_key(render_id, job.attempts))
        plan = engine.RenderPlan.model_validate_json(plan_body["Body"].read())
        if plan.inline:  # StartRender made the output already
            made = s3.get_object(
                Bucket=self.settings.bucket_name, Key=storage.inline_output_key(render_id, job.attempts)
            )
            return _output_result(OutputObject.model_validate_json(made["Body"].read()))
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
        output = outputs.made(key, info)
        logger.info("render joined", extra={"render_id": render_id, "bytes": info.size_bytes})
        return _output_result(output)

    # --- CompleteRender and RecordFailure: endings, decided by the lifecycle ---------

    def complete_render(self, render_id: str, output: OutputResult) -> RenderStatus:
        result = OutputObject(
            key=output.key,
            size_bytes=output.sizeBytes,
            duration_seconds=output.durationSeconds,
            width=output.width,
            height=output.height,
            poster_key=output.posterKey,
            thumbnail_key=output.thumbnailKey,
        )
        return self.ends.complete(render_id, result).status


def _attempt_request(job: RenderJob, request: RenderRequest) -> RenderRequest:
    """What this attempt renders: the request, one quality step down in safe mode."""
    if not job.safe_mode:
        return request
    output = request.output
    return request.model_copy(update={"output": output.model_copy(update={"quality": _SAFER_QUALITY[output.quality]})})


def _for_attempt(plan: engine.RenderPlan, attempt: int) -> engine.RenderPlan:
    chunks = [c.model_copy(update={"render_attempt": attempt}) for c in plan.chunks]
    audio = plan.audio and plan.audio.model_copy(update={"render_attempt": attempt})
    return plan.model_copy(update={"chunks": chunks, "audio": audio})


def _chunk_items(plan: engine.RenderPlan, made: str | None = None) -> list[Chunk]:
    """The plan's chunk items, to dispatch; or, with `made` (an output StartRender rendered
    itself), done at birth with that key, for FinalizeRender to find every chunk done."""
    return [
        Chunk(
            render_id=plan.render_id,
            render_attempt=spec.render_attempt,
            index=spec.index,
            frames=spec.frames,
            spec=spec.model_dump_json(),
            status=ChunkStatus.pending if made is None else ChunkStatus.done,
            frames_done=0 if made is None else spec.frames,
            key=made,
        )
        for spec in plan.chunks
    ]


def _output_result(output: OutputObject) -> OutputResult:
    return OutputResult(
        key=output.key,
        sizeBytes=output.size_bytes,
        durationSeconds=output.duration_seconds,
        width=output.width,
        height=output.height,
        posterKey=output.poster_key,
        thumbnailKey=output.thumbnail_key,
    )


@cache
def steps() -> Steps:
    return Steps(lifecycle())


on_reset(steps.cache_clear)
