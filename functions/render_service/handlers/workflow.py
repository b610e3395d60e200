"""Step Functions task entry points: one Lambda function each (see infra/constructs/workflow.py)."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from render_service.lifecycle import lifecycle
from render_service.models.steps import CatchError, StepInput, StepModel
from render_service.workflow.steps import steps

logger = Logger()
tracer = Tracer()
metrics = Metrics()

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def task(step: Callable[[StepInput], StepModel]) -> Handler:
    """The same Powertools stack for every task: render id in every log line, traced, metrics flushed."""

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    @event_parser(model=StepInput)
    def handler(event: StepInput, context: LambdaContext) -> dict[str, Any]:
        logger.append_keys(render_id=event.renderId, user_id=event.userId)
        return step(event).result()

    return handler  # type: ignore[no-any-return]


class Ended(StepModel):
    status: str


def _complete(event: StepInput) -> Ended:
    # This attempt's output: StartRender's when it made the whole render, else FinalizeRender's
    # (a `$.output` left by an earlier attempt is older than a `made` progress).
    progress = event.progress
    output = progress.output if progress is not None and progress.status == "made" else event.output
    if output is None:
        raise ValueError("CompleteRender needs $.output from FinalizeRender, or StartRender's made output")
    status = steps().complete_render(event.renderId, output)
    metrics.add_metric(name="RendersSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RenderedSeconds", unit=MetricUnit.Seconds, value=output.durationSeconds)
    return Ended(status=status.value)


acquire_slot = task(lambda event: steps().acquire_slot(event.renderId))
start_render = task(lambda event: steps().start_render(event.renderId))
poll_render = task(lambda event: steps().poll_render(event.renderId))
finalize_render = task(lambda event: steps().finalize_render(event.renderId))
complete_render = task(_complete)
record_failure = task(lambda event: lifecycle().attempt_failed(event.renderId, event.error or CatchError()))


class ExecutionStatus(BaseModel):
    name: str  # the execution's name is the render id
    status: str
    stateMachineArn: str


class ExecutionStatusChange(EventBridgeModel):
    detail: ExecutionStatus


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ExecutionStatusChange)
def reconcile(event: ExecutionStatusChange, context: LambdaContext) -> dict[str, Any]:
    """EventBridge rule target for executions that end FAILED, TIMED_OUT or ABORTED."""
    logger.append_keys(render_id=event.detail.name)
    status = lifecycle().reconcile(event.detail.name, event.detail.status)
    return {"status": status.value if status else "unknown"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def sweep_lost_renders(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduled (EventBridge rate rule): ends renders whose workflow never started."""
    return lifecycle().sweep_lost()
