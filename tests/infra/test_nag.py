"""cdk-nag (AwsSolutions) must find nothing that is not acknowledged, per resource, with a reason."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

import infra.constructs
from infra.stack import RenderServiceStack

NAG_RULE = Match.string_like_regexp("AwsSolutions-.*")


def test_the_stack_has_no_unacknowledged_nag_findings(nag_stack: tuple[RenderServiceStack, list[Any]]) -> None:
    stack, findings = nag_stack
    listing = "\n".join(f"{f.severity:7} {f.rule} at {f.path}" for f in findings)
    assert findings == [], f"unacknowledged cdk-nag findings:\n{listing}"
    # cdk-nag 2 reported through annotations; make sure nothing arrives that way either.
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", NAG_RULE) == []
    assert annotations.find_warning("*", NAG_RULE) == []


def test_the_nag_harness_reports_a_non_compliant_resource(synth_with_nag: Any, tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Bare"), "Bucket")
    rules = {finding.rule for finding in synth_with_nag(app)}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_every_acknowledgment_has_a_reason_and_none_is_stack_wide(
    nag_stack: tuple[RenderServiceStack, list[Any]],
) -> None:
    stack, _ = nag_stack
    template = Template.from_stack(stack)
    acknowledged = 0
    for logical_id, resource in template.to_json()["Resources"].items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            acknowledged += 1
            assert rule["id"].startswith("AwsSolutions-"), (logical_id, rule)
            assert len(rule["reason"]) >= 40, f"{logical_id}: give {rule['id']} a real reason"
    assert acknowledged > 0
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    for scope in (stack, stack.node.root):
        assert not [m for m in scope.node.metadata if m.type == key], f"blanket acknowledgment on {scope.node.path}"


def test_every_acknowledgment_matches_a_real_finding(
    build_stack: Any, synth_with_nag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build the stack with acknowledgments switched off: each one must hide a finding on its construct."""
    made: list[tuple[str, str]] = []

    def record(scope: Any, rule: str, reason: str) -> None:
        made.append((scope.node.path, rule))

    for module_info in pkgutil.iter_modules(infra.constructs.__path__):
        module = importlib.import_module(f"infra.constructs.{module_info.name}")
        if hasattr(module, "acknowledge"):
            monkeypatch.setattr(module, "acknowledge", record)

    findings = synth_with_nag(build_stack(outdir=tmp_path).node.root)
    assert made, "no acknowledgments were recorded; is the patch still reaching the constructs?"
    stale = [
        (path, rule)
        for path, rule in made
        if not any(f.rule == rule and (f.path == path or f.path.startswith(f"{path}/")) for f in findings)
    ]
    assert stale == [], f"acknowledgments that hide nothing (remove them): {stale}"
