"""Operator commands against a deployed (or local) stack.

    python -m infra.admin grant-credits --table <TableName> --user <sub> --amount 50 --reason "support #123"
    python -m infra.admin balance --table <TableName> --user <sub>

Uses the usual AWS credentials; with AWS_ENDPOINT_URL set it talks to the local stack instead.
The table name is the stack output `TableName`.
"""

from __future__ import annotations

import argparse
import os

import boto3

from render_service.data.accounting import Accounting
from render_service.logic.renders import limits
from render_service.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.admin", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grant = sub.add_parser("grant-credits", help="add (or with a negative amount, remove) credits")
    balance = sub.add_parser("balance", help="show a user's credit balance")
    for command in (grant, balance):
        command.add_argument("--table", required=True, help="the stack output TableName")
        command.add_argument("--user", required=True, help="the user's Cognito sub")
    grant.add_argument("--amount", type=int, required=True)
    grant.add_argument("--reason", required=True, help="kept in the ledger")
    args = parser.parse_args(argv)

    settings = Settings.model_validate(
        {**{k: v for k, v in os.environ.items() if v}, "TABLE_NAME": args.table, "BUCKET_NAME": "-"}
    )
    accounting = Accounting(boto3.client("dynamodb"), args.table, limits(settings))
    if args.command == "grant-credits":
        print(f"{args.user}: balance {accounting.grant(args.user, args.amount, args.reason)}")
    else:
        print(f"{args.user}: balance {accounting.balance(args.user)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
