"""Scheduled (EventBridge, hourly): "Render Expiring" for outputs that expire soon (see reminders.py)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from render_service.reminders import reminders

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def remind_expiring(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return reminders().remind()
