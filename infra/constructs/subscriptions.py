"""A consumer of the bus: rule -> SQS queue (with a dead-letter queue and its alarm) -> a Lambda.

Webhooks and email both hang off the bus this way, each with its own queue, so that one's retries
never repeat the other's work.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from render_service.models.events import SOURCE, DetailType

BATCH_SIZE = 10


class BusSubscription(Construct):
    """`queue` gets the service's events of `detail_types`; `function` consumes it; `dead_letters` keeps
    what failed `max_receive_count` times, and `alarm` tells ops it is not empty."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        function: lambda_.Function,
        detail_types: Sequence[DetailType],
        max_receive_count: int,
        alarm_topic: sns.ITopic,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        # Lambda requires the visibility timeout to cover the function's timeout (a batch in flight).
        timeout = function.timeout.to_seconds() if function.timeout else 60
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(max(60, timeout) * 2),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receive_count, queue=self.dead_letters),
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description=description,
            event_bus=bus,
            event_pattern=events.EventPattern(source=[SOURCE], detail_type=[d.value for d in detail_types]),
            # An event EventBridge could not put into the queue is kept too.
            targets=[targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letters, retry_attempts=8)],
        )
        function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
            )
        )
        self.alarm = self.dead_letters.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ).create_alarm(
            self,
            "DeadLettersNotEmpty",
            alarm_description=f"{description}: messages gave up after their retries (see the dead-letter queue)",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(actions.SnsAction(alarm_topic))
        self.alarm.add_ok_action(actions.SnsAction(alarm_topic))
