"""Delivery to a deployment's S3-compatible destinations (Cloudflare R2, MinIO, another S3).

After "Render Succeeded" (bus rule -> SQS -> this), each pending delivery of the render is copied:
streamed from our bucket into the destination's, multipart above 16 MiB, never through /tmp. A
failed copy comes back with a backoff; the last attempt marks it failed on the job and announces
"Render Delivery Failed". A delivery never changes the render's own status: its output is safe in
our bucket either way.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from render_service import clients
from render_service.data.renders import RenderRepository
from render_service.models.events import SOURCE, DetailType, EventDelivery, RenderEvent
from render_service.models.jobs import Delivery, DeliveryStatus, RenderJob, RenderStatus
from render_service.models.notifications import Destination
from render_service.notify import EventPublisher
from render_service.service import on_reset, service
from render_service.settings import Settings
from render_service.webhooks import BusEvent, RetryLater

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)
metrics = Metrics()

# Attempts per event (the queue's maxReceiveCount is one more, so the last attempt can report).
MAX_DELIVERY_ATTEMPTS = 5
PART_BYTES = 16 * 1024 * 1024
_TRANSFER = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=4)


def destination_client(destination: Destination, credentials: dict[str, Any]) -> S3Client:
    """An S3 client for the destination with its own keys, never the function's role."""
    return boto3.client(  # type: ignore[no-any-return]
        "s3",
        endpoint_url=destination.endpoint,
        region_name=destination.region,
        aws_access_key_id=str(credentials["accessKeyId"]),
        aws_secret_access_key=str(credentials["secretAccessKey"]),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def copy_output(source: S3Client, bucket: str, key: str, target: S3Client, destination: Destination, to: str) -> None:
    """Streams one object across accounts/providers (a server-side copy cannot leave the provider)."""
    body = source.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        target.upload_fileobj(body, destination.bucket, to, ExtraArgs={"ContentType": "video/mp4"}, Config=_TRANSFER)
    finally:
        body.close()


class OutputDeliverer:
    def __init__(
        self, settings: Settings, renders: RenderRepository, events: EventPublisher, secrets: SecretsProvider
    ) -> None:
        self.settings = settings
        self.renders = renders
        self.events = events
        self._secrets = secrets

    def credentials(self, destination: Destination) -> dict[str, Any]:
        value = self._secrets.get(destination.credentialsSecretArn, max_age=300)
        return dict(json.loads(str(value)))

    def deliver(self, event: BusEvent, *, receive_count: int = 1) -> None:
        """Copies every pending delivery of a succeeded render; raises `RetryLater` while any may still work."""
        if event.source != SOURCE or event.detail_type != DetailType.succeeded.value:
            return
        job = self.renders.get(str(event.detail.get("renderId", "")))
        if job is None or job.status != RenderStatus.complete or job.output is None:
            return
        retry: str | None = None
        for index, delivery in enumerate(job.deliveries):
            if delivery.status != DeliveryStatus.pending:
                continue  # delivered (a redelivered event) or already reported
            error = self._copy(job, delivery)
            attempts = delivery.attempts + 1
            where = {"render_id": job.render_id, "destination": delivery.destination, "attempt": attempts}
            if error is None:
                self.renders.save_delivery(
                    job.render_id,
                    index,
                    delivery.model_copy(
                        update={"status": DeliveryStatus.delivered, "error": None, "attempts": attempts}
                    ),
                )
                logger.info("output delivered", extra={**where, "key": delivery.key})
                metrics.add_metric(name="DeliveriesSucceeded", unit=MetricUnit.Count, value=1)
            elif receive_count >= MAX_DELIVERY_ATTEMPTS:
                failed = delivery.model_copy(
                    update={"status": DeliveryStatus.failed, "error": error, "attempts": attempts}
                )
                self.renders.save_delivery(job.render_id, index, failed)
                self._announce_failure(job, failed)
                logger.error("output delivery failed; giving up", extra={**where, "error": error})
                metrics.add_metric(name="DeliveriesFailed", unit=MetricUnit.Count, value=1)
            else:
                self.renders.save_delivery(
                    job.render_id, index, delivery.model_copy(update={"error": error, "attempts": attempts})
                )
                logger.warning("output delivery failed; retrying", extra={**where, "error": error})
                retry = error
        if retry is not None:
            delay = self.settings.delivery_retry_base_seconds * 2 ** max(0, receive_count - 1)
            raise RetryLater(retry, int(min(delay, 900)))

    def _copy(self, job: RenderJob, delivery: Delivery) -> str | None:
        """None when the copy is in place; otherwise what went wrong, for the job and the event."""
        destination = self.settings.delivery_destinations.get(delivery.destination)
        if destination is None:
            return f"destination '{delivery.destination}' is no longer configured"
        assert job.output is not None
        try:
            target = destination_client(destination, self.credentials(destination))
            copy_output(clients.s3(), self.settings.bucket_name, job.output.key, target, destination, delivery.key)
        except (ClientError, BotoCoreError, OSError, KeyError, ValueError) as exc:
            detail = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
            return f"{type(exc).__name__}{f' {detail}' if detail else ''}: {exc}"[:500]
        return None

    def _announce_failure(self, job: RenderJob, delivery: Delivery) -> None:
        event = RenderEvent(
            eventId=RenderEvent.event_id(job.render_id, DetailType.delivery_failed),
            renderId=job.render_id,
            userId=job.user_id,
            status=job.status.value,
            engine=job.engine,
            subject=job.request.subject,
            attempts=job.attempts,
            delivery=EventDelivery(destination=delivery.destination, key=delivery.key, error=delivery.error or ""),
        )
        self.events.publish(DetailType.delivery_failed, [event.detail()])


@cache
def deliverer() -> OutputDeliverer:
    svc = service()
    return OutputDeliverer(
        svc.settings, svc.renders, svc.events, SecretsProvider(boto3_client=clients.secretsmanager())
    )


on_reset(deliverer.cache_clear)
