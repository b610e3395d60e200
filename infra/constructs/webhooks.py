"""Webhooks: a rule on the bus feeds a queue, the deliverer POSTs each event, signed; a DLQ and its alarm."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs import acknowledge, cfn
from render_service.models.events import SOURCE, DetailType

# With the deliverer's backoff (30 s doubling to a 15 min cap, render_service.webhooks), nine
# receives span about an hour; then the message goes to the dead-letter queue.
MAX_RECEIVE_COUNT = 9
BATCH_SIZE = 10


class RenderWebhooks(Construct):
    """`secret` signs every delivery; `queue` holds pending ones; `dead_letters` those that gave up."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        deliverer: lambda_.Function,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "SigningSecret",
            description="HMAC-SHA256 key of the render service's webhook signatures (X-Render-Signature)",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
        )
        acknowledge(
            cfn(self.secret),
            "AwsSolutions-SMG4",
            "Receivers verify with this key: rotating it is a coordinated change with every receiver "
            "(see the README), not an automatic rotation Lambda.",
        )
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        # Visibility: at least the function's timeout (a batch in flight), as Lambda requires.
        visibility = Duration.seconds(max(60, deliverer.timeout.to_seconds() if deliverer.timeout else 60) * 2)
        self.queue = sqs.Queue(
            self,
            "Deliveries",
            visibility_timeout=visibility,
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letters),
        )
        self.rule = events.Rule(
            self,
            "RenderEvents",
            description="The render service's own events, to the webhook deliverer",
            event_bus=bus,
            event_pattern=events.EventPattern(source=[SOURCE], detail_type=[d.value for d in DetailType]),
            targets=[targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letters, retry_attempts=8)],
        )
        deliverer.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
            )
        )
        deliverer.add_environment("WEBHOOK_SECRET_ARN", self.secret.secret_arn)
        self.secret.grant_read(deliverer)

        self.alarm = self.dead_letters.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ).create_alarm(
            self,
            "DeadLettersNotEmpty",
            alarm_description="Webhook deliveries gave up after about an hour of retries (see the DLQ)",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(actions.SnsAction(alarm_topic))
        self.alarm.add_ok_action(actions.SnsAction(alarm_topic))
