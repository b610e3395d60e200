"""Renders one chunk; invoked asynchronously (InvocationType=Event) by StartRender and PollRender."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from render_service.workflow.chunks import ChunkWorker

logger = Logger()
tracer = Tracer()


class ChunkTask(BaseModel):
    renderId: str = Field(pattern=r"^[A-Za-z0-9-]{1,80}$")
    index: int = Field(ge=0)
    attempt: int = Field(ge=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ChunkTask)
def handler(event: ChunkTask, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(render_id=event.renderId, chunk=event.index, attempt=event.attempt)
    return ChunkWorker.default().run(event.renderId, event.index, event.attempt)
