"""Email on completion: a render's success or final failure, mailed through SES to its owner.

Like webhooks, it hangs off the bus (rule -> SQS -> Lambda), never off the lifecycle. The address
is the `email` claim captured at submit (`RenderJob.notify_email`); the event carries none. The
download link is minted here, with a longer life than the event's (a person opens mail later).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from render_service import clients, links
from render_service.data.renders import RenderRepository
from render_service.models.events import SOURCE, DetailType
from render_service.models.jobs import RenderJob, RenderStatus
from render_service.service import on_reset, service
from render_service.settings import Settings
from render_service.webhooks import BusEvent

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

logger = Logger(child=True)
metrics = Metrics()

EMAILED = frozenset({DetailType.succeeded.value, DetailType.failed.value})


def video_name(job: RenderJob) -> str:
    subject = job.request.subject
    return f"{subject.type.value} {subject.id}" if subject else job.render_id


def length(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def compose(job: RenderJob, link: tuple[str, Any] | None) -> tuple[str, str]:
    """(subject, text body) of the email for a render that has ended."""
    name = video_name(job)
    if job.status == RenderStatus.complete and job.output is not None and link is not None:
        url, expires = link
        return (
            f"Your video {name} is ready",
            f"Your video {name} is ready.\n\n"
            f"Length: {length(job.output.duration_seconds)}\n"
            f"Download: {url}\n\n"
            f"The link works until {expires:%Y-%m-%d %H:%M} UTC.\n",
        )
    reason = job.error.message if job.error else "an unknown error"
    return (
        f"Your video {name} could not be rendered",
        f"Your video {name} could not be rendered: {reason}.\n\nAny credits it reserved were refunded.\n",
    )


class EmailNotifier:
    def __init__(self, settings: Settings, renders: RenderRepository, ses: SESClient) -> None:
        self.settings = settings
        self.renders = renders
        self.ses = ses

    def notify(self, event: BusEvent) -> str | None:
        """Sends the email for one bus event if its render asked for one; returns SES's message id."""
        if event.source != SOURCE or event.detail_type not in EMAILED or not self.settings.email_from:
            return None
        job = self.renders.get(str(event.detail.get("renderId", "")))
        if job is None or not job.notify_email:
            return None
        link = None
        if job.status == RenderStatus.complete and job.output is not None:
            link = links.output_url(
                job.output.key, self.settings.email_link_ttl_seconds, filename=f"{job.render_id}.mp4"
            )
        subject, text = compose(job, link)
        sent = self.ses.send_email(
            Source=self.settings.email_from,
            Destination={"ToAddresses": [job.notify_email]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
            },
        )
        logger.info(
            "email sent",
            extra={
                "render_id": job.render_id,
                "to": job.notify_email,
                "subject": subject,
                "message_id": sent["MessageId"],
            },
        )
        metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=1)
        return str(sent["MessageId"])


@cache
def notifier() -> EmailNotifier:
    svc = service()
    return EmailNotifier(svc.settings, svc.renders, clients.ses())


on_reset(notifier.cache_clear)
