"""How long finished outputs are kept, and the reminder before they go.

Expiry is the bucket's own lifecycle (infra/constructs/data.py): one rule per retention class,
matching objects under `renders/` tagged `retention-days=<days>`. When a render completes, its
MP4 and stills are tagged with the class that applies (the user's own if an operator gave them
one the deployment has, else the default), and the completing write stores `retained_until` with
the status, computed as S3 computes expiry: the object's creation time plus the days, rounded up
to the next midnight UTC. From then on the output counts as gone (links refused with 410),
whether or not S3 has got round to deleting it, and no link is signed to outlive it.

The reminder ("Render Expiring") is published some hours before `retained_until` by a scheduled
function (`reminders.py`), for the renders on the sparse GSI4 (see data/retention.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from render_service import clients
from render_service.data.retention import RetentionRepository
from render_service.models.jobs import OutputObject, RenderJob
from render_service.service import on_reset
from render_service.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

TAG_KEY = "retention-days"


def expires_at(created: datetime, days: int, day_seconds: int = 86400) -> datetime:
    """When a lifecycle rule of `days` expires an object created at `created`: S3 adds the days
    and rounds up to the next midnight UTC (a "day" of `day_seconds`, shortened only locally)."""
    end = created.timestamp() + days * day_seconds
    return datetime.fromtimestamp(math.ceil(end / day_seconds) * day_seconds, UTC)


def retention_class(days: int | None, settings: Settings) -> int:
    """The class an output is kept under: never one with no lifecycle rule behind it. A user's
    retention that the deployment no longer has falls to the longest class not longer than it."""
    classes = settings.retention_day_classes
    if days is None:
        return settings.output_retention_days
    if days in classes:
        return days
    return max([c for c in classes if c <= days], default=settings.output_retention_days)


def reminder_lead(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.expiry_reminder_hours * 3600 * settings.retention_day_seconds / 86400)


def expired(output: OutputObject, now: datetime | None = None) -> bool:
    return output.retained_until is not None and (now or datetime.now(UTC)) >= output.retained_until


def link_seconds(output: OutputObject, requested: int, now: datetime | None = None) -> int:
    """A link's lifetime: what was asked, but never past the output's expiry."""
    if output.retained_until is None:
        return requested
    left = math.floor((output.retained_until - (now or datetime.now(UTC))).total_seconds())
    return max(0, min(requested, left))


def output_keys(output: OutputObject) -> list[str]:
    return [key for key in (output.key, output.poster_key, output.thumbnail_key) if key]


@dataclass
class Retention:
    settings: Settings
    repository: RetentionRepository
    s3: S3Client

    # --- at completion -------------------------------------------------------------------

    def retain(self, user_id: str, output: OutputObject) -> OutputObject:
        """Tags the output's objects with the class that applies and returns the output with its
        expiry, for the completing write to store with the status (never a complete render without
        `retainedUntil`). Safe to repeat: the tags and the creation time are the same again."""
        days = retention_class(self.repository.user_days(user_id), self.settings)
        bucket = self.settings.bucket_name
        try:
            created = self.s3.head_object(Bucket=bucket, Key=output.key)["LastModified"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
            # Removed before it could be kept (by ops): there is nothing to expire or remind of.
            logger.warning("completed output is missing", extra={"key": output.key})
            return output
        for key in output_keys(output):
            self.s3.put_object_tagging(
                Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": TAG_KEY, "Value": str(days)}]}
            )
        until = expires_at(created, days, self.settings.retention_day_seconds)
        logger.info("output retained", extra={"days": days, "until": until.isoformat()})
        return output.model_copy(update={"retention_days": days, "retained_until": until})

    def schedule_reminder(self, job: RenderJob) -> None:
        """Puts a completed render on the reminder index (GSI4), once; nothing if reminders are off."""
        output = job.output
        if self.settings.expiry_reminder_hours <= 0 or output is None or output.retained_until is None:
            return
        self.repository.schedule_reminder(job.render_id, output.retained_until - reminder_lead(self.settings))


@cache
def service() -> Retention:
    settings = get_settings()
    return Retention(
        settings=settings,
        repository=RetentionRepository(clients.dynamodb(), settings.table_name),
        s3=clients.s3(),
    )


on_reset(service.cache_clear)
