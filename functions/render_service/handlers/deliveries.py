"""The output deliverer: SQS (fed by the bus's "Render Succeeded" rule) -> copies to S3-compatible destinations."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from render_service.destinations import deliverer
from render_service.webhooks import BusEvent, RetryLater, postpone

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _record(record: SQSRecord) -> None:
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        deliverer().deliver(BusEvent.model_validate_json(record.body), receive_count=receive_count)
    except RetryLater as later:
        postpone(record.event_source_arn or "", record.receipt_handle, later.delay_seconds)
        raise


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    with processor(records=event["Records"], handler=_record, lambda_context=context):
        processor.process()
    return processor.response()
