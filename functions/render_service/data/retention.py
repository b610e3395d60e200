"""DynamoDB side of output retention: a user's retention class, each output's expiry, and the
sparse GSI4 of renders still to be reminded (`GSI4PK = EXPIRING`, `GSI4SK = <remindAt>#<id>`).

A render is on GSI4 from completion until its reminder is claimed; claiming removes the keys in
one conditional write, so each render is reminded once however many reminder runs overlap.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from render_service.data import items as it
from render_service.data.renders import iso, item_to_job, now_iso
from render_service.models.jobs import RenderJob, RenderStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REMINDER_INDEX = "GSI4"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class RetentionRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # --- a user's retention (operators set it with `python -m infra.admin set-retention`) --

    def user_days(self, user_id: str) -> int | None:
        response = self._db.get_item(
            TableName=self._table, Key=it.key(it.counters_pk(user_id), it.RETENTION_SK), ConsistentRead=True
        )
        item = it.deserialize(response["Item"]) if "Item" in response else {}
        return int(item["days"]) if "days" in item else None

    def set_user_days(self, user_id: str, days: int | None, reason: str) -> None:
        """`None` puts the user back on the deployment's default."""
        key = it.key(it.counters_pk(user_id), it.RETENTION_SK)
        if days is None:
            self._db.delete_item(TableName=self._table, Key=key)
            return
        item = {"userId": user_id, "days": days, "reason": reason, "updatedAt": now_iso()}
        self._db.put_item(TableName=self._table, Item={**key, **it.serialize(item)})

    # --- reminders -------------------------------------------------------------------------

    def schedule_reminder(self, render_id: str, remind_at: datetime) -> None:
        """Puts a completed render on GSI4, unless it was reminded already (a retried CompleteRender)
        or its output is gone."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=it.key(it.render_pk(render_id), it.RENDER_SK),
                UpdateExpression="SET GSI4PK = :expiring, GSI4SK = :when",
                ConditionExpression=(
                    "#status = :complete AND attribute_not_exists(remindedAt) AND #output.deleted = :false"
                ),
                ExpressionAttributeNames={"#status": "status", "#output": "output"},
                ExpressionAttributeValues={
                    ":expiring": {"S": it.EXPIRING_PARTITION},
                    ":when": {"S": f"{iso(remind_at)}#{render_id}"},
                    ":complete": {"S": RenderStatus.complete},
                    ":false": {"BOOL": False},
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def due(self, now: datetime, limit: int) -> list[tuple[RenderJob, str]]:
        """Renders whose reminder time has come, oldest first, with the GSI4SK each was seen under."""
        found: list[tuple[RenderJob, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": REMINDER_INDEX,
            "KeyConditionExpression": "GSI4PK = :expiring AND GSI4SK <= :now",
            # '~' sorts after every render id character: everything due up to `now` inclusive.
            "ExpressionAttributeValues": {":expiring": {"S": it.EXPIRING_PARTITION}, ":now": {"S": f"{iso(now)}#~"}},
        }
        while len(found) < limit:
            response = self._db.query(**kwargs, Limit=limit - len(found))
            found += [(item_to_job(item), it.deserialize(item)["GSI4SK"]) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def claim(self, render_id: str, seen: str) -> bool:
        """Takes the render off GSI4 and marks it reminded; False if another run claimed it first."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=it.key(it.render_pk(render_id), it.RENDER_SK),
                UpdateExpression="SET remindedAt = :now REMOVE GSI4PK, GSI4SK",
                ConditionExpression="GSI4SK = :seen",
                ExpressionAttributeValues={":seen": {"S": seen}, ":now": {"S": now_iso()}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def unclaim(self, render_id: str, seen: str) -> None:
        """Puts a claimed render back on GSI4 (its reminder could not be published): the next run retries."""
        self._db.update_item(
            TableName=self._table,
            Key=it.key(it.render_pk(render_id), it.RENDER_SK),
            UpdateExpression="SET GSI4PK = :expiring, GSI4SK = :seen REMOVE remindedAt",
            ConditionExpression="attribute_not_exists(GSI4PK)",
            ExpressionAttributeValues={":expiring": {"S": it.EXPIRING_PARTITION}, ":seen": {"S": seen}},
        )
