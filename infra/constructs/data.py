"""The single-table DynamoDB store and the media bucket."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Index names and key attributes are a contract with functions/render_service/data.
GSIS = {
    "GSI1": ("GSI1PK", "GSI1SK"),  # a user's renders, newest first
    "GSI2": ("GSI2PK", "GSI2SK"),  # the renders of one subject
    "GSI3": ("GSI3PK", "GSI3SK"),  # sparse: only active renders carry these keys (ops view)
}
TTL_ATTRIBUTE = "expiresAt"
WORK_PREFIX = "work/"
INPUTS_PREFIX = "inputs/"


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
            ],
            removal_policy=removal_policy,
        )
