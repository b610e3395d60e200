"""Step Functions task entry points: one Lambda function each (see infra/constructs/workflow.py)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from render_service.workflow.steps import steps

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class StepInput(BaseModel):
    """The execution's state: its input plus what earlier steps added."""

    renderId: str = Field(pattern=r"^[A-Za-z0-9-]{1,80}$")
    userId: str
    error: dict[str, Any] | None = None  # set by a Catch before MarkFailed


def _bind(event: StepInput) -> None:
    logger.append_keys(render_id=event.renderId, user_id=event.userId)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=StepInput)
def acquire_slot(event: StepInput, context: LambdaContext) -> dict[str, Any]:
    _bind(event)
    return steps().acquire_slot(event.renderId)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=StepInput)
def start_render(event: StepInput, context: LambdaContext) -> dict[str, Any]:
    _bind(event)
    return steps().start_render(event.renderId)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=StepInput)
def poll_render(event: StepInput, context: LambdaContext) -> dict[str, Any]:
    _bind(event)
    return steps().poll_render(event.renderId)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=StepInput)
def finalize_render(event: StepInput, context: LambdaContext) -> dict[str, Any]:
    _bind(event)
    result = steps().finalize_render(event.renderId)
    metrics.add_metric(name="RendersSucceeded", unit="Count", value=1)
    metrics.add_metric(name="RenderedSeconds", unit="Seconds", value=result["durationSeconds"])
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=StepInput)
def mark_failed(event: StepInput, context: LambdaContext) -> dict[str, Any]:
    _bind(event)
    metrics.add_metric(name="RendersFailed", unit="Count", value=1)
    return steps().mark_failed(event.renderId, event.error)


class ExecutionStatus(BaseModel):
    name: str  # the execution's name is the render id
    status: str
    stateMachineArn: str


class ExecutionStatusChange(EventBridgeModel):
    detail: ExecutionStatus


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ExecutionStatusChange)
def reconcile(event: ExecutionStatusChange, context: LambdaContext) -> dict[str, Any]:
    """EventBridge rule target for executions that end FAILED, TIMED_OUT or ABORTED."""
    logger.append_keys(render_id=event.detail.name)
    return steps().reconcile(event.detail.name, event.detail.status)
