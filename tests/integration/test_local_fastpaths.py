"""The local stack's shortcuts through moto (infra/local/fastpaths.py) answer as moto itself does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.responses import ActionContext, get_service_model
from moto.core.serialize import get_serializer_class
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler, DynamoResult

from infra.local import fastpaths

TABLE = "fastpaths"


@pytest.fixture
def dynamodb(fake_aws_credentials: None) -> Iterator[Any]:
    fastpaths.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


EVERY_TYPE = {
    "pk": {"S": "user#1"},
    "sk": {"S": "render#1"},
    "count": {"N": "42.5"},
    "blob": {"B": b"\x00\xffbytes"},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "names": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2"]},
    "blobs": {"BS": [b"\x01", b"\x02"]},
    "list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"inner": {"B": b"\x03"}}}]},
    "map": {"M": {"empty": {"S": ""}, "deep": {"L": []}}},
}


def _serialized(operation: str, result: dict[str, Any], *, fast: bool) -> tuple[int, dict[str, Any]]:
    model = get_service_model("dynamodb")
    context = ActionContext(
        model, model.operation_model(operation), get_serializer_class("dynamodb", "json"), DynamoHandler()
    )
    wrapped = DynamoResult(result)
    run = fastpaths._dynamo_result if fast else fastpaths._shape_serialized
    status, _headers, body = run(wrapped, context)
    return int(status), json.loads(body)


def _as_moto_item(attributes: dict[str, Any]) -> dict[str, DynamoType]:
    return {name: DynamoType(value) for name, value in attributes.items()}


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("GetItem", {"Item": _as_moto_item(EVERY_TYPE)}),
        ("GetItem", {}),
        ("Query", {"Items": [_as_moto_item(EVERY_TYPE)], "Count": 1, "ScannedCount": 1, "LastEvaluatedKey": None}),
        ("UpdateItem", {"Attributes": _as_moto_item(EVERY_TYPE), "ConsumedCapacity": None}),
        ("TransactWriteItems", {}),
    ],
)
def test_item_responses_are_the_json_moto_would_write(operation: str, result: dict[str, Any]) -> None:
    assert _serialized(operation, result, fast=True) == _serialized(operation, result, fast=False)


def test_every_attribute_type_round_trips_through_the_client(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item=EVERY_TYPE)
    got = dynamodb.get_item(TableName=TABLE, Key={"pk": EVERY_TYPE["pk"], "sk": EVERY_TYPE["sk"]})["Item"]
    assert got["blob"] == {"B": b"\x00\xffbytes"}
    assert sorted(got["blobs"]["BS"]) == [b"\x01", b"\x02"]
    assert Decimal(got["count"]["N"]) == Decimal("42.5")
    assert got["list"]["L"][2] == {"M": {"inner": {"B": b"\x03"}}}
    assert got["nothing"] == {"NULL": True}


def _item(client: Any, sk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get_item(TableName=TABLE, Key={"pk": {"S": "u"}, "sk": {"S": sk}}).get("Item")
    return found


def test_a_cancelled_transaction_leaves_every_item_as_it_was(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "u"}, "sk": {"S": "credits"}, "left": {"N": "10"}})
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "u"}, "sk": {"S": "taken"}, "v": {"S": "old"}})
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[
                # Applied by moto before the third entry fails: each must be put back.
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "u"}, "sk": {"S": "credits"}},
                        "UpdateExpression": "SET #l = #l - :c",
                        "ExpressionAttributeNames": {"#l": "left"},
                        "ExpressionAttributeValues": {":c": {"N": "3"}},
                    }
                },
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "u"}, "sk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"pk": {"S": "u"}, "sk": {"S": "taken"}, "v": {"S": "new"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _item(dynamodb, "credits") == {"pk": {"S": "u"}, "sk": {"S": "credits"}, "left": {"N": "10"}}
    assert _item(dynamodb, "new") is None
    assert _item(dynamodb, "taken") == {"pk": {"S": "u"}, "sk": {"S": "taken"}, "v": {"S": "old"}}


def test_a_transaction_that_succeeds_is_applied_whole(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "u"}, "sk": {"S": "credits"}, "left": {"N": "10"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "u"}, "sk": {"S": "credits"}},
                    "UpdateExpression": "SET #l = #l - :c",
                    "ConditionExpression": "#l >= :c",
                    "ExpressionAttributeNames": {"#l": "left"},
                    "ExpressionAttributeValues": {":c": {"N": "3"}},
                }
            },
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "u"}, "sk": {"S": "job"}}}},
        ]
    )
    assert _item(dynamodb, "credits") == {"pk": {"S": "u"}, "sk": {"S": "credits"}, "left": {"N": "7"}}
    assert _item(dynamodb, "job") == {"pk": {"S": "u"}, "sk": {"S": "job"}}


def test_a_transaction_touching_one_item_twice_is_refused_and_changes_nothing(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "u"}, "sk": {"S": "a"}, "v": {"S": "1"}})
    twice = {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "u"}, "sk": {"S": "a"}, "v": {"S": "2"}}}}
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[twice, twice])
    assert _item(dynamodb, "a") == {"pk": {"S": "u"}, "sk": {"S": "a"}, "v": {"S": "1"}}
