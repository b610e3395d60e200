"""The local stack's check of `dynamodb:LeadingKeys` policies, on a small template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.local.iam import LeadingKeyGuard
from infra.local.template import Template

RESTRICTED = {
    "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
    "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RENDER#*"]}},
    "Effect": "Allow",
    "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t",
}


@pytest.fixture
def guard(tmp_path: Path) -> LeadingKeyGuard:
    resources = {
        "WorkerRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        "WorkerPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {"Roles": [{"Ref": "WorkerRole"}], "PolicyDocument": {"Statement": [RESTRICTED]}},
        },
        "Worker": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["WorkerRole", "Arn"]}}},
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps({"Resources": resources}))
    template = Template(path)
    template.refs["Worker"] = "local-worker"
    return LeadingKeyGuard.from_template(template)


def key(pk: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": pk}, "SK": {"S": "x"}}


def query(condition: str, pk: str, *, name: str | None = None, index: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"KeyConditionExpression": condition, "ExpressionAttributeValues": {":v": {"S": pk}}}
    if name:
        body["ExpressionAttributeNames"] = {name: "PK"}
    if index:
        body["IndexName"] = index
    return body


def transact(*ops: tuple[str, str]) -> dict[str, object]:
    return {"TransactItems": [{kind: {"Item" if kind == "Put" else "Key": key(pk)}} for kind, pk in ops]}


@pytest.mark.parametrize(
    ("target", "request_body", "allowed"),
    [
        ("DynamoDB_20120810.GetItem", {"Key": key("RENDER#1")}, True),
        ("DynamoDB_20120810.UpdateItem", {"Key": key("RENDER#1")}, True),
        ("DynamoDB_20120810.UpdateItem", {"Key": key("CREDITS#alice")}, False),
        ("DynamoDB_20120810.PutItem", {"Item": key("RENDER#1")}, False),
        ("DynamoDB_20120810.Scan", {}, False),
        ("DynamoDB_20120810.Query", query("PK = :v", "RENDER#1"), True),
        ("DynamoDB_20120810.Query", query("#p = :v", "USER#a", name="#p"), False),
        ("DynamoDB_20120810.Query", query("GSI1PK = :v", "RENDER#1", index="GSI1"), False),
        ("DynamoDB_20120810.TransactWriteItems", transact(("Update", "RENDER#1")), True),
        ("DynamoDB_20120810.TransactWriteItems", transact(("Update", "RENDER#1"), ("Put", "CREDITS#a")), False),
    ],
)
def test_restricted_functions_touch_only_their_leading_keys(
    guard: LeadingKeyGuard, target: str, request_body: dict[str, object], allowed: bool
) -> None:
    denial = guard.denial("local-worker", target, json.dumps(request_body))
    assert (denial is None) == allowed, denial


def test_functions_without_a_leading_key_policy_are_not_checked(guard: LeadingKeyGuard) -> None:
    assert guard.denial("local-api", "DynamoDB_20120810.Scan", "{}") is None
    assert guard.denial(None, "DynamoDB_20120810.Scan", "{}") is None
