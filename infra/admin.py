"""Operator commands against a deployed (or local) stack.

    python -m infra.admin grant-credits --table <TableName> --user <sub> --amount 50 --reason "support #123"
    python -m infra.admin balance --table <TableName> --user <sub>
    python -m infra.admin set-retention --table <TableName> --user <sub> --days 30 --reason "premium plan"
    python -m infra.admin set-retention --table <TableName> --user <sub> --default --reason "plan ended"
    python -m infra.admin retention --table <TableName> --user <sub>
    python -m infra.admin active --table <TableName>                   # every user's active renders
    python -m infra.admin show <renderId> --table <TableName> --state-machine-arn <StateMachineArn>
    python -m infra.admin cancel <renderId> --table ... --state-machine-arn ... --bucket ... --event-bus ...
    python -m infra.admin renders --table <TableName> --user <sub>     # one user's renders

Uses the usual AWS credentials; with AWS_ENDPOINT_URL set it talks to the local stack instead.
The names are the stack outputs (`TableName`, `StateMachineArn`, `BucketName`, `EventBusName`), or
the environment (`TABLE_NAME`, `STATE_MACHINE_ARN`, `BUCKET_NAME`, `EVENT_BUS_NAME`). Show, cancel
and the listings run the API's own code (`render_service.logic.admin`): a cancel here is the user's
cancel (refund, slot, "Render Cancelled"), logged with the caller's AWS identity as `admin`.

A retention must be one of the deployment's classes (`outputRetentionDays` and `retentionClasses`
in cdk.json, or OUTPUT_RETENTION_DAYS and RETENTION_CLASSES in the environment): only those have a
lifecycle rule. It applies to the user's renders that complete from then on.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from render_service import errors
from render_service.data.accounting import Accounting
from render_service.data.retention import RetentionRepository
from render_service.logic import admin
from render_service.models.api import AdminRenderPage
from render_service.models.jobs import RenderStatus
from render_service.service import limits, reset
from render_service.settings import Settings

# Each option and the setting it stands for; a command needs only some (see `_needs`).
_RESOURCES = {
    "table": ("TABLE_NAME", "the stack output TableName"),
    "state_machine_arn": ("STATE_MACHINE_ARN", "the stack output StateMachineArn"),
    "bucket": ("BUCKET_NAME", "the stack output BucketName"),
    "event_bus": ("EVENT_BUS_NAME", "the stack output EventBusName"),
}
_NEEDS = {
    "grant-credits": ("table",),
    "balance": ("table",),
    "set-retention": ("table",),
    "retention": ("table",),
    "active": ("table",),
    "renders": ("table",),
    "show": ("table", "state_machine_arn"),
    "cancel": ("table", "state_machine_arn", "bucket", "event_bus"),
}
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
    commands = {
        "grant-credits": sub.add_parser("grant-credits", help="add (or with a negative amount, remove) credits"),
        "balance": sub.add_parser("balance", help="show a user's credit balance"),
        "set-retention": sub.add_parser(
            "set-retention", help="keep a user's outputs for longer (one of the deployment's classes)"
        ),
        "retention": sub.add_parser("retention", help="show how long a user's outputs are kept"),
        "active": sub.add_parser("active", help="every user's active renders, newest first"),
        "show": sub.add_parser("show", help="any render, with its Step Functions execution's console link"),
        "cancel": sub.add_parser("cancel", help="cancel any render: refunded, as the user's own cancel"),
        "renders": sub.add_parser("renders", help="one user's renders, newest first"),
    }
    for name, command in commands.items():
        for option in _NEEDS[name]:
            variable, what = _RESOURCES[option]
            flag = "--" + option.replace("_", "-")
            command.add_argument(flag, default=os.environ.get(variable), help=f"{what} (default: ${variable})")
    for name in ("grant-credits", "balance", "set-retention", "retention", "renders"):
        commands[name].add_argument("--user", required=True, help="the user's Cognito sub")
    commands["grant-credits"].add_argument("--amount", type=int, required=True)
    commands["grant-credits"].add_argument("--reason", required=True, help="kept in the ledger")
    days = commands["set-retention"].add_mutually_exclusive_group(required=True)
    days.add_argument("--days", type=int, help="one of the deployment's retention classes")
    days.add_argument("--default", action="store_true", help="back to the deployment's default")
    commands["set-retention"].add_argument("--reason", required=True, help="kept with the setting")
    for name in ("show", "cancel"):
        commands[name].add_argument("render_id", metavar="RENDER_ID")
    for name in ("active", "renders"):
        commands[name].add_argument("--limit", type=int, default=50, choices=range(1, 101), metavar="1..100")
        commands[name].add_argument("--cursor", help="the nextCursor a previous page printed")
        commands[name].add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    commands["renders"].add_argument("--status", type=RenderStatus, choices=list(RenderStatus))
    args = parser.parse_args(argv)
    missing = [o for o in _NEEDS[args.command] if not getattr(args, o)]
    if missing:
        parser.error(
            ", ".join("--" + o.replace("_", "-") for o in missing) + ": required (or its environment variable)"
        )

    settings = _configure(args)
    try:
        if args.command in ("set-retention", "retention"):
            return _retention(args, settings, RetentionRepository(boto3.client("dynamodb"), args.table), parser)
        if args.command == "grant-credits":
            accounting = Accounting(boto3.client("dynamodb"), args.table, limits(settings))
            print(f"{args.user}: balance {accounting.grant(args.user, args.amount, args.reason)}")
        elif args.command == "balance":
            accounting = Accounting(boto3.client("dynamodb"), args.table, limits(settings))
            print(f"{args.user}: balance {accounting.balance(args.user)}")
        else:
            _OPERATIONS[args.command](args, _operator())
    except errors.ServiceError as exc:
        print(f"admin: error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _configure(args: argparse.Namespace) -> Settings:
    """The settings the API function would have, from the options: the logic reads them through
    `service()`, as it does on Lambda. This process is the CLI alone, so its environment is ours."""
    for option in _NEEDS[args.command]:
        os.environ[_RESOURCES[option][0]] = getattr(args, option)
    os.environ.setdefault("BUCKET_NAME", "-")  # required by Settings, read only by cancel
    reset()
    # The audit lines (`admin action`, with `admin`) go to stderr as JSON; results go to stdout.
    Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME"), logger_handler=logging.StreamHandler(sys.stderr))
    return Settings.model_validate({**_retention_defaults(), **{k: v for k, v in os.environ.items() if v}})


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


def _operator() -> str:
    """Who is acting: the caller's AWS identity (what CloudTrail records too), else the OS user."""
    try:
        return str(boto3.client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError):
        return f"os:{getpass.getuser()}"


def _active(args: argparse.Namespace, operator: str) -> None:
    _print_page(admin.active(operator, limit=args.limit, cursor=args.cursor), as_json=args.json)


def _renders(args: argparse.Namespace, operator: str) -> None:
    page = admin.user_renders(operator, args.user, status=args.status, limit=args.limit, cursor=args.cursor)
    _print_page(page, as_json=args.json)


def _show(args: argparse.Namespace, operator: str) -> None:
    print(admin.show(operator, args.render_id).model_dump_json(indent=2))


def _cancel(args: argparse.Namespace, operator: str) -> None:
    view = admin.cancel(operator, args.render_id)
    print(f"{view.renderId}: {view.status} (user {view.userId}, refunded)")


_OPERATIONS: dict[str, Callable[[argparse.Namespace, str], None]] = {
    "active": _active,
    "renders": _renders,
    "show": _show,
    "cancel": _cancel,
}
_COLUMNS = ("RENDER", "USER", "SUBJECT", "ENGINE", "STATUS", "PHASE", "PROGRESS", "AGE")


def _print_page(page: AdminRenderPage, *, as_json: bool) -> None:
    if as_json:
        print(page.model_dump_json(indent=2))
        return
    rows = [
        (
            r.renderId,
            r.userId,
            f"{r.subject.type}:{r.subject.id}" if r.subject else "-",
            r.engine,
            r.status,
            r.phase,
            f"{r.progress}%",
            age(r.ageSeconds),
        )
        for r in page.renders
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(_COLUMNS, *rows, strict=False)]
    for row in (_COLUMNS, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if page.nextCursor:
        print(f"more: --cursor {page.nextCursor}")


def age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


if __name__ == "__main__":
    raise SystemExit(main())
