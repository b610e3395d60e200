"""The single-table DynamoDB store and the media bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

# The object tag that picks an output's lifecycle rule; CompleteRender sets it.
from render_service.retention import TAG_KEY as RETENTION_TAG

# Index names and key attributes are a contract with functions/render_service/data.
GSIS = {
    "GSI1": ("GSI1PK", "GSI1SK"),  # a user's renders, newest first
    "GSI2": ("GSI2PK", "GSI2SK"),  # the renders of one subject
    "GSI3": ("GSI3PK", "GSI3SK"),  # sparse: only active renders carry these keys (ops view)
    "GSI4": ("GSI4PK", "GSI4SK"),  # sparse: completed renders until their expiry reminder is sent
}
TTL_ATTRIBUTE = "expiresAt"
WORK_PREFIX = "work/"
INPUTS_PREFIX = "inputs/"
RENDERS_PREFIX = "renders/"


@dataclass(frozen=True)
class OutputRetention:
    """How long outputs are kept: `default_days` for everyone, `classes` for users an operator gives
    a longer retention (`python -m infra.admin set-retention`); one lifecycle rule per class."""

    default_days: int = 7
    classes: tuple[int, ...] = (30,)
    reminder_hours: float = 48

    def __post_init__(self) -> None:
        if any(not 1 <= days <= 3650 for days in (self.default_days, *self.classes)):
            raise ValueError("context outputRetentionDays and retentionClasses must be 1 to 3650 days")
        if self.reminder_hours < 0:
            raise ValueError(f"context expiryReminderHours must be 0 or more, got {self.reminder_hours}")

    @property
    def day_classes(self) -> tuple[int, ...]:
        return tuple(sorted({self.default_days, *self.classes}))

    def env(self) -> dict[str, str]:
        return {
            "OUTPUT_RETENTION_DAYS": str(self.default_days),
            "RETENTION_CLASSES": ",".join(str(days) for days in self.classes),
            "EXPIRY_REMINDER_HOURS": f"{self.reminder_hours:g}",
        }

    def lifecycle_rules(self) -> list[s3.LifecycleRule]:
        rules = [
            s3.LifecycleRule(
                id=f"ExpireRenders{days}Days",
                prefix=RENDERS_PREFIX,
                tag_filters={RETENTION_TAG: str(days)},
                expiration=Duration.days(days),
            )
            for days in self.day_classes
        ]
        # Outputs without a tag (made before retention, or whose CompleteRender never tagged them)
        # still go, after the longest class: the rule also matches tagged ones, but S3 applies the
        # earliest expiration of overlapping rules, so it never keeps anything longer than its class.
        rules.append(
            s3.LifecycleRule(
                id="ExpireUntaggedRenders", prefix=RENDERS_PREFIX, expiration=Duration.days(max(self.day_classes))
            )
        )
        return rules


class RenderData(Construct):
    """`table` holds jobs, chunks, quota windows and credits; `bucket` holds inputs, work files and renders."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cors_allowed_origins: Sequence[str],
        inputs_retention: Duration,
        removal_policy: RemovalPolicy,
        output_retention: OutputRetention | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        retain = removal_policy == RemovalPolicy.RETAIN

        string = dynamodb.AttributeType.STRING
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="PK", type=string),
            sort_key=dynamodb.Attribute(name="SK", type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=retain,
            removal_policy=removal_policy,
        )
        for index_name, (pk, sk) in GSIS.items():
            self.table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(name=pk, type=string),
                sort_key=dynamodb.Attribute(name=sk, type=string),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(90))],
            removal_policy=removal_policy,
        )

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=False,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="media/",
            # Browsers PUT uploads and GET renders through presigned URLs.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=list(cors_allowed_origins),
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                # Chunks and intermediates; a render finishes (or fails) well within the 2 h workflow timeout.
                s3.LifecycleRule(id="ExpireWorkFiles", prefix=WORK_PREFIX, expiration=Duration.days(2)),
                # Uploads (presigned PUTs) would otherwise be unbounded storage; renders read them at submit
                # time, so a source older than this must be uploaded again.
                s3.LifecycleRule(id="ExpireInputs", prefix=INPUTS_PREFIX, expiration=inputs_retention),
                s3.LifecycleRule(
                    id="AbortIncompleteUploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
                *(output_retention or OutputRetention()).lifecycle_rules(),
            ],
            removal_policy=removal_policy,
        )
