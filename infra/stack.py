"""The render service stack: assembles one construct per concern."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from pydantic import TypeAdapter, ValidationError

from infra.constructs.api import RenderApi
from infra.constructs.data import OutputRetention, RenderData
from infra.constructs.delivery import RenderDelivery
from infra.constructs.functions import RenderFunctions, RenderLimits
from infra.constructs.layers import DEFAULT_LAYERS_DIR, RenderLayers
from infra.constructs.notifications import RenderNotifications
from infra.constructs.observability import RenderObservability
from infra.constructs.remotion import RemotionAccess, RemotionDeployment
from infra.constructs.subscriptions import BusSubscription
from infra.constructs.webhooks import RenderWebhooks
from infra.constructs.workflow import RenderWorkflow
from render_service.destinations import MAX_DELIVERY_ATTEMPTS
from render_service.models.events import DetailType
from render_service.models.notifications import DESTINATION_NAME, Destination
from render_service.models.rates import RateWindow, legacy_rate_window, parse_rate_windows

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}
WORKFLOW_TIMEOUT = Duration.hours(2)


@dataclass(frozen=True)
class RenderServiceConfig:
    """Deployment settings; `from_context` reads them from cdk.json or `cdk -c key=value`."""

    architecture: str = "x86_64"
    allowed_source_buckets: tuple[str, ...] = ()
    alarm_email: str | None = None
    cors_allowed_origins: tuple[str, ...] = ("*",)
    retain_data: bool = True
    api_throttling_rate_limit: int = 50
    api_throttling_burst_limit: int = 100
    event_archive_days: int = 30
    inputs_retention_days: int = 30
    output_retention: OutputRetention = field(default_factory=OutputRetention)
    limits: RenderLimits = field(default_factory=RenderLimits)
    # The team's Remotion Lambda; None: `engine: "remotion"` is refused with a 503.
    remotion: RemotionDeployment | None = None
    layers_dir: Path = DEFAULT_LAYERS_DIR
    # The SES-verified sender of completion emails; None: `notify.email: true` is refused.
    email_from: str | None = None
    email_notify_default: bool = False
    # S3-compatible buckets outputs may be copied to (`deliverTo`), by name.
    delivery_destinations: Mapping[str, Destination] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"context architecture must be one of {sorted(ARCHITECTURES)}, got {self.architecture!r}")
        if not self.cors_allowed_origins:
            raise ValueError("context corsAllowedOrigins must list at least one origin (or '*')")
        if self.inputs_retention_days < 1:
            raise ValueError(f"context inputsRetentionDays must be at least 1, got {self.inputs_retention_days}")

    @classmethod
    def from_context(cls, scope: Construct) -> RenderServiceConfig:
        def get(key: str, default: Any) -> Any:
            value = scope.node.try_get_context(key)
            return default if value is None else value

        defaults = cls()
        limit_defaults = RenderLimits()
        retention_defaults = OutputRetention()
        return cls(
            architecture=str(get("architecture", defaults.architecture)),
            allowed_source_buckets=_strings(get("allowedSourceBuckets", [])),
            alarm_email=get("alarmEmail", None) or None,
            cors_allowed_origins=_strings(get("corsAllowedOrigins", list(defaults.cors_allowed_origins))),
            retain_data=_bool(get("retainData", defaults.retain_data)),
            api_throttling_rate_limit=int(get("apiThrottlingRateLimit", defaults.api_throttling_rate_limit)),
            api_throttling_burst_limit=int(get("apiThrottlingBurstLimit", defaults.api_throttling_burst_limit)),
            event_archive_days=int(get("eventArchiveDays", defaults.event_archive_days)),
            inputs_retention_days=int(get("inputsRetentionDays", defaults.inputs_retention_days)),
            output_retention=OutputRetention(
                default_days=int(get("outputRetentionDays", retention_defaults.default_days)),
                classes=tuple(
                    int(days) for days in _strings(get("retentionClasses", list(retention_defaults.classes)))
                ),
                reminder_hours=float(get("expiryReminderHours", retention_defaults.reminder_hours)),
            ),
            limits=RenderLimits(
                rate_limits=_rate_limits(scope),
                max_active_renders=int(get("maxActiveRenders", limit_defaults.max_active_renders)),
                max_queued_renders=int(get("maxQueuedRenders", limit_defaults.max_queued_renders)),
                initial_credits=int(get("initialCredits", limit_defaults.initial_credits)),
                credits_enabled=_bool(get("creditsEnabled", limit_defaults.credits_enabled)),
                allow_high_resolution=_bool(get("allowHighResolution", limit_defaults.allow_high_resolution)),
                poll_interval_seconds=int(get("pollIntervalSeconds", limit_defaults.poll_interval_seconds)),
                slot_wait_seconds=int(get("slotWaitSeconds", limit_defaults.slot_wait_seconds)),
                max_render_attempts=int(get("maxRenderAttempts", limit_defaults.max_render_attempts)),
                retry_delays_seconds=tuple(
                    int(delay) for delay in get("retryDelaysSeconds", limit_defaults.retry_delays_seconds)
                ),
            ),
            remotion=RemotionDeployment.from_context(get),
            email_from=get("emailFrom", None) or None,
            email_notify_default=_bool(get("emailNotifyDefault", defaults.email_notify_default)),
            delivery_destinations=_destinations(get("deliveryDestinations", {})),
        )


class RenderServiceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RenderServiceConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = config or RenderServiceConfig.from_context(self)
        self.config = config
        removal_policy = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        architecture = ARCHITECTURES[config.architecture]

        self.data = RenderData(
            self,
            "Data",
            cors_allowed_origins=config.cors_allowed_origins,
            inputs_retention=Duration.days(config.inputs_retention_days),
            removal_policy=removal_policy,
            output_retention=config.output_retention,
        )
        self.notifications = RenderNotifications(
            self, "Notifications", archive_retention=Duration.days(config.event_archive_days)
        )
        self.layers = RenderLayers(self, "Layers", arch=config.architecture, layers_dir=config.layers_dir)
        self.functions = RenderFunctions(
            self,
            "Functions",
            layers=self.layers,
            architecture=architecture,
            data=self.data,
            bus=self.notifications.bus,
            limits=config.limits,
            output_retention=config.output_retention,
            allowed_source_buckets=config.allowed_source_buckets,
            cors_allowed_origins=config.cors_allowed_origins,
        )
        fns = self.functions
        if config.remotion is not None:
            self.remotion = RemotionAccess(
                self,
                "Remotion",
                deployment=config.remotion,
                start=fns.start_render,
                poll=fns.poll_render,
                finalize=fns.finalize_render,
                record_failure=fns.record_failure,
                reconcile=fns.reconcile,
                api=fns.api,
            )
        self.workflow = RenderWorkflow(
            self,
            "Workflow",
            acquire_slot=fns.acquire_slot,
            start_render=fns.start_render,
            poll_render=fns.poll_render,
            finalize_render=fns.finalize_render,
            complete_render=fns.complete_render,
            record_failure=fns.record_failure,
            timeout=WORKFLOW_TIMEOUT,
        )
        fns.connect_workflow(self.workflow.state_machine)
        self.delivery = RenderDelivery(
            self, "Delivery", bucket=self.data.bucket, key_generator=fns.signing_key_generator
        )
        fns.connect_delivery(self.delivery)
        self.api = RenderApi(
            self,
            "Api",
            handler=fns.api,
            cors_allowed_origins=config.cors_allowed_origins,
            throttling_rate_limit=config.api_throttling_rate_limit,
            throttling_burst_limit=config.api_throttling_burst_limit,
            removal_policy=removal_policy,
        )
        self.observability = RenderObservability(
            self,
            "Observability",
            functions=fns.all,
            routed=fns.workflow_tasks,
            state_machine=self.workflow.state_machine,
            rest_api=self.api.rest_api,
            alarm_email=config.alarm_email,
        )
        fns.connect_email(config.email_from, config.email_notify_default)
        fns.connect_destinations(config.delivery_destinations)
        self.deliveries = BusSubscription(
            self,
            "Deliveries",
            bus=self.notifications.bus,
            function=fns.output_deliverer,
            detail_types=[DetailType.succeeded],
            # One more than the deliverer's attempts: the last one reports the failure itself.
            max_receive_count=MAX_DELIVERY_ATTEMPTS + 1,
            alarm_topic=self.observability.topic,
            description="Succeeded renders to the output deliverer",
        )
        self.email = BusSubscription(
            self,
            "Email",
            bus=self.notifications.bus,
            function=fns.email_notifier,
            detail_types=[DetailType.succeeded, DetailType.failed],
            max_receive_count=5,
            alarm_topic=self.observability.topic,
            description="Ended renders to the email notifier",
        )
        self.webhooks = RenderWebhooks(
            self,
            "Webhooks",
            bus=self.notifications.bus,
            deliverer=fns.webhook_deliverer,
            alarm_topic=self.observability.topic,
        )

        # Output ids are pinned: the local stack, scripts and frontends read them by name.
        outputs = {
            "ApiUrl": (self.api.url, "Base URL of the REST API (stage included)"),
            "TableName": (self.data.table.table_name, "DynamoDB table"),
            "BucketName": (self.data.bucket.bucket_name, "Media bucket (inputs/, work/, renders/)"),
            "EventBusName": (self.notifications.bus.event_bus_name, "EventBridge bus for render events"),
            "DownloadDomain": (self.delivery.domain_name, "CloudFront domain of signed download URLs"),
            "StateMachineArn": (self.workflow.state_machine.state_machine_arn, "Render workflow"),
            "UserPoolId": (self.api.user_pool.user_pool_id, "Cognito user pool"),
            "UserPoolClientId": (self.api.user_pool_client.user_pool_client_id, "Cognito app client (no secret)"),
            "WebhookSecretArn": (self.webhooks.secret.secret_arn, "Secret that signs webhooks (X-Render-Signature)"),
        }
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description).override_logical_id(output_id)


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's context (feature flags and defaults), for runs without the CDK CLI.

    The CLI reads cdk.json itself and passes context in CDK_CONTEXT_JSON, which App lets
    override what is given here; `python app.py` and the tests have only this.
    """
    context = json.loads(path.read_text()).get("context", {})
    if not isinstance(context, dict):
        raise ValueError(f"{path}: context must be an object")
    return context


def _rate_limits(scope: Construct) -> tuple[RateWindow, ...]:
    """Context `rateLimits` (a list of `{limit, seconds}`, or its JSON text from `cdk -c`); the older
    single-window keys `rateLimitRenders` / `rateLimitWindowSeconds` still work on their own."""
    windows = scope.node.try_get_context("rateLimits")
    legacy = {key: scope.node.try_get_context(key) for key in ("rateLimitRenders", "rateLimitWindowSeconds")}
    if any(value is not None for value in legacy.values()):
        if windows is not None:
            raise ValueError(
                "context rateLimits replaces rateLimitRenders and rateLimitWindowSeconds: set only rateLimits"
            )
        windows = legacy_rate_window(legacy["rateLimitRenders"], legacy["rateLimitWindowSeconds"])
    if windows is None:
        return RenderLimits().rate_limits
    try:
        return parse_rate_windows(windows)
    except ValidationError as exc:
        raise ValueError(f"context rateLimits: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _destinations(value: Any) -> dict[str, Destination]:
    """Context `deliveryDestinations`: `{name: {endpoint, bucket, prefix, credentialsSecretArn, region}}`."""
    if isinstance(value, str):
        value = json.loads(value)
    try:
        parsed = TypeAdapter(dict[str, Destination]).validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"context deliveryDestinations: {_first_error(exc)}") from None
    for name in parsed:
        if not re.match(DESTINATION_NAME, name):
            raise ValueError(f"context deliveryDestinations: name '{name}' must match {DESTINATION_NAME}")
    return parsed


def _strings(value: Any) -> tuple[str, ...]:
    """A context list, or a comma-separated string from `cdk -c key=a,b`."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in {"true", "1", "yes"}:
        return True
    if str(value).strip().lower() in {"false", "0", "no"}:
        return False
    raise ValueError(f"expected a boolean in context, got {value!r}")
