"""How a render ends: the one place that decides it.

Every ending (complete, failed, cancelled, lost) goes through `Lifecycle`: the conditional
terminal write that also settles or refunds the credits and releases the slot (one transaction,
`Accounting.finish`), then the event on the bus, from which webhooks, email and deliveries hang
(EventBridge rules), then the clean-up of work files. The workflow's steps, the API's cancel,
Reconcile and the lost-submission sweep all call it; whichever gets there first wins, and the
others find `RenderAlreadyFinished`.

A failed attempt is classified here too: transient failures are retried as a whole render
(`attempt_failed`), permanent ones end the render at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from render_service import clients, errors, links, retention, storage
from render_service.data.accounting import ExecutionSeen
from render_service.logic import pricing
from render_service.models.events import DetailType, EventError, EventOutput, RenderEvent
from render_service.models.jobs import TERMINAL, OutputObject, RenderError, RenderJob, RenderStatus
from render_service.models.steps import CatchError, FailureResult
from render_service.notify import PublishFailed
from render_service.service import Service, on_reset, service
from render_service.workflow.remotion import RemotionSteps

logger = Logger(child=True)
metrics = Metrics()

CANCELLED = RenderError(code="CANCELLED", message="cancelled by the user")
SUBMISSION_LOST = RenderError(code="SUBMISSION_LOST", message="the render's workflow never started; it was refunded")
# A waiting render whose workflow never ran its first step for this long never will: its
# StartExecution failed and the rollback did not happen (the API timed out in between).
GHOST_AFTER = timedelta(minutes=5)

_EXECUTION_ENDINGS = {
    "TIMED_OUT": RenderError(code="TIMED_OUT", message="the render took longer than allowed"),
    "ABORTED": RenderError(code="ABORTED", message="the render's workflow was stopped"),
    "FAILED": RenderError(code="INTERNAL", message="the render's workflow failed unexpectedly"),
}

# Codes that mean a fault of ours (a bug, a lost workflow), not the user's input: ops are paged
# on these (the RendersFailedInternal metric), never on a user's bad source.
INTERNAL_CODES = frozenset({"INTERNAL", "TIMED_OUT", "ABORTED", "SUBMISSION_LOST"})

# Error names (not our classes) that another attempt may get past: Lambda and AWS throttling,
# a task or sandbox timeout, our own transient signals that outlived their step retries.
_TRANSIENT_NAMES = frozenset(
    {
        "ServiceBusy",
        "RenderNotReady",
        "RemotionUnavailable",
        "States.Timeout",
        "States.HeartbeatTimeout",
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.Unknown",
        "ThrottlingException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "SlowDown",
    }
)
# The runtime died under the work (out of memory, a timeout): the next attempt goes easier on it.
_SAFER_NAMES = frozenset({"Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory"})


@dataclass(frozen=True)
class Classified:
    reason: RenderError
    transient: bool = False
    safer: bool = False  # ffmpeg or its runtime failed: retry with safer settings


def _failure_classes(base: type[errors.RenderFailure]) -> dict[str, type[errors.RenderFailure]]:
    """Every RenderFailure by class name: the name Lambda reports as the error type."""
    found = {base.__name__: base}
    for sub in base.__subclasses__():
        found |= _failure_classes(sub)
    return found


_FAILURES = _failure_classes(errors.RenderFailure)


def classify(error: CatchError) -> Classified:
    """What a Catch payload ({Error, Cause}) means: the user's reason, and whether to try again.

    Our own failures carry a message written for users; anything else is summarised without
    internals (the execution history keeps the full cause for ops).
    """
    try:
        cause = json.loads(error.Cause or "{}")
    except json.JSONDecodeError:
        cause = {}
    kind = str(cause.get("errorType", error.Error) if isinstance(cause, dict) else error.Error)
    if kind in _FAILURES:
        failure = _FAILURES[kind]
        message = str(cause.get("errorMessage", kind))[:1000]
        return Classified(RenderError(code=failure.code, message=message), failure.transient, failure.safer)
    if error.Error in _SAFER_NAMES or kind in _SAFER_NAMES:
        reason = RenderError(code="WORKER_CRASHED", message="a render worker ran out of time or memory")
        return Classified(reason, transient=True, safer=True)
    if error.Error in _TRANSIENT_NAMES or kind in _TRANSIENT_NAMES:
        if error.Error == "States.Timeout":
            return Classified(RenderError(code="TIMED_OUT", message="a render step took longer than allowed"), True)
        return Classified(RenderError(code="TEMPORARILY_UNAVAILABLE", message=f"a service was busy ({kind})"), True)
    return Classified(
        RenderError(code="INTERNAL", message=f"the render failed unexpectedly ({kind or 'unknown error'})")
    )


class Lifecycle:
    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.settings = svc.settings
        self.renders = svc.renders
        self.accounting = svc.accounting
        # A remotion render that ends on our side before Remotion is done is stopped there too.
        self.remotion = RemotionSteps(svc.settings, svc.renders)

    # --- complete --------------------------------------------------------------------

    def complete(self, render_id: str, output: OutputObject) -> RenderJob:
        """The output is in place: complete, charge what it cost (refunding the rest), announce."""
        job = self.renders.require(render_id)
        if job.status == RenderStatus.complete:
            finished = job  # a retry after the write: announce again rather than never
        else:
            output = retention.service().retain(job.user_id, output)  # tagged for expiry; until when
            actual_cost = pricing.cost(job.request, output.duration_seconds, self.settings)
            try:
                finished = self.accounting.finish(
                    render_id, RenderStatus.complete, output=output, actual_cost=actual_cost
                )
            except errors.RenderAlreadyFinished:
                self._discard_output(render_id)  # cancelled while the join ran
                raise
        retention.service().schedule_reminder(finished)
        self.announce(DetailType.succeeded, finished)
        self._clean_work(render_id)
        return finished

    # --- failed ----------------------------------------------------------------------

    def attempt_failed(self, render_id: str, error: CatchError) -> FailureResult:
        """An attempt failed (a Catch): schedule the next attempt, or end the render failed."""
        classified = classify(error)
        job = self.renders.require(render_id)
        attempt = job.attempts
        if (
            classified.transient
            and job.status == RenderStatus.rendering
            and 1 <= attempt < self.settings.max_render_attempts
        ):
            delays = self.settings.retry_delays_seconds
            wait = delays[min(attempt, len(delays)) - 1]
            next_at = datetime.now(UTC) + timedelta(seconds=wait)
            safe = job.safe_mode or classified.safer
            reason = classified.reason
            self.remotion.stop(job)
            if self.renders.schedule_retry(
                render_id, attempt=attempt, error=reason, next_attempt_at=next_at, safe_mode=safe
            ) or (job.next_attempt_at is not None):
                logger.warning(
                    "render attempt failed; retrying",
                    extra={"render_id": render_id, "attempt": attempt, "code": reason.code, "wait_seconds": wait},
                )
                metrics.add_metric(name="RenderAttemptsRetried", unit=MetricUnit.Count, value=1)
                return FailureResult(retry=True, waitSeconds=wait, attempt=attempt, **reason.model_dump())
        ended = self.fail(render_id, classified.reason)
        final = ended.error or classified.reason
        return FailureResult(retry=False, attempt=attempt, code=final.code, message=final.message)

    def fail(self, render_id: str, reason: RenderError) -> RenderJob:
        """Ends the render failed, refunds it and announces it; if it has ended already, announces
        that ending again (a retried step whose first run failed after its write) and returns it."""
        try:
            finished = self.accounting.finish(render_id, RenderStatus.failed, error=reason)
        except errors.RenderAlreadyFinished:
            current = self.renders.require(render_id)
            logger.info("render already ended", extra={"render_id": render_id, "status": current.status})
            # Events are at-least-once. Cancel announces its own ending.
            if current.status == RenderStatus.failed:
                self.announce(DetailType.failed, current)
            elif current.status == RenderStatus.complete and current.output:
                self.announce(DetailType.succeeded, current)
            return current
        self._count_failure(reason)
        self.remotion.stop(finished)
        self.announce(DetailType.failed, finished)
        self._clean_work(render_id)
        self._discard_output(render_id)  # a join that finished before a later step failed
        logger.warning("render failed", extra={"render_id": render_id, "code": reason.code, "reason": reason.message})
        return finished

    def _count_failure(self, reason: RenderError) -> None:
        metrics.add_metric(name="RendersFailed", unit=MetricUnit.Count, value=1)
        if reason.code in INTERNAL_CODES:
            metrics.add_metric(name="RendersFailedInternal", unit=MetricUnit.Count, value=1)

    # --- cancelled -------------------------------------------------------------------

    def cancel(self, render_id: str) -> RenderJob:
        """The user's (or an operator's) cancel of an active render."""
        job = self.renders.require(render_id)
        if job.status in TERMINAL:
            raise errors.RenderAlreadyFinished(f"render {render_id} is already {job.status}")
        # Intent, then stop, then the ending. Stopping before the ending keeps a racing step from
        # finding the render ended and failing the execution; the recorded intent tells Reconcile,
        # which may see the stop first, to end it as cancelled too.
        self.renders.request_cancel(render_id)
        self._stop_execution(render_id)
        # A remotion render: Remotion's cancel request first. StartRender may be recording the render
        # right now; if it does so after this read, the ending below has it (or StartRender, finding
        # the render ended, cancels it itself).
        seen = self.renders.require(render_id) if job.engine == "remotion" else job
        self.remotion.stop(seen)
        try:
            finished = self.accounting.finish(render_id, RenderStatus.cancelled, error=CANCELLED)
        except errors.RenderAlreadyFinished:
            current = self.renders.require(render_id)
            if current.status != RenderStatus.cancelled:
                raise
            return current  # Reconcile completed this cancel (and announced it)
        if seen.remotion is None:
            self.remotion.stop(finished)
        # The cancel itself is done and answered; a lost announcement is logged and counted.
        # An output a running FinalizeRender still uploads is removed by CompleteRender or Reconcile.
        self.announce(DetailType.cancelled, finished, best_effort=True)
        return finished

    def execution_arn(self, render_id: str) -> str:
        return self.settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{render_id}"

    def _stop_execution(self, render_id: str) -> None:
        try:
            clients.sfn().stop_execution(
                executionArn=self.execution_arn(render_id), error="RenderCancelled", cause="cancelled by the user"
            )
        except ClientError as exc:
            # The execution may already have ended; the job record is what counts.
            logger.warning("stop_execution failed", extra={"render_id": render_id, "error": str(exc)})

    # --- lost: executions that ended without us, submissions that never started -----

    def reconcile(self, render_id: str, execution_status: str) -> RenderStatus | None:
        """Ends a render whose execution ended without RecordFailure (timed out, aborted, or failing
        while failing), so that no accepted render is left active, holding a slot and credits."""
        job = self.renders.get(render_id)
        if job is not None and job.status in TERMINAL:
            # A cancel stops the execution, not a FinalizeRender already running: its upload
            # would belong to no render.
            self._discard_output(render_id)
        if job is None or job.status in TERMINAL:
            return job.status if job else None
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
            return self.renders.require(render_id).status
        if to == RenderStatus.failed:
            self._count_failure(reason)
        self.remotion.stop(finished)  # a timed-out or console-stopped render still going at Remotion
        self.announce(detail_type, finished)
        self._clean_work(render_id)
        self._discard_output(render_id)
        logger.error("render reconciled", extra={"render_id": render_id, "execution_status": execution_status})
        return finished.status

    def end_if_lost(self, job: RenderJob, now: datetime) -> bool:
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
        self._count_failure(SUBMISSION_LOST)
        # Best effort: the ending is committed, and the caller may be another render's step.
        self.announce(DetailType.failed, ended, best_effort=True)
        return True

    def sweep_lost(self) -> dict[str, Any]:
        """Ends lost submissions that no later render of the same user comes to sweep."""
        now = datetime.now(UTC)
        candidates = self.renders.unseen_active_before(now - GHOST_AFTER)
        ended = [job.render_id for job in candidates if self.end_if_lost(job, now)]
        return {"checked": len(candidates), "ended": ended}

    # --- events ----------------------------------------------------------------------

    def event(self, detail_type: DetailType, job: RenderJob, *, link_seconds: int | None = None) -> RenderEvent:
        """The event's detail; its download link lasts `link_seconds` (the API's default) or until
        the output expires, whichever comes first."""
        output = None
        if detail_type in (DetailType.succeeded, DetailType.expiring) and job.output is not None:
            requested = link_seconds or self.settings.download_url_ttl_seconds
            ttl = retention.link_seconds(job.output, requested)
            url, expires = links.output_url(job.output.key, ttl, filename=f"{job.render_id}.mp4")
            output = EventOutput(
                bucket=self.settings.bucket_name,
                key=job.output.key,
                url=url,
                expiresAt=expires,
                sizeBytes=job.output.size_bytes,
                durationSeconds=job.output.duration_seconds,
                posterKey=job.output.poster_key,
                thumbnailKey=job.output.thumbnail_key,
                retainedUntil=job.output.retained_until,
            )
        error = EventError(code=job.error.code, message=job.error.message) if job.error else None
        return RenderEvent(
            eventId=RenderEvent.event_id(job.render_id, detail_type),
            renderId=job.render_id,
            userId=job.user_id,
            status=job.status.value,
            engine=job.engine,
            subject=job.request.subject,
            attempts=job.attempts,
            output=output,
            error=error if detail_type in (DetailType.failed, DetailType.cancelled) else None,
        )

    def announce(self, detail_type: DetailType, job: RenderJob, *, best_effort: bool = False) -> None:
        try:
            self.svc.events.publish(detail_type, [self.event(detail_type, job).detail()])
        except (PublishFailed, ClientError):
            if not best_effort:
                raise  # the task fails and Step Functions retries it (see the workflow's Retry)
            logger.exception("could not announce", extra={"detail_type": detail_type.value})
            metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=1)

    # --- files -----------------------------------------------------------------------

    def _clean_work(self, render_id: str) -> None:
        storage.delete_prefix(clients.s3(), self.settings.bucket_name, storage.work_prefix(render_id))

    def _discard_output(self, render_id: str) -> None:
        """Removes an output that belongs to no completed render (cancelled or failed after the join)."""
        job = self.renders.require(render_id)
        if job.status in (RenderStatus.cancelled, RenderStatus.failed):
            storage.delete_output(clients.s3(), self.settings.bucket_name, job.user_id, render_id)


@cache
def lifecycle() -> Lifecycle:
    return Lifecycle(service())


on_reset(lifecycle.cache_clear)
