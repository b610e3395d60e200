"""Webhooks: the service's events to the deliverer (a bus subscription), and the secret that signs them."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs import acknowledge, cfn
from infra.constructs.subscriptions import BusSubscription
from render_service.models.events import DetailType

# With the deliverer's backoff (30 s doubling to a 15 min cap, render_service.webhooks), nine
# receives span about an hour; then the message goes to the dead-letter queue.
MAX_RECEIVE_COUNT = 9


class RenderWebhooks(Construct):
    """`secret` signs every delivery; `subscription` holds pending deliveries and those that gave up."""

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
        self.subscription = BusSubscription(
            self,
            "Deliveries",
            bus=bus,
            function=deliverer,
            detail_types=list(DetailType),
            max_receive_count=MAX_RECEIVE_COUNT,
            alarm_topic=alarm_topic,
            description="Render events to the renders' webhooks",
        )
        deliverer.add_environment("WEBHOOK_SECRET_ARN", self.secret.secret_arn)
        self.secret.grant_read(deliverer)
