#!/usr/bin/env python3
"""CDK app: `python app.py` (or `cdk synth`) writes cdk.out/RenderService.template.json.

cdk-nag's AwsSolutions pack runs as a policy-validation plugin: any unacknowledged finding
fails the synth and is listed in cdk.out/policy-validation-report.json.
"""

from __future__ import annotations

import os

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import RenderServiceConfig, RenderServiceStack, cdk_json_context


def main() -> None:
    # CDK_OUTDIR is set when the CLI runs us (`cdk synth -o ...`).
    app = App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"), context=cdk_json_context())
    stack = RenderServiceStack(
        app,
        "RenderService",
        config=RenderServiceConfig.from_context(app),
        description="Serverless render service: API, Step Functions workflow, ffmpeg on Lambda",
        # Environment-agnostic unless the CLI supplies an account and region.
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    Tags.of(stack).add("service", "render-service")
    # write_suppressions_to_cloud_formation keeps each acknowledgment and its reason in the template.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    app.synth()


if __name__ == "__main__":
    main()
