"""Key layout of the single table, and conversion between Python values and DynamoDB's wire form.

| item        | PK                        | SK                        |
|-------------|---------------------------|---------------------------|
| render job  | RENDER#<id>               | RENDER                    |
| chunk       | RENDER#<id>               | CHUNK#<attempt>#<nnnn>    |
| rate window | QUOTA#<user>#<policy>     | WINDOW#<seconds>#<start>  |
| counters    | USER#<user>               | COUNTERS                  |
| credits     | CREDITS#<user>            | BALANCE / LEDGER#<ts>#<id>|

| retention   | USER#<user>               | RETENTION                 |

GSI1 is a user's history, GSI2 the renders of one subject, GSI3 (sparse) the active renders,
GSI4 (sparse) the completed renders still to be reminded of their expiry, by when.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

RENDER_SK = "RENDER"
COUNTERS_SK = "COUNTERS"
BALANCE_SK = "BALANCE"
RETENTION_SK = "RETENTION"
ACTIVE_PARTITION = "ACTIVE"
EXPIRING_PARTITION = "EXPIRING"


def render_pk(render_id: str) -> str:
    return f"RENDER#{render_id}"


def chunk_sk(render_attempt: int, index: int) -> str:
    return f"{chunk_prefix(render_attempt)}{index:04d}"


def chunk_prefix(render_attempt: int) -> str:
    return f"CHUNK#{render_attempt:02d}#"


def user_history_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def subject_pk(user_id: str, subject_key: str) -> str:
    # Scoped by user: a subject id chosen by one user never lists another user's renders.
    return f"SUBJECT#{user_id}#{subject_key}"


def quota_pk(user_id: str, policy: str = "renders") -> str:
    return f"QUOTA#{user_id}#{policy}"


def window_sk(window_start: int, seconds: int) -> str:
    # The length is part of the key: an hour and a day that start at the same second are two windows.
    return f"WINDOW#{seconds}#{window_start}"


def counters_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def credits_pk(user_id: str) -> str:
    return f"CREDITS#{user_id}"


def ledger_sk(timestamp: str, render_id: str, entry: str) -> str:
    return f"LEDGER#{timestamp}#{render_id}#{entry}"


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """Plain dict -> DynamoDB attribute map; `None` values are dropped."""
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def serialize_value(value: Any) -> Any:
    return _serializer.serialize(_to_dynamo(value))


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}
