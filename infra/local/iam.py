"""The template's `dynamodb:LeadingKeys` policies, enforced on the local stack.

The functions that run ffmpeg on user media may touch only the render's own items
(`RENDER#*`). moto does not evaluate IAM, so without this a change that made such a function
write, say, a credits item would pass every local test and be denied on AWS. Calls are tagged
with the calling function (see `cloud.py`) and checked here against the synthesized policies.
Functions without such a restriction are not checked.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

from infra.local.template import Template

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_PARTITION_KEY = "PK"


@dataclass(frozen=True)
class Grant:
    actions: frozenset[str]
    leading_keys: tuple[str, ...]  # patterns such as "RENDER#*"


class LeadingKeyGuard:
    def __init__(self, grants: dict[str, list[Grant]]) -> None:
        self.grants = grants  # physical function name -> its LeadingKeys-restricted grants

    @classmethod
    def from_template(cls, template: Template) -> LeadingKeyGuard:
        role_to_function = {
            props["Role"]["Fn::GetAtt"][0]: template.refs[logical_id]
            for logical_id, props in template.of_type("AWS::Lambda::Function")
            if isinstance(props.get("Role"), dict) and "Fn::GetAtt" in props["Role"]
        }
        grants: dict[str, list[Grant]] = {}
        for _, props in template.of_type("AWS::IAM::Policy"):
            functions = [role_to_function[r["Ref"]] for r in props.get("Roles", []) if r.get("Ref") in role_to_function]
            for statement in props["PolicyDocument"]["Statement"]:
                condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
                if "dynamodb:LeadingKeys" not in condition:
                    continue
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                grant = Grant(frozenset(actions), tuple(condition["dynamodb:LeadingKeys"]))
                for function in functions:
                    grants.setdefault(function, []).append(grant)
        return cls(grants)

    def denial(self, function: str | None, target: str, body: str) -> str | None:
        """Why the call would be denied on AWS, or None when it is allowed (or not restricted)."""
        if not function or function not in self.grants:
            return None
        operation = target.rsplit(".", 1)[-1]
        request: dict[str, Any] = json.loads(body or "{}")
        for action, key in _accesses(operation, request):
            allowed = any(
                action in grant.actions
                and key is not None
                and any(fnmatch.fnmatchcase(key, pattern) for pattern in grant.leading_keys)
                for grant in self.grants[function]
            )
            if not allowed:
                return f"{function} is not authorized to perform {action} on partition key {key!r}"
        return None


def _accesses(operation: str, request: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(IAM action, partition key value) for every item a request touches; None when it names no key."""
    if operation == "TransactWriteItems":
        found: list[tuple[str, str | None]] = []
        for item in request.get("TransactItems", []):
            ((kind, op),) = item.items()
            found += [(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _key_of(op))]
        return found
    if operation == "Query":
        # An index query is on another resource (`table/index/*`), which these grants never cover.
        return [("dynamodb:Query", None if "IndexName" in request else _queried_partition(request))]
    return [(f"dynamodb:{operation}", _key_of(request))]


def _key_of(request: dict[str, Any]) -> str | None:
    item = request.get("Key") or request.get("Item") or {}
    value = item.get(_PARTITION_KEY, {}).get("S")
    return str(value) if value is not None else None


def _queried_partition(request: dict[str, Any]) -> str | None:
    names = dict(request.get("ExpressionAttributeNames", {}))
    values = request.get("ExpressionAttributeValues", {})
    for name, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", request.get("KeyConditionExpression", "")):
        if names.get(name, name) == _PARTITION_KEY:
            value = values.get(placeholder, {}).get("S")
            return str(value) if value is not None else None
    return None
