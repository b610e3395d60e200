"""Retention against moto: the class a completed output is tagged with, its expiry, the links that
never outlive it, the one reminder before it goes, and what is left after (the record, a 410)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from infra.admin import main as admin
from render_service import clients, errors, storage
from render_service.data.items import serialize_value
from render_service.lifecycle import lifecycle
from render_service.logic import renders
from render_service.models.jobs import RenderJob
from render_service.models.steps import OutputResult
from render_service.models.timeline import RenderRequest
from render_service.notify import EventPublisher
from render_service.reminders import Reminders, reminders
from render_service.retention import TAG_KEY, expires_at, service
from render_service.service import service as wiring
from render_service.workflow.steps import Steps

TABLE, BUCKET = "renders-test", "renders-test-bucket"
REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 2}]}})


def completed(aws: Any, user: str = "alice", render_id: str = "r-1") -> RenderJob:
    """A render completed by CompleteRender, with the MP4 and stills FinalizeRender uploaded."""
    steps = Steps(lifecycle())
    job = RenderJob(render_id=render_id, user_id=user, request=REQUEST, cost=1)
    steps.accounting.admit(job)
    steps.accounting.acquire_slot(job)
    steps.renders.start_rendering(render_id)
    key, poster, thumbnail = storage.output_keys(user, render_id)
    for name in (key, poster, thumbnail):
        aws.s3.put_object(Bucket=BUCKET, Key=name, Body=b"\x00" * 64)
    output = OutputResult(key=key, sizeBytes=64, durationSeconds=2.0, posterKey=poster, thumbnailKey=thumbnail)
    steps.complete_render(render_id, output)
    return steps.renders.require(render_id)


def expire_at(render_id: str, until: datetime) -> None:
    """Moves an output's expiry (as if it had been kept for less), reminder included."""
    svc = wiring()
    job = svc.renders.require(render_id)
    assert job.output is not None
    output = job.output.model_copy(update={"retained_until": until}).model_dump()
    clients.dynamodb().update_item(
        TableName=TABLE,
        Key={"PK": {"S": f"RENDER#{render_id}"}, "SK": {"S": "RENDER"}},
        UpdateExpression="SET #output = :output",
        ExpressionAttributeNames={"#output": "output"},
        ExpressionAttributeValues={":output": serialize_value(output)},
    )
    service().schedule_reminder(svc.renders.require(render_id))


def tags(aws: Any, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in aws.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}


def url_seconds(url: str) -> int:
    return int(parse_qs(urlparse(url).query)["X-Amz-Expires"][0])


def test_expiry_is_s3s_creation_plus_days_rounded_up_to_midnight_utc() -> None:
    created = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    assert expires_at(created, 3) == datetime(2026, 1, 19, tzinfo=UTC)
    assert expires_at(datetime(2026, 1, 15, tzinfo=UTC), 7) == datetime(2026, 1, 22, tzinfo=UTC)
    # A shortened day (the local stack's) rounds the same way, to a multiple of its length.
    assert expires_at(datetime.fromtimestamp(105, UTC), 2, day_seconds=10) == datetime.fromtimestamp(130, UTC)


def test_a_completed_output_is_tagged_with_the_default_class_and_kept_until_its_expiry(aws: Any) -> None:
    job = completed(aws)
    for key in storage.output_keys("alice", "r-1"):
        assert tags(aws, key) == {TAG_KEY: "7"}
    created = aws.s3.head_object(Bucket=BUCKET, Key=job.output.key)["LastModified"]
    assert job.output.retention_days == 7
    assert job.output.retained_until == expires_at(created, 7)
    view = renders.get("alice", "r-1").output
    assert view.retainedUntil == job.output.retained_until
    assert view.expired is False
    succeeded = [e["detail"] for e in aws.received_events() if e["detail-type"] == "Render Succeeded"]
    assert [datetime.fromisoformat(d["output"]["retainedUntil"]) for d in succeeded] == [job.output.retained_until]
    # A retried CompleteRender changes nothing.
    Steps(lifecycle()).complete_render("r-1", OutputResult(key=job.output.key, sizeBytes=64, durationSeconds=2.0))
    assert wiring().renders.require("r-1").output == job.output


def test_a_user_given_a_longer_retention_by_the_admin_cli_keeps_outputs_that_long(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert admin(["set-retention", "--table", TABLE, "--user", "bob", "--days", "30", "--reason", "premium"]) == 0
    assert capsys.readouterr().out.strip() == "bob: outputs kept 30 days"
    job = completed(aws, user="bob", render_id="r-bob")
    assert job.output.retention_days == 30
    assert tags(aws, job.output.key) == {TAG_KEY: "30"}
    # Back to the default; only the deployment's classes (each has a lifecycle rule) are accepted.
    admin(["set-retention", "--table", TABLE, "--user", "bob", "--default", "--reason", "plan ended"])
    assert capsys.readouterr().out.strip() == "bob: outputs kept 7 days (the deployment's default)"
    with pytest.raises(SystemExit):
        admin(["set-retention", "--table", TABLE, "--user", "bob", "--days", "45", "--reason", "typo"])
    assert "--days: must be one of the deployment's retention classes (7, 30), got 45" in capsys.readouterr().err


def test_no_link_outlives_the_output(aws: Any) -> None:
    completed(aws)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=120)
    expire_at("r-1", soon)
    view = renders.get("alice", "r-1").output
    assert 100 <= url_seconds(view.url) <= 120
    assert url_seconds(view.posterUrl) <= 120
    link = renders.download_url("alice", "r-1", expires_in=604800)
    assert link.expiresAt <= soon
    assert url_seconds(link.url) <= 120


def test_after_expiry_the_record_stays_and_the_output_is_gone(aws: Any) -> None:
    completed(aws)
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    expire_at("r-1", past)
    view = renders.get("alice", "r-1")
    assert (view.status, view.output.expired, view.output.retainedUntil) == ("complete", True, past)
    assert (view.output.url, view.output.posterUrl, view.output.thumbnailUrl) == (None, None, None)
    assert view.output.sizeBytes == 64
    with pytest.raises(errors.OutputGone):
        renders.download_url("alice", "r-1", expires_in=3600)
    with pytest.raises(errors.OutputGone):
        renders.delete_output("alice", "r-1")


def _due(render_id: str) -> datetime:
    """Brings a kept render's expiry within the reminder lead; returns now."""
    expire_at(render_id, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))
    return datetime.now(UTC)


def test_the_reminder_goes_out_once_in_the_shape_of_the_other_events(aws: Any) -> None:
    job = completed(aws)
    aws.received_events()  # Render Succeeded
    # Kept for 7 days, reminded 48 h before: not due yet.
    assert reminders().remind()["reminded"] == []
    assert job.output.retained_until is not None
    later = job.output.retained_until - timedelta(hours=47)
    assert reminders().remind(now=later)["reminded"] == ["r-1"]
    assert reminders().remind(now=later)["reminded"] == []  # once
    events = [e for e in aws.received_events() if e["detail-type"] == "Render Expiring"]
    assert len(events) == 1
    (event,) = events
    assert event["source"] == "render-service"
    detail = event["detail"]
    assert {k: detail[k] for k in ("renderId", "userId", "status", "engine")} == {
        "renderId": "r-1",
        "userId": "alice",
        "status": "complete",
        "engine": "ffmpeg",
    }
    assert datetime.fromisoformat(detail["output"]["retainedUntil"]) == job.output.retained_until
    assert detail["output"]["key"] == job.output.key
    assert detail["output"]["posterKey"] == job.output.poster_key
    assert datetime.fromisoformat(detail["output"]["expiresAt"]) <= job.output.retained_until


def test_deleted_outputs_are_not_reminded_and_leave_the_index(aws: Any) -> None:
    completed(aws)
    now = _due("r-1")
    renders.delete_output("alice", "r-1")
    result = reminders().remind(now=now)
    assert result["reminded"] == []
    assert reminders().repository.due(now, 10) == []
    assert not [e for e in aws.received_events() if e["detail-type"] == "Render Expiring"]


def test_a_reminder_that_cannot_be_published_is_retried_next_run(aws: Any) -> None:
    completed(aws)
    now = _due("r-1")

    class Refusing(EventPublisher):
        def publish(self, detail_type: Any, details: Any) -> None:
            from render_service.notify import PublishFailed

            raise PublishFailed("1 event(s) refused")

    live = reminders()
    refusing = Reminders(settings=live.settings, repository=live.repository, events=Refusing(aws.events, "bus"))
    assert refusing.remind(now=now)["reminded"] == []
    assert live.remind(now=now)["reminded"] == ["r-1"]
