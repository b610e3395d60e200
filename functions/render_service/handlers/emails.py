"""The email notifier: SQS (fed by the bus's rule) -> one SES email per ended render that asked."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from render_service.emails import notifier
from render_service.webhooks import BusEvent

logger = Logger()
metrics = Metrics()
# A failed send (SES throttling) comes back after the queue's visibility timeout, then the DLQ.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _record(record: SQSRecord) -> None:
    notifier().notify(BusEvent.model_validate_json(record.body))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    with processor(records=event["Records"], handler=_record, lambda_context=context):
        processor.process()
    return processor.response()
