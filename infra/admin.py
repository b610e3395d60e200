"""Operator commands against a deployed (or local) stack.

    python -m infra.admin grant-credits --table <TableName> --user <sub> --amount 50 --reason "support #123"
    python -m infra.admin balance --table <TableName> --user <sub>
    python -m infra.admin set-retention --table <TableName> --user <sub> --days 30 --reason "premium plan"
    python -m infra.admin set-retention --table <TableName> --user <sub> --default --reason "plan ended"
    python -m infra.admin retention --table <TableName> --user <sub>

Uses the usual AWS credentials; with AWS_ENDPOINT_URL set it talks to the local stack instead.
The table name is the stack output `TableName`. A retention must be one of the deployment's
classes (`outputRetentionDays` and `retentionClasses` in cdk.json, or OUTPUT_RETENTION_DAYS and
RETENTION_CLASSES in the environment): only those have a lifecycle rule. It applies to the
user's renders that complete from then on.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import boto3

from render_service.data.accounting import Accounting
from render_service.data.retention import RetentionRepository
from render_service.service import limits
from render_service.settings import Settings

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
# The deployment's retention, from cdk.json's context when the environment does not say.
_RETENTION_CONTEXT = {
    "OUTPUT_RETENTION_DAYS": "outputRetentionDays",
    "RETENTION_CLASSES": "retentionClasses",
}


def _retention_defaults() -> dict[str, Any]:
    # Read as text, not through infra.stack: importing the CDK starts a node process.
    context = json.loads(CDK_JSON.read_text()).get("context", {}) if CDK_JSON.exists() else {}
    found: dict[str, Any] = {}
    for variable, key in _RETENTION_CONTEXT.items():
        if key in context:
            value = context[key]
            found[variable] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.admin", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grant = sub.add_parser("grant-credits", help="add (or with a negative amount, remove) credits")
    balance = sub.add_parser("balance", help="show a user's credit balance")
    keep = sub.add_parser("set-retention", help="keep a user's outputs for longer (one of the deployment's classes)")
    show = sub.add_parser("retention", help="show how long a user's outputs are kept")
    for command in (grant, balance, keep, show):
        command.add_argument("--table", required=True, help="the stack output TableName")
        command.add_argument("--user", required=True, help="the user's Cognito sub")
    grant.add_argument("--amount", type=int, required=True)
    grant.add_argument("--reason", required=True, help="kept in the ledger")
    days = keep.add_mutually_exclusive_group(required=True)
    days.add_argument("--days", type=int, help="one of the deployment's retention classes")
    days.add_argument("--default", action="store_true", help="back to the deployment's default")
    keep.add_argument("--reason", required=True, help="kept with the setting")
    args = parser.parse_args(argv)

    environment = {k: v for k, v in os.environ.items() if v}
    settings = Settings.model_validate(
        {**_retention_defaults(), **environment, "TABLE_NAME": args.table, "BUCKET_NAME": "-"}
    )
    db = boto3.client("dynamodb")
    if args.command in ("set-retention", "retention"):
        return _retention(args, settings, RetentionRepository(db, args.table), parser)
    accounting = Accounting(db, args.table, limits(settings))
    if args.command == "grant-credits":
        print(f"{args.user}: balance {accounting.grant(args.user, args.amount, args.reason)}")
    else:
        print(f"{args.user}: balance {accounting.balance(args.user)}")
    return 0


def _retention(
    args: argparse.Namespace, settings: Settings, repository: RetentionRepository, parser: argparse.ArgumentParser
) -> int:
    if args.command == "set-retention":
        if args.days is not None and args.days not in settings.retention_day_classes:
            classes = ", ".join(map(str, settings.retention_day_classes))
            parser.error(f"--days: must be one of the deployment's retention classes ({classes}), got {args.days}")
        repository.set_user_days(args.user, None if args.default else args.days, args.reason)
    own = repository.user_days(args.user)
    days = own or settings.output_retention_days
    print(f"{args.user}: outputs kept {days} days" + ("" if own else " (the deployment's default)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
