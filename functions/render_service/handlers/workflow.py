"""Step Functions task entry points: one Lambda function each (see infra/constructs/workflow.py)."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from render_service.workflow.steps import steps

logger = Logger()
tracer = Tracer()
metrics = Metrics()

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class StepInput(BaseModel):
    """The execution's state: its input plus what earlier steps added."""

    renderId: str = Field(pattern=r"^[A-Za-z0-9-]{1,80}$")
    userId: str
    error: dict[str, Any] | None = None  # set by a Catch before MarkFailed
    output: dict[str, Any] | None = None  # set by FinalizeRender for CompleteRender


def task(step: Callable[[StepInput], dict[str, Any]]) -> Handler:
    """The same Powertools stack for every task: render id in every log line, traced, metrics flushed."""

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    @event_parser(model=StepInput)
    def handler(event: StepInput, context: LambdaContext) -> dict[str, Any]:
        logger.append_keys(render_id=event.renderId, user_id=event.userId)
        return step(event)

    return handler  # type: ignore[no-any-return]


def _complete(event: StepInput) -> dict[str, Any]:
    if event.output is None:
        raise ValueError("CompleteRender needs $.output from FinalizeRender")
    result = steps().complete_render(event.renderId, event.output)
    metrics.add_metric(name="RendersSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RenderedSeconds", unit=MetricUnit.Seconds, value=event.output["durationSeconds"])
    return result


def _mark_failed(event: StepInput) -> dict[str, Any]:
    metrics.add_metric(name="RendersFailed", unit=MetricUnit.Count, value=1)
    return steps().mark_failed(event.renderId, event.error)


acquire_slot = task(lambda event: steps().acquire_slot(event.renderId))
start_render = task(lambda event: steps().start_render(event.renderId))
poll_render = task(lambda event: steps().poll_render(event.renderId))
finalize_render = task(lambda event: steps().finalize_render(event.renderId))
complete_render = task(_complete)
mark_failed = task(_mark_failed)


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


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def sweep_lost_renders(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduled (EventBridge rate rule): ends renders whose workflow never started."""
    return steps().sweep_lost_submissions()
