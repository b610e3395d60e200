"""One construct per concern; `infra.stack.RenderServiceStack` assembles them."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on one construct (and its children), with the reason.

    Pass the CloudFormation resource the finding is on (`cfn(...)`, `default_policy(...)`), so
    the acknowledgment covers nothing else.
    """
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def cfn(construct: IConstruct) -> IConstruct:
    """The CloudFormation resource of an L2 construct."""
    resource = construct.node.default_child
    if resource is None:
        raise ValueError(f"{construct.node.path} has no CloudFormation resource")
    return resource


def default_policy(role: IConstruct) -> IConstruct:
    """The `AWS::IAM::Policy` that grants add to a role; it exists once the first grant is made."""
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        raise ValueError(f"{role.node.path} has no default policy yet; acknowledge after granting")
    return cfn(policy)


def nag_text(scope: IConstruct, value: str) -> str:
    """`value` (e.g. an ARN with tokens) as cdk-nag prints it in finding ids.

    Mirrors cdk-nag's flattenCfnReference: `Fn::GetAtt` -> `<Id.Attr>`, `Ref` -> `<Id>`, joins
    concatenated. Resolving in the stack makes it follow the environment: an env-agnostic stack
    gives `<AWS::Region>`, a stack with a region gives `eu-west-1`.
    """
    return _flatten(Stack.of(scope).resolve(value))


def _flatten(node: Any) -> str:
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict) and len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Fn::Join":
            delimiter, items = argument
            return str(delimiter).join(_flatten(item) for item in items)
        if function == "Fn::Sub":
            return _flatten(argument)
        if function == "Fn::GetAtt":
            resource, attribute = argument
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if function == "Ref":
            return f"<{_flatten(argument)}>"
    return json.dumps(node, separators=(",", ":"))
