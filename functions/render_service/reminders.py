"""The "Render Expiring" reminder: published on the service's bus, in the shape of the other render
events, some hours before an output expires (`EXPIRY_REMINDER_HOURS`, see retention.py).

An hourly schedule runs `remind`; each due render is claimed with a conditional write before it
is announced, so overlapping runs remind it once, and put back if the announcement fails, so the
next run tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from render_service import clients
from render_service.data.retention import RetentionRepository
from render_service.lifecycle import lifecycle
from render_service.models.events import DetailType
from render_service.models.jobs import RenderJob
from render_service.notify import EventPublisher, PublishFailed
from render_service.retention import expired
from render_service.service import on_reset
from render_service.settings import Settings, get_settings

logger = Logger(child=True)
metrics = Metrics()

# A run reminds at most this many renders; the next run carries on with the rest.
REMINDERS_PER_RUN = 500
# The longest link the API hands out; the reminder's lasts until the output expires, up to this.
MAX_LINK_SECONDS = 7 * 86400


@dataclass
class Reminders:
    settings: Settings
    repository: RetentionRepository
    events: EventPublisher

    def remind(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        reminded: list[str] = []
        due = self.repository.due(now, REMINDERS_PER_RUN)
        for job, seen in due:
            if not self.repository.claim(job.render_id, seen):
                continue  # another run has it
            if job.output is None or job.output.deleted or expired(job.output, now):
                continue  # nothing left to remind of; the claim took it off the index
            try:
                self.events.publish(DetailType.expiring, [self.detail(job, now)])
            except (PublishFailed, ClientError):
                self.repository.unclaim(job.render_id, seen)
                logger.exception(
                    "could not announce an expiry; the next run retries", extra={"render_id": job.render_id}
                )
                metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=1)
                continue
            reminded.append(job.render_id)
        logger.info("expiry reminders", extra={"due": len(due), "reminded": len(reminded)})
        return {"due": len(due), "reminded": reminded}

    def detail(self, job: RenderJob, now: datetime) -> dict[str, Any]:
        """The detail of the other render events, with the expiry and a link that lasts until it."""
        return lifecycle().event(DetailType.expiring, job, link_seconds=MAX_LINK_SECONDS).detail()


@cache
def reminders() -> Reminders:
    settings = get_settings()
    return Reminders(
        settings=settings,
        repository=RetentionRepository(clients.dynamodb(), settings.table_name),
        events=EventPublisher(clients.events(), settings.event_bus_name),
    )


on_reset(reminders.cache_clear)
