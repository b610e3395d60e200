"""Render jobs and their chunks in DynamoDB."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from render_service.data import items as it
from render_service.errors import InvalidRequest, RenderAlreadyFinished, RenderNotFound
from render_service.models.jobs import (
    ACTIVE,
    Chunk,
    ChunkStatus,
    Delivery,
    OutputObject,
    Phase,
    RemotionRender,
    RenderError,
    RenderJob,
    RenderStatus,
    utcnow,
)
from render_service.models.requests import parse_request_json

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value else None


def now_iso() -> str:
    return utcnow().isoformat(timespec="milliseconds")


def sort_key(job: RenderJob) -> str:
    return f"{iso(job.created_at)}#{job.render_id}"


def job_to_item(job: RenderJob) -> dict[str, Any]:
    subject = job.request.subject
    item: dict[str, Any] = {
        "PK": it.render_pk(job.render_id),
        "SK": it.RENDER_SK,
        "type": "render",
        "renderId": job.render_id,
        "userId": job.user_id,
        "status": job.status.value,
        "phase": job.phase.value,
        "progress": job.progress,
        "engine": job.engine,
        "request": job.request.model_dump_json(exclude_none=True),
        "cost": job.cost,
        "attempts": job.attempts,
        "slot": job.slot.value,
        "refunded": job.refunded,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "startedAt": iso(job.started_at),
        "attemptStartedAt": iso(job.attempt_started_at),
        "completedAt": iso(job.completed_at),
        "output": job.output.model_dump() if job.output else None,
        "error": job.error.model_dump() if job.error else None,
        "lastError": job.last_error.model_dump() if job.last_error else None,
        "nextAttemptAt": iso(job.next_attempt_at),
        "safeMode": job.safe_mode,
        "executionSeen": job.execution_seen,
        "cancelRequested": job.cancel_requested,
        "remotion": job.remotion.model_dump(exclude_none=True) if job.remotion else None,
        "notifyEmail": job.notify_email,
        "deliveries": [d.model_dump(mode="json", exclude_none=True) for d in job.deliveries] or None,
        "GSI1PK": it.user_history_pk(job.user_id),
        "GSI1SK": sort_key(job),
    }
    if subject:
        item |= {"subjectKey": subject.key, "GSI2PK": it.subject_pk(job.user_id, subject.key), "GSI2SK": sort_key(job)}
    if job.status in ACTIVE:
        item |= {"GSI3PK": it.ACTIVE_PARTITION, "GSI3SK": sort_key(job)}
    return item


def item_to_job(raw: dict[str, Any]) -> RenderJob:
    item = it.deserialize(raw)
    return RenderJob(
        render_id=item["renderId"],
        user_id=item["userId"],
        status=item["status"],
        phase=item.get("phase", Phase.queued),
        progress=item.get("progress", 0),
        request=parse_request_json(item["request"]),
        cost=item.get("cost", 0),
        attempts=item.get("attempts", 0),
        slot=item.get("slot", "waiting"),
        refunded=item.get("refunded", False),
        created_at=item["createdAt"],
        updated_at=item.get("updatedAt", item["createdAt"]),
        started_at=item.get("startedAt"),
        attempt_started_at=item.get("attemptStartedAt"),
        completed_at=item.get("completedAt"),
        output=OutputObject.model_validate(item["output"]) if item.get("output") else None,
        error=RenderError.model_validate(item["error"]) if item.get("error") else None,
        last_error=RenderError.model_validate(item["lastError"]) if item.get("lastError") else None,
        next_attempt_at=item.get("nextAttemptAt"),
        safe_mode=item.get("safeMode", False),
        # Items always carry the flag; one without it predates the flag and had a workflow.
        execution_seen=item.get("executionSeen", True),
        cancel_requested=item.get("cancelRequested", False),
        remotion=RemotionRender.model_validate(item["remotion"]) if item.get("remotion") else None,
        notify_email=item.get("notifyEmail"),
        deliveries=[Delivery.model_validate(d) for d in item.get("deliveries") or []],
    )


def _encode_cursor(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(it.deserialize(last_key)).encode()).decode().rstrip("=")


_CURSOR_VALUE_CHARS = 1024


def _decode_cursor(cursor: str, index: str, partition: str) -> dict[str, Any]:
    """The start key a cursor carries, if it is one this API could have returned for this query.

    Anything else (another partition, other attributes, other types) is refused here: DynamoDB
    would answer a malformed ExclusiveStartKey with a ValidationException, and another partition
    would reach another user's data.
    """
    pk_attr, sk_attr = f"{index}PK", f"{index}SK"
    refused = InvalidRequest("cursor: is not a cursor this API returned", details={"field": "cursor"})
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise refused from None
    if (
        not isinstance(decoded, dict)
        or set(decoded) != {"PK", "SK", pk_attr, sk_attr}
        or not all(isinstance(v, str) and 0 < len(v) <= _CURSOR_VALUE_CHARS for v in decoded.values())
        or decoded[pk_attr] != partition
        or decoded["SK"] != it.RENDER_SK
        or not decoded["PK"].startswith(it.render_pk(""))
    ):
        raise refused
    return it.serialize(decoded)


class RenderRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item a query matches, following DynamoDB's pages."""
        items: list[dict[str, Any]] = []
        while True:
            response = self._db.query(TableName=self._table, **kwargs)
            items += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get(self, render_id: str, *, consistent: bool = True) -> RenderJob | None:
        response = self._db.get_item(
            TableName=self._table, Key=it.key(it.render_pk(render_id), it.RENDER_SK), ConsistentRead=consistent
        )
        return item_to_job(response["Item"]) if "Item" in response else None

    def get_owned(self, render_id: str, user_id: str) -> RenderJob:
        """The job, if it belongs to the user; another user's render is indistinguishable from none."""
        job = self.get(render_id)
        if job is None or job.user_id != user_id:
            raise RenderNotFound(f"render {render_id} was not found")
        return job

    def require(self, render_id: str) -> RenderJob:
        job = self.get(render_id)
        if job is None:
            raise RenderNotFound(f"render {render_id} was not found")
        return job

    def start_rendering(self, render_id: str) -> RenderJob:
        """Starts the next attempt: queued (the first) or retrying (after a transient failure) ->
        rendering. A repeated call within an attempt (a retried StartRender) leaves it as it is."""
        now = now_iso()
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=it.key(it.render_pk(render_id), it.RENDER_SK),
                UpdateExpression=(
                    "SET #status = :rendering, #phase = :preparing, startedAt = if_not_exists(startedAt, :now), "
                    "attemptStartedAt = :now, updatedAt = :now REMOVE nextAttemptAt ADD attempts :one"
                ),
                ConditionExpression="#status = :queued OR (#status = :rendering AND #phase = :retrying)",
                ExpressionAttributeNames={"#status": "status", "#phase": "phase"},
                ExpressionAttributeValues={
                    ":rendering": {"S": RenderStatus.rendering},
                    ":queued": {"S": RenderStatus.queued},
                    ":retrying": {"S": Phase.retrying},
                    ":preparing": {"S": Phase.preparing},
                    ":now": {"S": now},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            job = self.require(render_id)
            if job.status == RenderStatus.rendering:
                return job  # this attempt has started already
            raise RenderAlreadyFinished(f"render {render_id} has already finished") from None
        return item_to_job(response["Attributes"])

    def schedule_retry(
        self, render_id: str, *, attempt: int, error: RenderError, next_attempt_at: datetime, safe_mode: bool
    ) -> bool:
        """Attempt `attempt` failed for a transient reason: rendering -> retrying until the next one.

        False if the render is no longer in that attempt (it ended, or a repeated call did this).
        """
        try:
            self._db.update_item(
                TableName=self._table,
                Key=it.key(it.render_pk(render_id), it.RENDER_SK),
                # The next attempt starts afresh: a remotion render of this one is not resumed.
                UpdateExpression=(
                    "SET #phase = :retrying, lastError = :error, nextAttemptAt = :next, safeMode = :safe, "
                    "updatedAt = :now REMOVE remotion"
                ),
                ConditionExpression="#status = :rendering AND attempts = :attempt AND #phase <> :retrying",
                ExpressionAttributeNames={"#status": "status", "#phase": "phase"},
                ExpressionAttributeValues={
                    ":retrying": {"S": Phase.retrying},
                    ":rendering": {"S": RenderStatus.rendering},
                    ":attempt": {"N": str(attempt)},
                    ":error": it.serialize_value(error.model_dump()),
                    ":next": {"S": iso(next_attempt_at) or ""},
                    ":safe": {"BOOL": safe_mode},
                    ":now": {"S": now_iso()},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_progress(self, render_id: str, progress: int, phase: Phase) -> None:
        """Progress only moves forward: a late or repeated poll, or a retry's new attempt, never lowers it."""
        key = it.key(it.render_pk(render_id), it.RENDER_SK)
        names = {"#status": "status", "#phase": "phase"}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET progress = :p, #phase = :phase, updatedAt = :now",
                ConditionExpression="#status = :rendering AND progress <= :p",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":p": {"N": str(progress)},
                    ":phase": {"S": phase},
                    ":rendering": {"S": RenderStatus.rendering},
                    ":now": {"S": now_iso()},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            # Behind the stored figure (a new attempt catching up) or no longer rendering: the
            # phase still says what the render is doing, while it renders.
            with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET #phase = :phase, updatedAt = :now",
                    ConditionExpression="#status = :rendering",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={
                        ":phase": {"S": phase},
                        ":rendering": {"S": RenderStatus.rendering},
                        ":now": {"S": now_iso()},
                    },
                )

    def set_output_deleted(self, render_id: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=it.key(it.render_pk(render_id), it.RENDER_SK),
            UpdateExpression="SET #output.deleted = :true, updatedAt = :now",
            ConditionExpression="attribute_exists(#output)",
            ExpressionAttributeNames={"#output": "output"},
            ExpressionAttributeValues={":true": {"BOOL": True}, ":now": {"S": now_iso()}},
        )

    def list_for_user(
        self,
        user_id: str,
        *,
        subject_key: str | None = None,
        status: RenderStatus | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[RenderJob], str | None]:
        """Newest first. With a status filter a page may hold fewer than `limit` renders; follow the cursor."""
        if subject_key:
            index, partition = "GSI2", it.subject_pk(user_id, subject_key)
        else:
            index, partition = "GSI1", it.user_history_pk(user_id)
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": f"{index}PK"},
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if status:
            query["FilterExpression"] = "#status = :status"
            query["ExpressionAttributeNames"]["#status"] = "status"
            query["ExpressionAttributeValues"][":status"] = {"S": status.value}
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, index, partition)
        response = self._db.query(**query)
        jobs = [item_to_job(raw) for raw in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return jobs, (_encode_cursor(last) if last else None)

    def list_active(self, *, limit: int = 50, cursor: str | None = None) -> tuple[list[RenderJob], str | None]:
        """Every user's active renders, newest first (GSI3: only queued and rendering jobs carry its
        keys, and the terminal write removes them). The index is eventually consistent: a render that
        has just ended may still be listed for a moment."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "GSI3",
            "KeyConditionExpression": "GSI3PK = :active",
            "ExpressionAttributeValues": {":active": {"S": it.ACTIVE_PARTITION}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, "GSI3", it.ACTIVE_PARTITION)
        response = self._db.query(**query)
        jobs = [item_to_job(raw) for raw in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return jobs, (_encode_cursor(last) if last else None)

    def active_for_subject(self, user_id: str, subject_key: str) -> list[RenderJob]:
        items = self._query_all(
            IndexName="GSI2",
            KeyConditionExpression="GSI2PK = :pk",
            FilterExpression="#status IN (:queued, :rendering)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pk": {"S": it.subject_pk(user_id, subject_key)},
                ":queued": {"S": RenderStatus.queued},
                ":rendering": {"S": RenderStatus.rendering},
            },
        )
        return [item_to_job(raw) for raw in items]

    def waiting_before(self, job: RenderJob) -> list[RenderJob]:
        """The user's renders admitted earlier that still wait for a slot, oldest first (FIFO per user).

        Only the last day is read: no execution lives that long (the state machine times out
        first), so the query stays small however long the user's history is.
        """
        horizon = (job.created_at - timedelta(days=1)).isoformat(timespec="milliseconds")
        items = self._query_all(
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk AND GSI1SK BETWEEN :from AND :sk",
            FilterExpression="#slot = :waiting AND #status = :queued",
            ExpressionAttributeNames={"#slot": "slot", "#status": "status"},
            ExpressionAttributeValues={
                ":pk": {"S": it.user_history_pk(job.user_id)},
                ":from": {"S": horizon},
                ":sk": {"S": sort_key(job)},
                ":waiting": {"S": "waiting"},
                ":queued": {"S": RenderStatus.queued},
            },
        )
        return [j for j in map(item_to_job, items) if j.render_id != job.render_id]

    def unseen_active_before(self, cutoff: datetime) -> list[RenderJob]:
        """Queued renders created before `cutoff` whose workflow never ran a step (GSI3, the active index)."""
        items = self._query_all(
            IndexName="GSI3",
            KeyConditionExpression="GSI3PK = :active AND GSI3SK < :cutoff",
            FilterExpression="executionSeen = :false AND #status = :queued",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":active": {"S": it.ACTIVE_PARTITION},
                ":cutoff": {"S": cutoff.isoformat(timespec="milliseconds")},
                ":false": {"BOOL": False},
                ":queued": {"S": RenderStatus.queued},
            },
        )
        return [item_to_job(raw) for raw in items]

    def save_delivery(self, render_id: str, index: int, delivery: Delivery) -> None:
        """Records one delivery's state. Only the deliverer writes `deliveries[i]`, one event at a time."""
        self._db.update_item(
            TableName=self._table,
            Key=it.key(it.render_pk(render_id), it.RENDER_SK),
            UpdateExpression=f"SET deliveries[{int(index)}] = :delivery, updatedAt = :now",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={
                ":delivery": it.serialize_value(delivery.model_dump(mode="json", exclude_none=True)),
                ":now": {"S": now_iso()},
            },
        )

    def request_cancel(self, render_id: str) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=it.key(it.render_pk(render_id), it.RENDER_SK),
                UpdateExpression="SET cancelRequested = :true, updatedAt = :now",
                ConditionExpression="#status IN (:queued, :rendering)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":true": {"BOOL": True},
                    ":now": {"S": now_iso()},
                    ":queued": {"S": RenderStatus.queued},
                    ":rendering": {"S": RenderStatus.rendering},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as exc:
            raise RenderAlreadyFinished(f"render {render_id} has already finished") from exc

    def save_remotion(self, render_id: str, remotion: RemotionRender) -> None:
        """Keeps the render's state at Remotion (its id, bucket, output, costs) while it is rendering."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=it.key(it.render_pk(render_id), it.RENDER_SK),
                UpdateExpression="SET remotion = :remotion, updatedAt = :now",
                ConditionExpression="#status = :rendering",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":remotion": it.serialize_value(remotion.model_dump(exclude_none=True)),
                    ":now": {"S": now_iso()},
                    ":rendering": {"S": RenderStatus.rendering},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as exc:
            raise RenderAlreadyFinished(f"render {render_id} is no longer rendering") from exc

    def mark_execution_seen(self, render_id: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=it.key(it.render_pk(render_id), it.RENDER_SK),
            UpdateExpression="SET executionSeen = :true",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    # --- chunks ----------------------------------------------------------------------

    def put_chunks(self, chunks: list[Chunk]) -> None:
        """Writes each chunk once; a retried StartRender keeps the chunks (and progress) it already has."""
        for chunk in chunks:
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=it.serialize(
                        {
                            "PK": it.render_pk(chunk.render_id),
                            "SK": it.chunk_sk(chunk.render_attempt, chunk.index),
                            "renderAttempt": chunk.render_attempt,
                            "type": "chunk",
                            "index": chunk.index,
                            "frames": chunk.frames,
                            "spec": chunk.spec,
                            "status": chunk.status.value,
                            "attempts": 0,
                            "framesDone": chunk.frames_done,
                            # A remux plan's chunks are done at birth, their key the staged source.
                            **({"key": chunk.key} if chunk.key else {}),
                        }
                    ),
                    ConditionExpression="attribute_not_exists(PK)",
                )
            except self._db.exceptions.ConditionalCheckFailedException:
                continue

    def list_chunks(self, render_id: str, *, render_attempt: int = 1) -> list[Chunk]:
        """The chunks one attempt of the render planned."""
        items = self._query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :chunk)",
            ExpressionAttributeValues={
                ":pk": {"S": it.render_pk(render_id)},
                ":chunk": {"S": it.chunk_prefix(render_attempt)},
            },
            ConsistentRead=True,
        )
        return sorted((_item_to_chunk(render_id, raw) for raw in items), key=lambda c: c.index)

    def get_chunk(self, render_id: str, index: int, *, render_attempt: int = 1) -> Chunk | None:
        response = self._db.get_item(
            TableName=self._table,
            Key=it.key(it.render_pk(render_id), it.chunk_sk(render_attempt, index)),
            ConsistentRead=True,
        )
        return _item_to_chunk(render_id, response["Item"]) if "Item" in response else None

    def _update_chunk(
        self,
        render_id: str,
        index: int,
        expression: str,
        condition: str,
        values: dict[str, Any],
        render_attempt: int,
    ) -> bool:
        names = {f"#{name}": name for name in ("status", "key", "error") if f"#{name}" in expression + condition}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=it.key(it.render_pk(render_id), it.chunk_sk(render_attempt, index)),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: it.serialize_value(v) for k, v in values.items()},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def dispatch_chunk(
        self, render_id: str, index: int, attempt: int, seen: ChunkStatus, *, render_attempt: int = 1
    ) -> bool:
        """Records attempt number `attempt` as dispatched, if the chunk is still as the caller saw it;
        False if another poll or a worker moved it on meanwhile."""
        return self._update_chunk(
            render_id,
            index,
            "SET #status = :dispatched, attempts = :attempt, framesDone = :zero, dispatchedAt = :now "
            "REMOVE #error, errorCode, heartbeatAt",
            "attempts = :previous AND #status = :seen",
            {
                ":dispatched": ChunkStatus.dispatched.value,
                ":attempt": attempt,
                ":previous": attempt - 1,
                ":zero": 0,
                ":now": now_iso(),
                ":seen": seen.value,
            },
            render_attempt,
        )

    def claim_chunk(self, render_id: str, index: int, attempt: int, *, render_attempt: int = 1) -> bool:
        """A worker takes the attempt it was sent; False if that attempt was superseded meanwhile."""
        return self._update_chunk(
            render_id,
            index,
            "SET #status = :running, heartbeatAt = :now",
            "attempts = :attempt AND #status = :dispatched",
            {
                ":running": ChunkStatus.running.value,
                ":now": now_iso(),
                ":attempt": attempt,
                ":dispatched": ChunkStatus.dispatched.value,
            },
            render_attempt,
        )

    def chunk_progress(
        self, render_id: str, index: int, attempt: int, frames_done: int, *, render_attempt: int = 1
    ) -> bool:
        """Heartbeat plus frames done; False once this attempt has been superseded."""
        return self._update_chunk(
            render_id,
            index,
            "SET framesDone = :frames, heartbeatAt = :now",
            "attempts = :attempt AND #status = :running",
            {
                ":frames": frames_done,
                ":now": now_iso(),
                ":attempt": attempt,
                ":running": ChunkStatus.running.value,
            },
            render_attempt,
        )

    def chunk_done(
        self, render_id: str, index: int, attempt: int, key: str, frames: int, *, render_attempt: int = 1
    ) -> bool:
        return self._update_chunk(
            render_id,
            index,
            "SET #status = :done, #key = :key, framesDone = :frames, heartbeatAt = :now",
            "attempts = :attempt AND #status = :running",
            {
                ":done": ChunkStatus.done.value,
                ":key": key,
                ":frames": frames,
                ":now": now_iso(),
                ":attempt": attempt,
                ":running": ChunkStatus.running.value,
            },
            render_attempt,
        )

    def chunk_failed(
        self,
        render_id: str,
        index: int,
        attempt: int,
        error: str,
        *,
        code: str | None = None,
        render_attempt: int = 1,
    ) -> bool:
        """`code`: the render failure's code, when dispatching the chunk again could not help."""
        return self._update_chunk(
            render_id,
            index,
            "SET #status = :failed, #error = :error, errorCode = :code, heartbeatAt = :now",
            "attempts = :attempt AND #status = :running",
            {
                ":failed": ChunkStatus.failed.value,
                ":error": error[:1000],
                ":code": code,
                ":now": now_iso(),
                ":attempt": attempt,
                ":running": ChunkStatus.running.value,
            },
            render_attempt,
        )


def _item_to_chunk(render_id: str, raw: dict[str, Any]) -> Chunk:
    item = it.deserialize(raw)
    return Chunk(
        render_id=render_id,
        render_attempt=item.get("renderAttempt", 1),
        index=item["index"],
        frames=item["frames"],
        spec=item["spec"],
        status=item["status"],
        attempts=item.get("attempts", 0),
        frames_done=item.get("framesDone", 0),
        key=item.get("key"),
        error=item.get("error"),
        error_code=item.get("errorCode"),
        heartbeat_at=item.get("heartbeatAt"),
        dispatched_at=item.get("dispatchedAt"),
    )
