"""Every Lambda function of the service, made by one builder from a table of specs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs import acknowledge, cfn, default_policy, nag_text
from infra.constructs.data import OutputRetention, RenderData
from infra.constructs.delivery import RenderDelivery
from infra.constructs.layers import RUNTIME, RenderLayers
from render_service.models.notifications import Destination
from render_service.models.rates import DEFAULT_RATE_WINDOWS, RateWindow, rate_windows_json

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
CODE_EXCLUDE = ["**/__pycache__", "**/*.pyc"]
SERVICE_NAME = "render-service"
METRICS_NAMESPACE = "RenderService"
FFMPEG_ENV = {"FFMPEG_PATH": "/opt/bin/ffmpeg", "FONT_DIR": "/opt/fonts"}

INPUTS, WORK, RENDERS = "inputs/*", "work/*", "renders/*"
# Job and chunk items: the only items the ffmpeg functions (untrusted media) may touch.
RENDER_ITEMS = "RENDER#*"
# What grant_read's wildcard actions cover; the resources stay scoped to the granted prefixes.
S3_READ_ACTIONS = {
    "s3:GetObject*": "GetObject and its version/tagging/attribute variants, on the granted key prefixes only.",
    "s3:GetBucket*": "bucket metadata (location, versioning) of the granted buckets only.",
    "s3:List*": "ListBucket on the granted buckets, so missing keys read as 404 and work/<id>/ can be cleared.",
}


@dataclass(frozen=True)
class RenderLimits:
    """Quota and pacing settings, passed to the functions as environment variables.

    The API admits renders with the quota settings and the workflow steps settle them
    (slots, credits, refunds), so both get the same values.
    """

    rate_limits: tuple[RateWindow, ...] = DEFAULT_RATE_WINDOWS
    max_active_renders: int = 3
    max_queued_renders: int = 10
    initial_credits: int = 100
    credits_enabled: bool = True
    allow_high_resolution: bool = False
    poll_interval_seconds: int = 5
    slot_wait_seconds: int = 10
    max_render_attempts: int = 3
    retry_delays_seconds: tuple[int, ...] = (30, 120, 300)

    def quota_env(self) -> dict[str, str]:
        return {
            "RATE_LIMITS": rate_windows_json(self.rate_limits),
            "MAX_ACTIVE_RENDERS": str(self.max_active_renders),
            "MAX_QUEUED_RENDERS": str(self.max_queued_renders),
            "INITIAL_CREDITS": str(self.initial_credits),
            "CREDITS_ENABLED": str(self.credits_enabled).lower(),
            "ALLOW_HIGH_RESOLUTION": str(self.allow_high_resolution).lower(),
        }

    def pacing_env(self) -> dict[str, str]:
        return {
            "POLL_INTERVAL_SECONDS": str(self.poll_interval_seconds),
            "SLOT_WAIT_SECONDS": str(self.slot_wait_seconds),
            "MAX_RENDER_ATTEMPTS": str(self.max_render_attempts),
            "RETRY_DELAYS_SECONDS": ",".join(str(delay) for delay in self.retry_delays_seconds),
        }


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between functions. Bucket access is by key pattern (`work/*`), read/put/delete."""

    handler: str
    description: str
    memory_mib: int = 256
    timeout: Duration = field(default_factory=lambda: Duration.seconds(30))
    ffmpeg: bool = False  # ffmpeg layer, 10 GB /tmp, FFMPEG_PATH/FONT_DIR, read on source buckets
    environment: Mapping[str, str] = field(default_factory=dict)
    read: Sequence[str] = ()
    put: Sequence[str] = ()
    delete: Sequence[str] = ()
    tag: Sequence[str] = ()  # s3:PutObjectTagging only (the retention class, see render_service/retention.py)
    put_events: bool = True
    # DynamoDB. None: read/write on the table and its indexes (grant_read_write_data). Otherwise only
    # these actions, on the table itself (no index), on items whose partition key matches RENDER_ITEMS.
    # ForAllValues is vacuously true for a request that names no partition key (Scan), so list only
    # actions that always name one.
    render_item_actions: Sequence[str] | None = None


class FunctionBuilder:
    """Builds one function: own role and log group, shared code asset and layers, common settings."""

    def __init__(
        self,
        scope: Construct,
        *,
        layers: RenderLayers,
        architecture: lambda_.Architecture,
        environment: Mapping[str, str],
    ) -> None:
        self.scope = scope
        self.layers = layers
        self.architecture = architecture
        self.environment = dict(environment)
        self.code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=CODE_EXCLUDE)

    def build(self, construct_id: str, spec: FunctionSpec) -> lambda_.Function:
        log_group = logs.LogGroup(
            self.scope,
            f"{construct_id}Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # An own role instead of AWSLambdaBasicExecutionRole: logs only to this function's group.
        role = iam.Role(
            self.scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{SERVICE_NAME} {construct_id} function",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self.scope,
            construct_id,
            description=spec.description,
            runtime=RUNTIME,
            architecture=self.architecture,
            code=self.code,
            handler=spec.handler,
            memory_size=spec.memory_mib,
            timeout=spec.timeout,
            ephemeral_storage_size=Size.gibibytes(10) if spec.ffmpeg else None,
            layers=[self.layers.deps, self.layers.ffmpeg] if spec.ffmpeg else [self.layers.deps],
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            environment={**self.environment, **(FFMPEG_ENV if spec.ffmpeg else {}), **spec.environment},
        )
        acknowledge(
            cfn(function),
            "AwsSolutions-L1",
            "Pinned to python3.12 on purpose: the layers are built for cp312 wheels (layers/build.py).",
        )
        acknowledge(
            default_policy(role),
            "AwsSolutions-IAM5[Resource::*]",
            "Active tracing: xray:PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
        )
        return function


class RenderFunctions(Construct):
    """The API function, the workflow task functions and the chunk worker, with least-privilege grants."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layers: RenderLayers,
        architecture: lambda_.Architecture,
        data: RenderData,
        bus: events.IEventBus,
        limits: RenderLimits,
        allowed_source_buckets: Sequence[str],
        output_retention: OutputRetention | None = None,
        cors_allowed_origins: Sequence[str] = ("*",),
    ) -> None:
        super().__init__(scope, construct_id)
        self._data = data
        self._bus = bus
        self._sources = {
            name: s3.Bucket.from_bucket_name(self, f"SourceBucket{index}", name)
            for index, name in enumerate(allowed_source_buckets)
        }
        # Every function reads its settings through render_service.settings; these are required there.
        builder = FunctionBuilder(
            self,
            layers=layers,
            architecture=architecture,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "TABLE_NAME": data.table.table_name,
                "BUCKET_NAME": data.bucket.bucket_name,
                "EVENT_BUS_NAME": bus.event_bus_name,
            },
        )
        sources = {"ALLOWED_SOURCE_BUCKETS": ",".join(allowed_source_buckets)}
        quota = limits.quota_env()
        retention = (output_retention or OutputRetention()).env()
        workflow = {**quota, **limits.pacing_env(), **retention}
        handlers = "render_service.handlers"

        self.chunk_worker = self._add(
            builder,
            "ChunkWorker",
            FunctionSpec(
                handler=f"{handlers}.chunk_worker.handler",
                description="Renders one chunk of a render to work/<id>/chunk-N.mp4",
                memory_mib=3008,
                timeout=Duration.minutes(15),
                ffmpeg=True,
                environment=sources,
                read=(WORK,),  # StartRender stages every source into work/<id>/sources/
                put=(WORK,),
                put_events=False,
                render_item_actions=("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"),
            ),
        )
        # StartRender/PollRender invoke chunks with InvocationType=Event. Lambda's own async retries
        # would race the workflow, which re-dispatches chunks that died.
        self.chunk_worker.configure_async_invoke(retry_attempts=0, max_event_age=Duration.hours(1))
        chunk_env = {"CHUNK_FUNCTION_NAME": self.chunk_worker.function_name}

        self.api = self._add(
            builder,
            "Api",
            FunctionSpec(
                handler=f"{handlers}.api.handler",
                description="REST API: renders, quota, uploads",
                memory_mib=512,
                timeout=Duration.seconds(29),  # API Gateway's integration timeout
                # The same origins as API Gateway's preflight, for the headers on actual responses.
                environment={**sources, **quota, "CORS_ALLOWED_ORIGINS": ",".join(cors_allowed_origins)},
                read=(RENDERS,),  # HEAD + presigned GETs of outputs
                put=(INPUTS,),  # presigned upload PUTs
                delete=(RENDERS,),  # DELETE /renders/{id}
            ),
        )
        self.webhook_deliverer = self._add(
            builder,
            "WebhookDeliverer",
            FunctionSpec(
                handler=f"{handlers}.webhooks.handler",
                description="Delivers render events to the renders' webhooks (signed POSTs, from SQS)",
                # A batch of 10, each POST bounded to 10 s (render_service.webhooks.TIMEOUT_SECONDS).
                timeout=Duration.minutes(2),
                put_events=False,
                render_item_actions=("dynamodb:GetItem",),  # the job's webhook, nothing else
            ),
        )
        self.email_notifier = self._add(
            builder,
            "EmailNotifier",
            FunctionSpec(
                handler=f"{handlers}.emails.handler",
                description="Emails a render's owner when it succeeds or finally fails (SES, from SQS)",
                timeout=Duration.minutes(1),
                put_events=False,
                render_item_actions=("dynamodb:GetItem",),  # the job: its address, output and error
            ),
        )
        self.output_deliverer = self._add(
            builder,
            "OutputDeliverer",
            FunctionSpec(
                handler=f"{handlers}.deliveries.handler",
                description="Copies finished outputs to the deployment's S3-compatible destinations (from SQS)",
                memory_mib=1024,  # four 16 MiB parts in flight
                timeout=Duration.minutes(15),  # a large output over the Internet
                read=(RENDERS,),
                render_item_actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),  # the job's deliveries
            ),
        )
        # Not a service function (no table, no bus): the custom resource behind the signing key pair.
        self.signing_key_generator = builder.build(
            "SigningKeyGenerator",
            FunctionSpec(
                handler=f"{handlers}.signing_key.handler",
                description="Custom resource: generates the CloudFront signing key pair into Secrets Manager",
                timeout=Duration.minutes(1),
            ),
        )
        self.acquire_slot = self._add(
            builder,
            "AcquireSlot",
            FunctionSpec(
                handler=f"{handlers}.workflow.acquire_slot",
                description="Workflow: take one of the user's render slots, or say how long to wait",
                environment=workflow,
            ),
        )
        self.start_render = self._add(
            builder,
            "StartRender",
            FunctionSpec(
                handler=f"{handlers}.workflow.start_render",
                description="Workflow: plan, dispatch chunks, encode the audio track; or render a remux or one chunk",
                memory_mib=3008,
                # Sources are fetched within 210 s (prepare.py); an inline render then uploads the output.
                timeout=Duration.minutes(15),
                ffmpeg=True,
                environment={**workflow, **sources, **chunk_env},
                read=(INPUTS, WORK),
                put=(WORK, RENDERS),  # an inline render's MP4 and stills (RenderPlan.inline)
                render_item_actions=("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem"),
            ),
        )
        self.poll_render = self._add(
            builder,
            "PollRender",
            FunctionSpec(
                handler=f"{handlers}.workflow.poll_render",
                description="Workflow: report progress, re-dispatch chunks that died",
                memory_mib=512,
                timeout=Duration.minutes(1),
                environment={**workflow, **chunk_env},
            ),
        )
        self.finalize_render = self._add(
            builder,
            "FinalizeRender",
            FunctionSpec(
                handler=f"{handlers}.workflow.finalize_render",
                description="Workflow: join chunks into renders/<user>/<id>.mp4 and probe it",
                memory_mib=3008,
                timeout=Duration.minutes(15),
                ffmpeg=True,
                environment={**workflow, **sources},
                read=(WORK,),  # staged sources (soundtrack), chunks and plan.json
                put=(RENDERS,),
                put_events=False,  # CompleteRender announces
                render_item_actions=("dynamodb:GetItem", "dynamodb:Query"),  # CompleteRender writes the job
            ),
        )
        self.complete_render = self._add(
            builder,
            "CompleteRender",
            FunctionSpec(
                handler=f"{handlers}.workflow.complete_render",
                description="Workflow: complete the job (one transaction), announce, clear work/<id>/",
                timeout=Duration.minutes(1),
                environment=workflow,
                read=(RENDERS,),  # presigned GET and HEAD (its creation time) of the output; ListBucket
                delete=(RENDERS, WORK),  # the orphaned output when a cancel won; work/<id>/
                tag=(RENDERS,),  # the output's retention class, which picks its lifecycle rule
            ),
        )
        self.record_failure = self._add(
            builder,
            "RecordFailure",
            FunctionSpec(
                handler=f"{handlers}.workflow.record_failure",
                description="Workflow: a failed attempt; schedule a whole-render retry, or fail, refund, announce",
                environment=workflow,
                # ListBucket, to clear work/<id>/; a retry after CompleteRender's write announces success
                # again, with a presigned GET of the output (signed by this role).
                read=(RENDERS,),
                delete=(WORK, RENDERS),  # work/<id>/, and an output joined before a later step failed
            ),
        )
        self.reconcile = self._add(
            builder,
            "Reconcile",
            FunctionSpec(
                handler=f"{handlers}.workflow.reconcile",
                description="Ends renders whose execution ended outside the workflow (timed out, aborted)",
                environment=workflow,
                # A cancel stops the execution, not a running FinalizeRender: its upload is removed here.
                delete=(RENDERS,),
            ),
        )
        self.sweep_lost_renders = self._add(
            builder,
            "SweepLostRenders",
            FunctionSpec(
                handler=f"{handlers}.workflow.sweep_lost_renders",
                description="Scheduled: ends renders admitted whose workflow never started (lost StartExecution)",
                environment=workflow,
                timeout=Duration.minutes(2),
            ),
        )
        self.remind_expiring = self._add(
            builder,
            "RemindExpiring",
            FunctionSpec(
                handler=f"{handlers}.reminders.remind_expiring",
                description="Scheduled: announces Render Expiring for outputs that expire soon",
                environment=workflow,
                timeout=Duration.minutes(5),
                read=(RENDERS,),  # the reminder carries a download link (S3-presigned when no CDN)
            ),
        )
        events.Rule(
            self,
            "ReminderSchedule",
            description="Expiry reminders (see RemindExpiring)",
            schedule=events.Schedule.rate(Duration.hours(1)),
            targets=[targets.LambdaFunction(self.remind_expiring, retry_attempts=2)],
        )
        # Every 5 minutes; AcquireSlot sweeps earlier too, but only when the same user renders again.
        events.Rule(
            self,
            "SweepSchedule",
            description="Ends lost render submissions (see SweepLostRenders)",
            schedule=events.Schedule.rate(Duration.minutes(5)),
            targets=[targets.LambdaFunction(self.sweep_lost_renders, retry_attempts=2)],
        )
        for caller in (self.start_render, self.poll_render):
            self.chunk_worker.grant_invoke(caller)
            self._acknowledge_wildcard(
                caller,
                f"Resource::{nag_text(self, self.chunk_worker.function_arn)}:*",
                "grant_invoke on the chunk worker also covers its versions/aliases (`<arn>:*`).",
            )

    @property
    def all(self) -> dict[str, lambda_.Function]:
        return {
            "Api": self.api,
            "AcquireSlot": self.acquire_slot,
            "StartRender": self.start_render,
            "PollRender": self.poll_render,
            "FinalizeRender": self.finalize_render,
            "CompleteRender": self.complete_render,
            "RecordFailure": self.record_failure,
            "ChunkWorker": self.chunk_worker,
            "Reconcile": self.reconcile,
            "SweepLostRenders": self.sweep_lost_renders,
            "RemindExpiring": self.remind_expiring,
            "WebhookDeliverer": self.webhook_deliverer,
            "EmailNotifier": self.email_notifier,
            "OutputDeliverer": self.output_deliverer,
        }

    # Workflow tasks whose errors the state machine catches and routes to RecordFailure.
    workflow_tasks = frozenset({"AcquireSlot", "StartRender", "PollRender", "FinalizeRender", "CompleteRender"})

    def connect_workflow(self, state_machine: sfn.StateMachine) -> None:
        """The API starts one execution per render (named by render id) and stops it on cancel."""
        self.api.add_environment("STATE_MACHINE_ARN", state_machine.state_machine_arn)
        state_machine.grant_start_execution(self.api)
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        iam.Grant.add_to_principal(grantee=self.api, actions=["states:StopExecution"], resource_arns=[executions])
        # An execution that times out, is stopped outside our cancel, or fails inside RecordFailure
        # never reaches RecordFailure; Step Functions' own status events let Reconcile end the render anyway.
        events.Rule(
            self,
            "ExecutionEnded",
            description="Render executions that ended FAILED, TIMED_OUT or ABORTED",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [state_machine.state_machine_arn],
                },
            ),
            targets=[targets.LambdaFunction(self.reconcile, retry_attempts=8, max_event_age=Duration.hours(6))],
        )
        self._acknowledge_wildcard(
            self.api,
            f"Resource::{nag_text(self, executions)}",
            "StopExecution on the executions of this one state machine; execution names are render ids.",
        )

    def connect_delivery(self, delivery: RenderDelivery) -> None:
        """Every function that hands out an output's URL signs it for CloudFront with the stack's key."""
        environment = {
            "CDN_DOMAIN": delivery.domain_name,
            "CDN_KEY_PAIR_ID": delivery.public_key.public_key_id,
            "CDN_PRIVATE_KEY_SECRET": delivery.secret.secret_arn,
        }
        for function in (
            self.api,
            self.complete_render,
            self.record_failure,
            self.remind_expiring,
            self.email_notifier,
        ):
            for name, value in environment.items():
                function.add_environment(name, value)
            delivery.secret.grant_read(function)

    def connect_destinations(self, destinations: Mapping[str, Destination]) -> None:
        """The API checks `deliverTo` against the names; the deliverer copies with each one's keys."""
        value = json.dumps({name: d.model_dump() for name, d in destinations.items()}, sort_keys=True)
        for function in (self.api, self.output_deliverer):
            function.add_environment("DELIVERY_DESTINATIONS", value)
        for index, destination in enumerate(destinations.values()):
            secret = secretsmanager.Secret.from_secret_complete_arn(
                self, f"DestinationCredentials{index}", destination.credentialsSecretArn
            )
            secret.grant_read(self.output_deliverer)

    def connect_email(self, email_from: str | None, notify_default: bool) -> None:
        """The API captures addresses and honours `notify.email`; the notifier sends from `email_from`."""
        self.api.add_environment("EMAIL_NOTIFY_DEFAULT", str(notify_default).lower())
        if not email_from:
            return  # `notify.email: true` is refused; nothing may send
        for function in (self.api, self.email_notifier):
            function.add_environment("EMAIL_FROM", email_from)
        domain = email_from.rsplit("@", 1)[-1]
        identities = [
            Stack.of(self).format_arn(service="ses", resource="identity", resource_name=name)
            for name in (email_from, domain)
        ]
        iam.Grant.add_to_principal(grantee=self.email_notifier, actions=["ses:SendEmail"], resource_arns=identities)

    def _add(self, builder: FunctionBuilder, construct_id: str, spec: FunctionSpec) -> lambda_.Function:
        function = builder.build(construct_id, spec)
        table, bucket = self._data.table, self._data.bucket
        if spec.render_item_actions is None:
            table.grant_read_write_data(function)
            self._acknowledge_wildcard(
                function,
                f"Resource::{nag_text(self, table.table_arn)}/index/*",
                "Queries on the table's own GSIs (GSI1-3); grant_read_write_data scopes to `<table>/index/*`.",
            )
        else:
            iam.Grant.add_to_principal(
                grantee=function,
                actions=list(spec.render_item_actions),
                resource_arns=[table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [RENDER_ITEMS]}},
            )
        for pattern in spec.read:
            bucket.grant_read(function, pattern)
        for pattern in spec.put:
            bucket.grant_put(function, pattern)
        for pattern in spec.delete:
            bucket.grant_delete(function, pattern)
        if spec.tag:
            iam.Grant.add_to_principal(
                grantee=function,
                actions=["s3:PutObjectTagging"],
                resource_arns=[bucket.arn_for_objects(pattern) for pattern in spec.tag],
            )
        for pattern in {*spec.read, *spec.put, *spec.delete, *spec.tag}:
            self._acknowledge_wildcard(
                function,
                f"Resource::{nag_text(self, bucket.arn_for_objects(pattern))}",
                f"Object access limited to the `{pattern}` key prefix of the service bucket.",
            )
        if spec.read:
            self._acknowledge_s3_read_actions(function)
        if spec.put:
            self._acknowledge_wildcard(
                function,
                "Action::s3:Abort*",
                "grant_put includes s3:AbortMultipartUpload (s3:Abort*) for large uploads.",
            )
        if spec.delete:
            self._acknowledge_wildcard(
                function,
                "Action::s3:DeleteObject*",
                "grant_delete: s3:DeleteObject/DeleteObjectVersion on the prefix above.",
            )
        if spec.ffmpeg and self._sources:
            for name, source in self._sources.items():
                source.grant_read(function)
                self._acknowledge_wildcard(
                    function,
                    f"Resource::{nag_text(self, source.arn_for_objects('*'))}",
                    f"Timelines may read s3:// sources from `{name}` (context allowedSourceBuckets).",
                )
            self._acknowledge_s3_read_actions(function)
        if spec.put_events:
            self._bus.grant_put_events_to(function)
        return function

    def _acknowledge_s3_read_actions(self, function: lambda_.Function) -> None:
        for action, reason in S3_READ_ACTIONS.items():
            self._acknowledge_wildcard(function, f"Action::{action}", f"grant_read: {reason}")

    def _acknowledge_wildcard(self, function: lambda_.Function, finding: str, reason: str) -> None:
        assert function.role is not None
        acknowledge(default_policy(function.role), f"AwsSolutions-IAM5[{finding}]", reason)
