"""Infra test fixtures: each app is synthesized once per session (CDK synth costs seconds).

The stacks use tiny stand-in layer directories, so these tests need neither `make layers`
nor the 170 MB ffmpeg binary; `layers/build.py` is exercised by `make synth`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aws_cdk import App, Environment, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.stack import RenderServiceConfig, RenderServiceStack, cdk_json_context

# Context beyond cdk.json's defaults, so optional paths (source buckets, alarm email) are built too.
TEST_CONTEXT: dict[str, Any] = {
    "allowedSourceBuckets": ["team-footage", "stock.clips"],
    "alarmEmail": "ops@example.com",
    "emailFrom": "renders@example.com",
    "deliveryDestinations": {
        "r2": {
            "endpoint": "https://0123abcd.r2.cloudflarestorage.com",
            "bucket": "exports",
            "prefix": "renders/",
            "credentialsSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:r2-keys-AbCdEf",
        }
    },
    # The team's Remotion Lambda, in another region than the stack's (as Remotion deployments often are).
    "remotionFunctionName": "remotion-render-4-0-0-mem2048mb-disk2048mb-120sec",
    "remotionServeUrl": "https://remotionlambda-eucentral1-abc123.s3.eu-central-1.amazonaws.com/sites/app/index.html",
    "remotionBucket": "remotionlambda-eucentral1-abc123",
    "remotionRegion": "eu-central-1",
}


class NagFinding(NamedTuple):
    rule: str
    severity: str
    path: str


MakeLayers = Callable[[str], Path]
BuildStack = Callable[..., RenderServiceStack]
SynthWithNag = Callable[[App], list[NagFinding]]


@pytest.fixture(scope="session")
def make_layers(tmp_path_factory: pytest.TempPathFactory) -> MakeLayers:
    """Stand-in layer dirs with the layout and stamp that `layers/build.py` writes."""

    def make(arch: str) -> Path:
        root = tmp_path_factory.mktemp(f"layers-{arch}")
        (root / "deps" / "python").mkdir(parents=True)
        (root / "deps" / "python" / "placeholder.py").write_text("")
        (root / f"ffmpeg-{arch}" / "bin").mkdir(parents=True)
        (root / f"ffmpeg-{arch}" / "bin" / "ffmpeg").write_text("#!/bin/sh\n")
        (root / ".deps.stamp.json").write_text(json.dumps({"arch": arch}))
        return root

    return make


@pytest.fixture(scope="session")
def build_stack(make_layers: MakeLayers) -> BuildStack:
    """A fresh App + RenderServiceStack from cdk.json's context plus `context` overrides."""

    def build(
        context: dict[str, Any] | None = None, outdir: Path | None = None, env: Environment | None = None
    ) -> RenderServiceStack:
        app = App(
            context={**cdk_json_context(), **TEST_CONTEXT, **(context or {})},
            outdir=str(outdir) if outdir else None,
        )
        config = RenderServiceConfig.from_context(app)
        config = dataclasses.replace(config, layers_dir=make_layers(config.architecture))
        return RenderServiceStack(app, "RenderService", config=config, env=env)

    return build


@pytest.fixture(scope="session")
def synth_with_nag() -> SynthWithNag:
    """Synthesize `app` with cdk-nag's AwsSolutions pack and return what it reports.

    cdk-nag 3 is a policy-validation plugin: findings go to the cloud assembly's validation
    report (and fail `app.synth()`), not to construct annotations.
    """

    def synth(app: App) -> list[NagFinding]:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
        try:
            app.synth()
        except RuntimeError as exc:
            if "ValidationFailed" not in str(exc):
                raise
        report_file = Path(app.outdir) / "validation-report.json"
        assert report_file.is_file(), f"no validation report in {app.outdir}"
        report = json.loads(report_file.read_text())
        return [
            NagFinding(violation["ruleName"], violation["severity"], construct["constructPath"])
            for plugin in report["pluginReports"]
            if plugin["pluginName"] == "AwsSolutions"
            for violation in plugin["violations"]
            for construct in violation["violatingConstructs"]
        ]

    return synth


@pytest.fixture(scope="session")
def stack(build_stack: BuildStack) -> RenderServiceStack:
    return build_stack()


@pytest.fixture(scope="session")
def template(stack: RenderServiceStack) -> Template:
    return Template.from_stack(stack)


# Finding ids embed ARNs, which read differently with and without a concrete environment
# (`<AWS::Region>` vs `eu-west-1`), so the acknowledgments are checked in both.
ENVIRONMENTS = {
    "env-agnostic": None,
    "eu-west-1": Environment(account="123456789012", region="eu-west-1"),
}


@pytest.fixture(scope="session", params=sorted(ENVIRONMENTS))
def nag_stack(
    request: pytest.FixtureRequest,
    build_stack: BuildStack,
    synth_with_nag: SynthWithNag,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RenderServiceStack, list[NagFinding]]:
    stack = build_stack(outdir=tmp_path_factory.mktemp("cdk.out-nag"), env=ENVIRONMENTS[request.param])
    findings = synth_with_nag(stack.node.root)  # type: ignore[arg-type]
    return stack, findings
