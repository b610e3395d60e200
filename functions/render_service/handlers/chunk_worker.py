"""Renders one chunk; invoked asynchronously (InvocationType=Event) by StartRender and PollRender."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from render_service.models.steps import ChunkTask
from render_service.workflow.chunks import ChunkWorker

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ChunkTask)
def handler(event: ChunkTask, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(
        render_id=event.renderId, render_attempt=event.renderAttempt, chunk=event.index, attempt=event.attempt
    )
    return ChunkWorker.default().run(event)
