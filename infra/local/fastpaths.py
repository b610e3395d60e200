"""moto's own per-request costs, cut, so a local render's latency is the service's and not the emulator's.

Measured on a 1-second title (bench `tiny`): the local stack spent about 0.9 s of Python CPU per
render, all of it under one GIL that the render's own steps wait for. Most of that was moto doing
the same work again on every request, work AWS does not do on our clock at all:

- finding the backend for a request's host by trying every service's URL patterns in turn
  (about 10 % of the CPU): the answer for a host never changes, so it is remembered;
- parsing the state machine's definition with ANTLR at the start of every execution (about
  10 %): the parsed program keeps its per-execution state in the execution's environment
  (`env.heap`, `env.stack`), never on itself, so one parse serves every execution of a definition;
- building a new JSONPath parser (PLY yacc tables) for every path it evaluates, in a state's
  paths and in every EventBridge target's input template: parsed paths are remembered by their
  text (a parsed path is only read when it is matched);
- copying the whole table before every transaction, to roll back if one of its operations fails
  (a cost that grows with every render the table holds): the transaction's own items are
  copied instead, and only those are put back;
- making a new boto3 client for every Lambda task a state machine runs, and listing a response
  class's methods with `inspect` on every request: both are remembered (moto's client ignores
  the state's credentials, so one per region serves every task);
- serializing every DynamoDB item response by walking botocore's shape model value by value
  (about half of each GetItem's CPU): an item operation's result is already in the wire format
  (`{"S": ...}` maps), so it is written with `json.dumps`, dropping empty members and encoding
  binary values as the shape-driven serializer does. `tests/unit/test_local_fastpaths.py`
  checks that both give the same JSON for every attribute type.

Nothing here changes what a request means: the same backends answer, the same definition runs.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

import jsonpath_ng.ext
from moto.core import responses as core_responses
from moto.core.models import botocore_stubber
from moto.core.responses import ActionContext
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

# The operations whose results are items, keys and counts only: nothing the shape walk would
# rename, reformat or leave out but empty members, timestamps and binary values.
ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_JSON_CONTENT_TYPE = "application/x-amz-json-1.0"


def install() -> None:
    """Idempotent: the first call installs every fast path."""
    if DynamoResult.execute_result is _dynamo_result:  # type: ignore[comparison-overlap]
        return
    _remember_backends()
    _remember_programs()
    # EventBridge imports `parse` from the module on every call; Step Functions once, at import.
    parse = functools.lru_cache(maxsize=1024)(vars(jsonpath_ng.ext)["parse"])
    _replace(jsonpath_ng.ext, "parse", parse)
    _replace(json_path, "parse", parse)
    DynamoResult.execute_result = _dynamo_result  # type: ignore[assignment,method-assign]
    _undo_transactions_by_item()
    method_names = vars(core_responses)["method_names_from_class"]
    _replace(core_responses, "method_names_from_class", functools.cache(method_names))
    _replace(lambda_eval_utils, "boto_client_for", _lambda_client)


@functools.cache
def _client(region: str, service: str, intercepted: bool, port: int) -> Any:
    return boto_client.boto_client_for(region, service)


def _lambda_client(region: str, service: str, **_: Any) -> Any:
    """One client per region and service (moto's ignores the state's credentials: always "ak"/"sk"),
    and per way of reaching moto: in-process (`mock_aws`) or the server on its port."""
    return _client(region, service, botocore_stubber.enabled, moto_server_port())


def _replace(module: ModuleType, name: str, value: object) -> None:
    """Rebinds a module's global, for the functions that look it up there."""
    assert name in vars(module), f"{module.__name__} has no {name}: moto changed"
    vars(module)[name] = value


def _remember_backends() -> None:
    original = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        # Called under the dispatcher's own lock.
        if host not in known:
            known[host] = original(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _remember_programs() -> None:
    programs: dict[str, Any] = {}

    def entrypoint(self: ExecutionWorker) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        program = programs.get(definition)
        if program is None:
            program = programs.setdefault(definition, AmazonStateLanguageParser.parse(definition)[0])
        return program

    ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign]


class _TablesByReference:
    """moto's `copy` module as its transactions see it: a table "copied" for rollback is the table
    itself, so its rollback puts back what it already has; `_undo_transactions_by_item` does the
    real rollback, item by item."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_Before = tuple[Table, DynamoType, DynamoType | None, Item | None]


def _undo_transactions_by_item() -> None:
    _replace(dynamodb_models, "copy", _TablesByReference())
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        before = [b for b in (_item_before(self, entry) for entry in transact_items) if b is not None]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(before):
                _put_back(table, hash_key, range_key, item)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _item_before(backend: DynamoDBBackend, entry: dict[str, Any]) -> _Before | None:
    """The item a transaction's entry may change, as it is now; None when the entry names no item
    (moto then refuses the transaction, having changed nothing of it yet)."""
    try:
        op = next(iter(entry.values()))
        table = backend.tables[op["TableName"]]
        key = op.get("Key") or op["Item"]
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        item = table.get_item(hash_key, range_key)
    except (KeyError, StopIteration, TypeError, AttributeError):
        return None
    return table, hash_key, range_key, copy.deepcopy(item)


def _put_back(table: Table, hash_key: DynamoType, range_key: DynamoType | None, item: Item | None) -> None:
    if item is None:
        table.delete_item(hash_key, range_key)
    elif range_key is not None:
        table.items[hash_key][range_key] = item
    else:
        table.items[hash_key] = item  # type: ignore[assignment]


def _dynamo_result(self: DynamoResult, context: ActionContext) -> tuple[int, dict[str, str], str]:
    if context.operation_model.name not in ITEM_OPERATIONS:
        status, headers, body = _shape_serialized(self, context)
        return status, headers, body
    return 200, {"Content-Type": _JSON_CONTENT_TYPE}, json.dumps(_wire(self.result), separators=(",", ":"))


_shape_serialized: Callable[[DynamoResult, ActionContext], Any] = DynamoResult.execute_result


def _wire(value: Any) -> Any:
    """The JSON protocol's form of a result: no empty members, bytes as base64, times as epoch seconds."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.timestamp()
    return value
