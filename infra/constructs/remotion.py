"""The app team's own Remotion Lambda (engine "remotion"): its settings and what our functions may do there.

Nothing is deployed for it: the team deploys Remotion themselves. We pass its coordinates to the
functions that speak to it, and grant each only its part of Remotion's protocol:

- StartRender and PollRender invoke that one function (start, status);
- StartRender stores props too big for an invoke under `input-props/` in Remotion's bucket;
- cancelling (the API's cancel, RecordFailure for a render that failed on our side or is retried,
  Reconcile for an execution that timed out or was stopped,
  StartRender when the render ended while it started) reads a render's `progress.json` and
  writes its `cancel.json`, under `renders/`;
- FinalizeRender reads the output Remotion wrote under `renders/`, to copy it into our bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs import acknowledge, default_policy, nag_text

# Remotion's layout in its bucket (render_service.engines.remotion.protocol), as IAM resources.
PROGRESS, CANCEL = "renders/*/progress.json", "renders/*/cancel.json"
OUTPUTS, INPUT_PROPS = "renders/*", "input-props/*"
DEFAULT_VERSION = "4.0.0"


@dataclass(frozen=True)
class RemotionDeployment:
    """Context `remotionFunctionName`, `remotionServeUrl`, `remotionBucket` (together), `remotionRegion`
    (default: the stack's) and `remotionVersion` (the deployed function's; payloads must match it)."""

    function_name: str
    serve_url: str
    bucket: str
    region: str = ""
    version: str = DEFAULT_VERSION

    def __post_init__(self) -> None:
        if not (self.function_name and self.serve_url and self.bucket):
            raise ValueError("context remotionFunctionName, remotionServeUrl and remotionBucket go together")
        if not self.serve_url.startswith("https://"):
            raise ValueError(f"context remotionServeUrl must be an https:// URL, got {self.serve_url!r}")

    @classmethod
    def from_context(cls, get: Any) -> RemotionDeployment | None:
        """None when none of the three required keys is set: the engine is then refused with a 503."""
        required = ("remotionFunctionName", "remotionServeUrl", "remotionBucket")
        values = {key: str(get(key, "") or "") for key in required}
        if not any(values.values()):
            return None
        return cls(
            function_name=values["remotionFunctionName"],
            serve_url=values["remotionServeUrl"],
            bucket=values["remotionBucket"],
            region=str(get("remotionRegion", "") or ""),
            version=str(get("remotionVersion", DEFAULT_VERSION) or DEFAULT_VERSION),
        )

    def environment(self) -> dict[str, str]:
        return {
            "REMOTION_FUNCTION_NAME": self.function_name,
            "REMOTION_SERVE_URL": self.serve_url,
            "REMOTION_BUCKET": self.bucket,
            "REMOTION_REGION": self.region,
            "REMOTION_VERSION": self.version,
        }


class RemotionAccess(Construct):
    """Grants the functions that speak to Remotion exactly their part (see the module's docstring)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: RemotionDeployment,
        start: lambda_.Function,
        poll: lambda_.Function,
        finalize: lambda_.Function,
        record_failure: lambda_.Function,
        reconcile: lambda_.Function,
        api: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.deployment = deployment
        stack = Stack.of(self)
        self.function_arn = stack.format_arn(
            service="lambda",
            region=deployment.region or None,
            resource="function",
            resource_name=deployment.function_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for function in (start, poll, finalize, record_failure, reconcile, api):
            for name, value in deployment.environment().items():
                function.add_environment(name, value)
        for function in (start, poll):
            iam.Grant.add_to_principal(
                grantee=function, actions=["lambda:InvokeFunction"], resource_arns=[self.function_arn]
            )
        grants: Mapping[lambda_.Function, Mapping[str, str]] = {
            start: {INPUT_PROPS: "s3:PutObject", PROGRESS: "s3:GetObject", CANCEL: "s3:PutObject"},
            record_failure: {PROGRESS: "s3:GetObject", CANCEL: "s3:PutObject"},
            reconcile: {PROGRESS: "s3:GetObject", CANCEL: "s3:PutObject"},
            api: {PROGRESS: "s3:GetObject", CANCEL: "s3:PutObject"},
            finalize: {OUTPUTS: "s3:GetObject"},
        }
        for function, patterns in grants.items():
            for pattern, action in patterns.items():
                arn = self.object_arn(pattern)
                iam.Grant.add_to_principal(grantee=function, actions=[action], resource_arns=[arn])
                assert function.role is not None
                acknowledge(
                    default_policy(function.role),
                    f"AwsSolutions-IAM5[Resource::{nag_text(self, arn)}]",
                    f"Remotion's protocol: {action} on `{pattern}` in the team's Remotion bucket only "
                    "(each render's files are under renders/<renderId>/, whose id Remotion picks).",
                )

    def object_arn(self, pattern: str) -> str:
        return f"arn:{Stack.of(self).partition}:s3:::{self.deployment.bucket}/{pattern}"
