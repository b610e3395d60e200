"""Delivery to an S3-compatible destination: a failed copy is retried, then reported, and never fails the render."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from render_service.destinations import MAX_DELIVERY_ATTEMPTS, deliverer
from render_service.lifecycle import lifecycle
from render_service.logic import pricing, renders
from render_service.models.events import DetailType, RenderEvent
from render_service.models.jobs import OutputObject, RenderJob
from render_service.models.requests import parse_request
from render_service.service import reset
from render_service.webhooks import BusEvent, RetryLater


@pytest.fixture
def unreachable(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A destination whose endpoint refuses connections (port 9, discard, has no listener here)."""
    secret = boto3.client("secretsmanager").create_secret(
        Name="dest", SecretString=json.dumps({"accessKeyId": "k", "secretAccessKey": "s"})
    )["ARN"]
    destinations = {"broken": {"endpoint": "http://127.0.0.1:9", "bucket": "b", "credentialsSecretArn": secret}}
    monkeypatch.setenv("DELIVERY_DESTINATIONS", json.dumps(destinations))
    monkeypatch.setenv("DELIVERY_RETRY_BASE_SECONDS", "0")
    reset()
    return "broken"


def _completed(aws: Any, destination: str) -> tuple[str, BusEvent]:
    ends = lifecycle()
    request = parse_request(
        {"timeline": {"scenes": [{"type": "title", "text": "x", "duration": 1}]}, "deliverTo": destination}
    )
    render_id = str(uuid.uuid4())
    job = RenderJob(
        render_id=render_id,
        user_id="alice",
        request=request,
        cost=1,
        deliveries=pricing.deliveries(request, render_id, ends.settings),
    )
    ends.accounting.admit(job)
    ends.accounting.acquire_slot(job)
    ends.renders.start_rendering(render_id)
    key = f"renders/alice/{render_id}.mp4"
    aws.s3.put_object(Bucket=ends.settings.bucket_name, Key=key, Body=b"\x00" * 1000)
    ends.complete(render_id, OutputObject(key=key, size_bytes=1000, duration_seconds=1.0))
    succeeded = next(e for e in aws.received_events() if e["detail-type"] == DetailType.succeeded.value)
    return render_id, BusEvent.model_validate(succeeded)


def test_a_failing_destination_is_retried_then_reported_and_the_render_stays_complete(
    aws: Any, unreachable: str
) -> None:
    render_id, event = _completed(aws, unreachable)
    for attempt in range(1, MAX_DELIVERY_ATTEMPTS):
        with pytest.raises(RetryLater):
            deliverer().deliver(event, receive_count=attempt)
        (pending,) = renders.get("alice", render_id).deliveries
        assert pending.status == "pending"
        assert pending.error
    assert aws.received_events() == []

    deliverer().deliver(event, receive_count=MAX_DELIVERY_ATTEMPTS)  # the last attempt reports, and is done

    view = renders.get("alice", render_id)
    assert view.status == "complete"
    (failed,) = view.deliveries
    assert (failed.destination, failed.key, failed.status) == ("broken", f"{render_id}.mp4", "failed")
    assert failed.error
    (announced,) = aws.received_events()
    assert announced["detail-type"] == "Render Delivery Failed"
    assert announced["detail"]["delivery"] == {
        "destination": "broken",
        "key": f"{render_id}.mp4",
        "error": failed.error,
    }
    assert announced["detail"]["eventId"] == RenderEvent.event_id(render_id, DetailType.delivery_failed)
    # The event redelivered after that changes nothing and announces nothing.
    deliverer().deliver(event, receive_count=MAX_DELIVERY_ATTEMPTS + 1)
    assert aws.received_events() == []
