"""Signed webhooks: the render's events, POSTed to the URL its request named.

The deliverer hangs off the bus (rule -> SQS -> Lambda), never off the lifecycle: an event is
delivered at least once, with the same `X-Render-Event-Id` on every attempt. The event itself
carries no webhook URL; the deliverer reads it from the job.

Signature: `X-Render-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed
with the deployment's secret (`signatures.py`, where `verify_signature` is the receiver's side).

Retries: a receiver that is down, slow, or answers 5xx/408/429 sees the message again after an
exponential backoff (the message's visibility is set to it), until SQS's maxReceiveCount moves it
to the dead-letter queue. Any other 4xx is the receiver's final word: logged, counted, dropped.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from pydantic import BaseModel, ConfigDict, Field

from render_service import clients, urls
from render_service.data.renders import RenderRepository
from render_service.models.events import SOURCE, DetailType
from render_service.service import on_reset, service
from render_service.settings import Settings
from render_service.signatures import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signature, verify_signature
from render_service.sources import _PinnedHTTPSConnection

__all__ = ["EVENT_ID_HEADER", "SIGNATURE_HEADER", "WebhookDeliverer", "deliverer", "verify_signature"]

logger = Logger(child=True)
metrics = Metrics()

TIMEOUT_SECONDS = 10.0
_LOOPBACK_NAMES = frozenset({"localhost"})


# --- the URL guard -------------------------------------------------------------------


def is_loopback_http(url: str) -> bool:
    """An http:// URL to this machine: allowed only with WEBHOOK_ALLOW_LOOPBACK (local stack, tests)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    if host in _LOOPBACK_NAMES:
        return True
    literal = urls.ip_literal(host)
    return literal is not None and literal.is_loopback


def check_url(url: str, *, allow_loopback: bool) -> None:
    """At submit: the same public-URL guard as sources. Raises `urls.UrlRefused` (where=webhook.url)."""
    if allow_loopback and is_loopback_http(url):
        return
    urls.check_public_url(url, where="webhook.url")


# --- delivery ------------------------------------------------------------------------


class Outcome(StrEnum):
    delivered = "delivered"
    refused = "refused"  # the receiver's 4xx: final
    blocked = "blocked"  # the URL no longer passes the guard: final
    skipped = "skipped"  # no webhook on this render, or not our event


class RetryLater(Exception):
    """The receiver did not take the delivery; the message comes back after `delay_seconds`."""

    def __init__(self, message: str, delay_seconds: int) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds


class BusEvent(BaseModel):
    """The EventBridge envelope as the rule puts it in the queue."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str = ""
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]


@dataclass(frozen=True)
class Response:
    status: int


def post(url: str, body: bytes, headers: Mapping[str, str], *, allow_loopback: bool) -> Response:
    """One POST, no redirects followed. https: resolved now, every answer public, the connection pinned
    to the vetted address (DNS may have changed since the submit). Raises `urls.UrlRefused` or OSError."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    conn: http.client.HTTPConnection
    path: str
    if allow_loopback and is_loopback_http(url):
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, parts.port or 443, timeout=TIMEOUT_SECONDS)
        else:
            conn = http.client.HTTPConnection(host, parts.port or 80, timeout=TIMEOUT_SECONDS)
    else:
        target = urls.parse_https_url(url)
        try:
            address = urls.resolve_public(target.host, target.port)
        except urls.HostUnresolved as unresolved:
            raise OSError(str(unresolved)) from None
        conn = _PinnedHTTPSConnection(target, address, ssl.create_default_context(), deadline)
        path = target.path
    try:
        conn.request("POST", path, body=body, headers=dict(headers))
        response = conn.getresponse()
        response.read(64 * 1024)  # drain a little, never a receiver's whole page
        return Response(status=response.status)
    finally:
        conn.close()


def backoff_seconds(receive_count: int, settings: Settings) -> int:
    """30 s, 1, 2, 4, 8 min, then 15 min (deployed defaults) before attempts 2, 3, ...."""
    delay = settings.webhook_retry_base_seconds * 2 ** max(0, receive_count - 1)
    return int(min(delay, settings.webhook_retry_cap_seconds))


def is_final(status: int) -> bool:
    """A 4xx other than 408 (timeout) and 429 (slow down) will not change on a retry."""
    return 400 <= status < 500 and status not in (408, 429)


class WebhookDeliverer:
    def __init__(self, settings: Settings, renders: RenderRepository, secrets: SecretsProvider) -> None:
        self.settings = settings
        self.renders = renders
        self._secrets = secrets

    def secret(self) -> str:
        if not self.settings.webhook_secret_arn:
            raise RuntimeError("WEBHOOK_SECRET_ARN is not set")
        return str(self._secrets.get(self.settings.webhook_secret_arn, max_age=300))

    def body(self, event: BusEvent, custom_data: dict[str, Any] | None) -> bytes:
        document: dict[str, Any] = {"type": event.detail_type, **event.detail}
        if custom_data is not None:
            document["customData"] = custom_data
        return json.dumps(document, separators=(",", ":"), default=str).encode()

    def deliver(self, event: BusEvent, *, receive_count: int = 1) -> Outcome:
        """Delivers one bus event to its render's webhook; raises `RetryLater` when it should come back."""
        if event.source != SOURCE or event.detail_type not in {d.value for d in DetailType}:
            return Outcome.skipped
        render_id = str(event.detail.get("renderId", ""))
        job = self.renders.get(render_id) if render_id else None
        webhook = job.request.webhook if job else None
        if webhook is None:
            return Outcome.skipped
        body = self.body(event, webhook.customData)
        event_id = str(event.detail.get("eventId") or event.id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "render-service-webhooks/1",
            SIGNATURE_HEADER: signature(self.secret(), body, int(time.time())),
            EVENT_ID_HEADER: event_id,
            EVENT_TYPE_HEADER: event.detail_type,
        }
        where = {"render_id": render_id, "event_id": event_id, "attempt": receive_count}
        try:
            response = post(webhook.url, body, headers, allow_loopback=self.settings.webhook_allow_loopback)
        except urls.UrlRefused as refused:
            logger.warning("webhook URL refused at delivery", extra={**where, "reason": refused.reason})
            metrics.add_metric(name="WebhooksBlocked", unit=MetricUnit.Count, value=1)
            return Outcome.blocked
        except (OSError, http.client.HTTPException) as exc:
            self._retry(where, receive_count, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status < 300:
            logger.info("webhook delivered", extra={**where, "status": response.status})
            metrics.add_metric(name="WebhooksDelivered", unit=MetricUnit.Count, value=1)
            return Outcome.delivered
        if is_final(response.status):
            logger.warning("webhook refused by the receiver; not retried", extra={**where, "status": response.status})
            metrics.add_metric(name="WebhooksRefused", unit=MetricUnit.Count, value=1)
            return Outcome.refused
        self._retry(where, receive_count, f"HTTP {response.status}")
        raise AssertionError("unreachable")

    def _retry(self, where: dict[str, Any], receive_count: int, why: str) -> None:
        delay = backoff_seconds(receive_count, self.settings)
        logger.warning("webhook not delivered; retrying", extra={**where, "why": why, "retry_in_seconds": delay})
        metrics.add_metric(name="WebhooksRetried", unit=MetricUnit.Count, value=1)
        raise RetryLater(why, delay)


def queue_url(queue_arn: str) -> str:
    """An SQS queue's URL from its ARN (`arn:aws:sqs:<region>:<account>:<name>`)."""
    _, _, _, _region, account, name = queue_arn.split(":", 5)
    return clients.sqs().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def postpone(queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
    """The message comes back after `delay_seconds` (its visibility timeout), not the queue's default."""
    clients.sqs().change_message_visibility(
        QueueUrl=queue_url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=delay_seconds
    )


@cache
def deliverer() -> WebhookDeliverer:
    svc = service()
    return WebhookDeliverer(svc.settings, svc.renders, SecretsProvider(boto3_client=clients.secretsmanager()))


on_reset(deliverer.cache_clear)
