"""The synthesized CloudFormation template, read and resolved for the local stack.

Only the intrinsics CDK emits for this stack are resolved (Ref, Fn::GetAtt, Fn::Join); pseudo
parameters get the local account and region.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"


class Template:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `make synth` first")
        self.resources: dict[str, dict[str, Any]] = json.loads(path.read_text())["Resources"]
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}

    def of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource["Type"] == kind:
                yield logical_id, resource.get("Properties", {})

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                pseudo = {
                    "AWS::Partition": "aws",
                    "AWS::Region": REGION,
                    "AWS::AccountId": ACCOUNT,
                    "AWS::URLSuffix": "amazonaws.com",
                }
                if arg in pseudo:
                    return pseudo[arg]
                return self.refs[arg]
            if fn == "Fn::GetAtt":
                logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attrs[(logical_id, attr)]
            if fn == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
        return {k: self.resolve(v) for k, v in value.items()}
