"""What the API does with renders. Routes call these; these call the data layer and AWS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.exceptions import BotoCoreError, ClientError

from render_service import clients, links, outputs, retention, storage
from render_service.errors import (
    InsufficientCredits,
    OutputGone,
    RateLimited,
    RenderAlreadyFinished,
    RenderNotComplete,
    SubmissionFailed,
)
from render_service.lifecycle import lifecycle
from render_service.logic import pricing
from render_service.models import api
from render_service.models.jobs import Phase, RenderError, RenderJob, RenderStatus, SlotState
from render_service.models.remotion import RemotionRequest
from render_service.models.requests import parse_request
from render_service.models.timeline import RenderRequest, Subject
from render_service.service import on_reset, service
from render_service.settings import get_settings

logger = Logger(child=True)
metrics = Metrics()

IDEMPOTENCY = IdempotencyConfig(
    # The key is per user: two users may pick the same Idempotency-Key.
    event_key_jmespath="[userId, idempotencyKey]",
    # The same key with another body is a client bug, refused rather than answered from the cache.
    payload_validation_jmespath="body",
    expires_after_seconds=24 * 3600,
    raise_on_no_idempotency_key=True,
)


# --- submit ----------------------------------------------------------------------------


def submit(
    user_id: str, request: RenderRequest | RemotionRequest, idempotency_key: str | None, email: str | None = None
) -> api.RenderCreated:
    if idempotency_key is None:
        return _submit(user_id, request, email)
    data = {
        "userId": user_id,
        "idempotencyKey": idempotency_key,
        "body": request.model_dump(mode="json"),
        "email": email,
    }
    return api.RenderCreated.model_validate(_idempotent_submit()(data=data))


@cache
def _idempotent_submit() -> Any:
    settings = get_settings()
    store = DynamoDBPersistenceLayer(
        table_name=settings.table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY#submit",
        expiry_attr="expiresAt",
        boto3_client=clients.dynamodb(),
    )

    def submit_once(data: dict[str, Any]) -> dict[str, Any]:
        request = parse_request(data["body"])
        return _submit(data["userId"], request, data.get("email")).model_dump()

    return idempotent_function(data_keyword_argument="data", persistence_store=store, config=IDEMPOTENCY)(submit_once)


on_reset(_idempotent_submit.cache_clear)


def _submit(user_id: str, request: RenderRequest | RemotionRequest, email: str | None = None) -> api.RenderCreated:
    svc = service()
    pricing.check(request, user_id, svc.settings)
    render_id = str(uuid.uuid4())
    job = RenderJob(
        render_id=render_id,
        user_id=user_id,
        request=request,
        notify_email=pricing.notify_email(request, email, svc.settings),
        deliveries=pricing.deliveries(request, render_id, svc.settings),
        cost=pricing.cost(request, pricing.duration_bound(request), svc.settings),
    )
    try:
        svc.accounting.admit(job)
    except (RateLimited, InsufficientCredits) as refused:
        metrics.add_metric(name=f"Refused{type(refused).__name__}", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="RendersAdmitted", unit=MetricUnit.Count, value=1)
    try:
        clients.sfn().start_execution(
            stateMachineArn=svc.settings.state_machine_arn,
            name=job.render_id,  # ops find a render in the console by its id
            input=json.dumps({"renderId": job.render_id, "userId": user_id}),
        )
    except (ClientError, BotoCoreError) as exc:
        logger.exception("start_execution failed; rolling back the admission", extra={"render_id": job.render_id})
        if svc.accounting.rollback_admission(job):
            # An execution that did start after all (a lost reply) finds no job and ends at once.
            raise SubmissionFailed("the render could not be started; nothing was charged, please retry") from exc
        # The reply was lost but the execution runs and already took its slot: that is success.
        logger.warning("start_execution reply lost, but the render is running", extra={"render_id": job.render_id})
    logger.info("render admitted", extra={"render_id": job.render_id, "cost": job.cost})
    return api.RenderCreated(renderId=job.render_id, status=job.status.value, cost=job.cost)


# --- read ------------------------------------------------------------------------------


def to_view(job: RenderJob, *, queue_position: int | None = None, check_output: bool = False) -> api.RenderView:
    """The API's view of a job; `check_output`: see `outputs.view`."""
    svc = service()
    output = outputs.view(job, svc.settings, check_output=check_output)
    return api.RenderView(
        renderId=job.render_id,
        status=job.status.value,
        phase=job.phase.value,
        progress=job.progress,
        engine=job.engine,
        subject=job.request.subject,
        queuePosition=queue_position,
        cost=job.cost,
        attempts=job.attempts,
        maxAttempts=svc.settings.max_render_attempts,
        nextAttemptAt=job.next_attempt_at if job.phase == Phase.retrying else None,
        lastError=_error_view(job.last_error) if job.phase == Phase.retrying else None,
        safeMode=job.safe_mode,
        estimatedSecondsRemaining=estimated_seconds_remaining(job, datetime.now(UTC)),
        createdAt=job.created_at,
        updatedAt=job.updated_at,
        startedAt=job.started_at,
        completedAt=job.completed_at,
        output=output,
        error=_error_view(job.error),
        engineCost=_engine_cost(job),
        deliveries=[
            api.DeliveryView(destination=d.destination, key=d.key, status=d.status.value, error=d.error)
            for d in job.deliveries
        ],
    )


def _engine_cost(job: RenderJob) -> api.EngineCostView | None:
    costs = job.remotion.costs if job.remotion else None
    if costs is None:
        return None
    return api.EngineCostView(
        accrued=costs.accrued, currency=costs.currency, display=costs.display, disclaimer=costs.disclaimer
    )


def _error_view(error: RenderError | None) -> api.ErrorView | None:
    return api.ErrorView(code=error.code, message=error.message) if error else None


# Below this much progress in the current attempt (planning, the first chunks starting), the rate
# says more about start-up than about the render.
_ESTIMATE_AFTER_PROGRESS = 10


def estimated_seconds_remaining(job: RenderJob, now: datetime) -> int | None:
    """Linear in progress since the current attempt started; None until that is an honest guess."""
    if job.status != RenderStatus.rendering or job.phase == Phase.retrying or job.attempt_started_at is None:
        return None
    if job.progress < _ESTIMATE_AFTER_PROGRESS or job.progress >= 100:
        return None
    elapsed = (now - job.attempt_started_at).total_seconds()
    if elapsed <= 0:
        return None
    return max(1, round(elapsed * (100 - job.progress) / job.progress))


def get(user_id: str, render_id: str) -> api.RenderView:
    return detail(service().renders.get_owned(render_id, user_id))


def detail(job: RenderJob) -> api.RenderView:
    """One render in full: its place in its owner's queue, and its output checked."""
    position = None
    if job.status == RenderStatus.queued and job.slot == SlotState.waiting:
        position = len(service().renders.waiting_before(job)) + 1
    return to_view(job, queue_position=position, check_output=True)


def list_renders(
    user_id: str,
    *,
    subject_type: str | None,
    subject_id: str | None,
    status: RenderStatus | None,
    limit: int,
    cursor: str | None,
) -> api.RenderPage:
    subject_key = Subject(type=subject_type, id=subject_id).key if subject_type and subject_id else None  # type: ignore[arg-type]
    jobs, next_cursor = service().renders.list_for_user(
        user_id, subject_key=subject_key, status=status, limit=limit, cursor=cursor
    )
    return api.RenderPage(renders=[to_view(job) for job in jobs], nextCursor=next_cursor)


# --- cancel ----------------------------------------------------------------------------


def cancel(user_id: str, render_id: str) -> api.RenderView:
    service().renders.get_owned(render_id, user_id)
    return to_view(lifecycle().cancel(render_id))


def cancel_subject(user_id: str, subject: Subject) -> api.CancelledRenders:
    cancelled: list[str] = []
    for job in service().renders.active_for_subject(user_id, subject.key):
        try:
            cancel(user_id, job.render_id)
        except RenderAlreadyFinished:
            continue
        cancelled.append(job.render_id)
    return api.CancelledRenders(cancelled=cancelled)


# --- output ----------------------------------------------------------------------------


def _complete_output(user_id: str, render_id: str) -> tuple[RenderJob, str]:
    svc = service()
    job = svc.renders.get_owned(render_id, user_id)
    if job.status != RenderStatus.complete or job.output is None:
        raise RenderNotComplete(f"render {render_id} is {job.status}, not complete")
    output = job.output
    if (
        output.deleted
        or retention.expired(output)
        or not storage.exists(clients.s3(), svc.settings.bucket_name, output.key)
    ):
        raise OutputGone(f"the output of render {render_id} has expired or been deleted")
    return job, job.output.key


def download_url(user_id: str, render_id: str, expires_in: int) -> api.DownloadUrl:
    job, key = _complete_output(user_id, render_id)
    assert job.output is not None
    url, expires = links.output_url(
        key, retention.link_seconds(job.output, expires_in), filename=f"{job.render_id}.mp4"
    )
    return api.DownloadUrl(url=url, expiresAt=expires)


def delete_output(user_id: str, render_id: str) -> api.RenderView:
    svc = service()
    _complete_output(user_id, render_id)
    storage.delete_output(clients.s3(), svc.settings.bucket_name, user_id, render_id)
    svc.renders.set_output_deleted(render_id)
    return to_view(svc.renders.require(render_id))


# --- account ---------------------------------------------------------------------------


def quota(user_id: str) -> api.QuotaView:
    svc = service()
    snap = svc.accounting.snapshot(user_id)
    windows = [
        api.RateWindowQuota(
            limit=usage.window.limit,
            seconds=usage.window.seconds,
            used=usage.used,
            remaining=usage.remaining,
            resetAt=datetime.fromtimestamp(usage.reset_at, UTC),
        )
        for usage in snap.windows
    ]
    # The window that admits the fewest more (the one resetting last, on a tie) is the headline.
    binding = min(windows, key=lambda window: (window.remaining, -window.resetAt.timestamp()))
    return api.QuotaView(
        renders=api.RenderQuota(
            limit=binding.limit,
            remaining=binding.remaining,
            resetAt=binding.resetAt,
            windows=windows,
        ),
        active=api.SlotQuota(limit=svc.settings.max_active_renders, count=snap.active),
        queued=api.SlotQuota(limit=svc.settings.max_queued_renders, count=snap.queued),
        credits=api.CreditQuota(balance=snap.balance, enabled=svc.settings.credits_enabled),
    )


def create_upload(user_id: str, request: api.UploadRequest) -> api.UploadTicket:
    svc = service()
    settings = svc.settings
    svc.accounting.count_upload(user_id, settings.upload_rate_limit)
    key = storage.input_key(user_id, uuid.uuid4().hex, request.filename)
    url, expires = storage.presign_put(
        clients.s3(), settings.bucket_name, key, request.contentType.value, request.sizeBytes, expires_in=900
    )
    return api.UploadTicket(
        url=url,
        headers={"Content-Type": request.contentType.value},
        src=f"s3://{settings.bucket_name}/{key}",
        expiresAt=expires,
    )
