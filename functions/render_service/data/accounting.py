"""Quota windows, concurrency slots and credits: every move is one conditional DynamoDB transaction.

The invariants these transactions keep (and tests hammer):
- for each window of the rate policy (say 5 an hour and 20 a day), a user is admitted at most its
  `limit` renders per fixed window; all windows count in the admission transaction, so a refused
  request counts in none of them;
- `queued` counts the user's renders whose slot is `waiting`, `active` those whose slot is `held`;
  a job's slot moves waiting -> held -> released (or waiting -> released) exactly once;
- credits are debited at admission and refunded exactly once, in the same transaction that moves
  the job to its terminal state, so a race between cancel and finalize cannot refund twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from render_service.data import items as it
from render_service.data.renders import RenderRepository, job_to_item, now_iso
from render_service.errors import (
    InsufficientCredits,
    RateLimited,
    RenderAlreadyFinished,
    ServiceBusy,
    ServiceError,
    TooManyQueued,
)
from render_service.models.jobs import (
    TERMINAL,
    OutputObject,
    Phase,
    RenderError,
    RenderJob,
    RenderStatus,
    SlotState,
)
from render_service.models.rates import RateWindow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)

_TRANSACTION_ATTEMPTS = 8
_FAILED = "ConditionalCheckFailed"


@dataclass(frozen=True)
class Limits:
    windows: tuple[RateWindow, ...]
    max_active: int
    max_queued: int
    initial_credits: int
    credits_enabled: bool


@dataclass(frozen=True)
class WindowUsage:
    window: RateWindow
    used: int
    reset_at: int

    @property
    def remaining(self) -> int:
        return max(0, self.window.limit - self.used)


@dataclass(frozen=True)
class QuotaSnapshot:
    windows: tuple[WindowUsage, ...]
    active: int
    queued: int
    balance: int


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class Accounting:
    def __init__(
        self, client: DynamoDBClient, table_name: str, limits: Limits, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = client
        self._table = table_name
        self.limits = limits
        self._clock = clock

    # --- admission -------------------------------------------------------------------

    def _windows_of(self, job: RenderJob) -> list[tuple[RateWindow, int, int]]:
        """Each rate window (with its start and end) the render counts in. Keyed by the job's own
        creation time, so admission and its rollback always name the same window items."""
        created = int(job.created_at.timestamp())
        return [(window, *window.bounds(created)) for window in self.limits.windows]

    def admit(self, job: RenderJob) -> None:
        """Counts the render in every rate window and against the queue bound, debits credits, writes
        the job: one transaction, so a refusal for any reason changes nothing."""
        windows = self._windows_of(job)
        ops: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": it.key(it.quota_pk(job.user_id), it.window_sk(start, window.seconds)),
                    "UpdateExpression": "ADD #count :one SET expiresAt = :expires",
                    "ConditionExpression": "attribute_not_exists(#count) OR #count < :limit",
                    "ExpressionAttributeNames": {"#count": "count"},
                    "ExpressionAttributeValues": {
                        ":one": _n(1),
                        ":limit": _n(window.limit),
                        ":expires": _n(end + 86400),
                    },
                }
            }
            for window, start, end in windows
        ]
        counters = len(ops)
        ops += [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": it.key(it.counters_pk(job.user_id), it.COUNTERS_SK),
                    "UpdateExpression": "ADD queued :one",
                    "ConditionExpression": "attribute_not_exists(queued) OR queued < :max",
                    "ExpressionAttributeValues": {":one": _n(1), ":max": _n(self.limits.max_queued)},
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": it.serialize(job_to_item(job)),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        debit = len(ops)
        if job.cost > 0:
            ops += self._credit_ops(job.user_id, -job.cost, job.render_id, "debit")
        try:
            self._transact(ops)
        except _Cancelled as cancelled:
            reasons = cancelled.codes
            full = [(window, end) for (window, _, end), code in zip(windows, reasons, strict=False) if code == _FAILED]
            if full:
                raise self._rate_limited(full) from None
            if reasons[counters] == _FAILED:
                raise TooManyQueued(
                    f"at most {self.limits.max_queued} renders may wait for a slot; try again when one has started",
                    retry_after=30,
                    details={"maxQueued": self.limits.max_queued},
                ) from None
            if job.cost > 0 and reasons[debit] == _FAILED:
                raise InsufficientCredits(
                    f"this render costs {job.cost} credits, more than the balance",
                    details={"cost": job.cost, "balance": self.balance(job.user_id)},
                ) from None
            logger.error("admission refused for an unexpected reason", extra={"reasons": reasons})
            raise ServiceBusy("the render could not be admitted right now; retry shortly") from None

    def _rate_limited(self, full: list[tuple[RateWindow, int]]) -> RateLimited:
        """Names the full window that keeps the caller waiting longest: once it resets, every other
        full window has reset too, so Retry-After is the first moment a retry can succeed."""
        window, end = max(full, key=lambda pair: pair[1])
        retry = max(1, end - int(self._clock()))
        return RateLimited(
            f"rate limit: at most {window.describe()}; this window resets in {retry} s",
            retry_after=retry,
            details={"limit": window.limit, "seconds": window.seconds, "resetAt": end},
        )

    def count_upload(self, user_id: str, limit: int, window_seconds: int = 3600) -> None:
        """One upload ticket against the user's fixed window; uploads cost storage, so they are bounded too."""
        now = int(self._clock())
        start = now - now % window_seconds
        try:
            self._db.update_item(
                TableName=self._table,
                Key=it.key(it.quota_pk(user_id, "uploads"), it.window_sk(start, window_seconds)),
                UpdateExpression="ADD #count :one SET expiresAt = :expires",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={
                    ":one": _n(1),
                    ":limit": _n(limit),
                    ":expires": _n(start + window_seconds + 86400),
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            raise RateLimited(
                f"at most {limit} uploads per {window_seconds} s; try again later",
                retry_after=max(1, start + window_seconds - now),
                details={"limit": limit},
            ) from None

    def rollback_admission(self, job: RenderJob) -> bool:
        """Undoes `admit` when the workflow could not be started: no charge, no ghost job.

        False when there is nothing to undo because the render has moved on: its execution did
        start (the StartExecution reply was what got lost) and already took a slot.
        """
        ops: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": it.key(it.render_pk(job.render_id), it.RENDER_SK),
                    "ConditionExpression": "#slot = :waiting",
                    "ExpressionAttributeNames": {"#slot": "slot"},
                    "ExpressionAttributeValues": {":waiting": _s(SlotState.waiting)},
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": it.key(it.counters_pk(job.user_id), it.COUNTERS_SK),
                    "UpdateExpression": "ADD queued :minus",
                    "ExpressionAttributeValues": {":minus": _n(-1)},
                }
            },
        ]
        ops += [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": it.key(it.quota_pk(job.user_id), it.window_sk(start, window.seconds)),
                    "UpdateExpression": "ADD #count :minus",
                    "ConditionExpression": "#count > :zero",
                    "ExpressionAttributeNames": {"#count": "count"},
                    "ExpressionAttributeValues": {":minus": _n(-1), ":zero": _n(0)},
                }
            }
            for window, start, _ in self._windows_of(job)
        ]
        if job.cost > 0:
            ops += self._credit_ops(job.user_id, job.cost, job.render_id, "rollback")
        try:
            self._transact(ops)
        except _Cancelled as cancelled:
            if cancelled.codes[0] == _FAILED:
                return False
            raise
        return True

    # --- credits ---------------------------------------------------------------------

    def _credit_ops(
        self, user_id: str, amount: int, render_id: str, entry: str, note: str | None = None
    ) -> list[dict[str, Any]]:
        """Balance change plus its ledger line. A debit is conditional on the balance covering it."""
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": it.key(it.credits_pk(user_id), it.BALANCE_SK),
            "UpdateExpression": "SET balance = if_not_exists(balance, :initial) + :amount",
            "ExpressionAttributeValues": {":initial": _n(self.limits.initial_credits), ":amount": _n(amount)},
        }
        if amount < 0:
            update["ExpressionAttributeValues"][":cost"] = _n(-amount)
            # The first render of a user is paid from the initial grant, which the item does not hold yet.
            if self.limits.initial_credits >= -amount:
                update["ConditionExpression"] = "attribute_not_exists(balance) OR balance >= :cost"
            else:
                update["ConditionExpression"] = "balance >= :cost"
        ledger = {
            "TableName": self._table,
            "Item": it.serialize(
                {
                    "PK": it.credits_pk(user_id),
                    "SK": it.ledger_sk(now_iso(), render_id, entry),
                    "type": "ledger",
                    "renderId": render_id,
                    "entry": entry,
                    "amount": amount,
                    "note": note,
                }
            ),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
        return [{"Update": update}, {"Put": ledger}]

    def balance(self, user_id: str) -> int:
        response = self._db.get_item(
            TableName=self._table, Key=it.key(it.credits_pk(user_id), it.BALANCE_SK), ConsistentRead=True
        )
        if "Item" not in response:
            return self.limits.initial_credits
        return int(response["Item"]["balance"]["N"])

    def grant(self, user_id: str, amount: int, reason: str) -> int:
        """An admin's grant (or claw-back, when negative); returns the new balance."""
        ops = self._credit_ops(user_id, amount, f"grant-{int(self._clock() * 1000)}", "grant", note=reason)
        ops[0]["Update"].pop("ConditionExpression", None)
        self._transact(ops)
        return self.balance(user_id)

    # --- slots -----------------------------------------------------------------------

    def acquire_slot(self, job: RenderJob) -> bool:
        """waiting -> held when the user has a free slot; False means wait and ask again."""
        try:
            self._transact(
                [
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": it.key(it.counters_pk(job.user_id), it.COUNTERS_SK),
                            "UpdateExpression": "ADD active :one, queued :minus",
                            "ConditionExpression": "attribute_not_exists(active) OR active < :max",
                            "ExpressionAttributeValues": {
                                ":one": _n(1),
                                ":minus": _n(-1),
                                ":max": _n(self.limits.max_active),
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": it.key(it.render_pk(job.render_id), it.RENDER_SK),
                            "UpdateExpression": "SET #slot = :held, updatedAt = :now",
                            "ConditionExpression": "#slot = :waiting AND #status = :queued",
                            "ExpressionAttributeNames": {"#slot": "slot", "#status": "status"},
                            "ExpressionAttributeValues": {
                                ":held": _s(SlotState.held),
                                ":waiting": _s(SlotState.waiting),
                                ":queued": _s(RenderStatus.queued),
                                ":now": _s(now_iso()),
                            },
                        }
                    },
                ]
            )
        except _Cancelled as cancelled:
            if cancelled.codes[1] == _FAILED:
                return self._slot_already_settled(job.render_id)
            return False
        return True

    def _slot_already_settled(self, render_id: str) -> bool:
        current = RenderRepository(self._db, self._table).require(render_id)
        if current.status in TERMINAL:
            raise RenderAlreadyFinished(f"render {render_id} has already finished")
        return current.slot == SlotState.held  # a retried AcquireSlot that already succeeded

    # --- terminal transitions --------------------------------------------------------

    def finish(
        self,
        render_id: str,
        to: RenderStatus,
        *,
        error: RenderError | None = None,
        output: OutputObject | None = None,
        actual_cost: int | None = None,
        only_if_unseen: bool = False,
    ) -> RenderJob:
        """Moves an active render to `to`, releases its slot and refunds, all in one transaction.

        Failed and cancelled renders are refunded in full; a complete one is refunded what was
        reserved beyond `actual_cost`. Raises RenderAlreadyFinished if another path got there first.
        `only_if_unseen` is for lost submissions: it raises ExecutionSeen, and changes nothing, if
        the render's workflow has shown up meanwhile (decided in the same transaction).
        """
        assert to in TERMINAL
        renders = RenderRepository(self._db, self._table)
        for _ in range(_TRANSACTION_ATTEMPTS):
            job = renders.require(render_id)
            if job.status in TERMINAL:
                raise RenderAlreadyFinished(f"render {render_id} is already {job.status}")
            if only_if_unseen and job.execution_seen:
                raise ExecutionSeen(f"render {render_id} has a live workflow")
            refund = job.cost if to != RenderStatus.complete else max(0, job.cost - (actual_cost or job.cost))
            now = now_iso()
            values: dict[str, Any] = {
                ":to": _s(to),
                ":phase": _s(Phase.done),
                ":now": _s(now),
                ":released": _s(SlotState.released),
                ":seen": _s(job.slot),
                ":queued": _s(RenderStatus.queued),
                ":rendering": _s(RenderStatus.rendering),
                ":refunded": {"BOOL": refund > 0},
                **({":false": {"BOOL": False}} if only_if_unseen else {}),
            }
            sets = [
                "#status = :to",
                "#phase = :phase",
                "completedAt = :now",
                "updatedAt = :now",
                "#slot = :released",
                "refunded = :refunded",
            ]
            # `cost` becomes what was finally charged; the ledger keeps the reservation and the refund.
            sets.append("cost = :charged")
            values[":charged"] = _n(job.cost - refund)
            if to == RenderStatus.complete:
                sets.append("progress = :hundred")
                values[":hundred"] = _n(100)
            if error:
                sets.append("#error = :error")
                values[":error"] = it.serialize_value(error.model_dump())
            if output:
                sets.append("#output = :output")
                values[":output"] = it.serialize_value(output.model_dump())
            ops: list[dict[str, Any]] = [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": it.key(it.render_pk(render_id), it.RENDER_SK),
                        "UpdateExpression": f"SET {', '.join(sets)} REMOVE GSI3PK, GSI3SK",
                        "ConditionExpression": "#status IN (:queued, :rendering) AND #slot = :seen"
                        + (" AND executionSeen = :false" if only_if_unseen else ""),
                        "ExpressionAttributeNames": {
                            "#status": "status",
                            "#phase": "phase",
                            "#slot": "slot",
                            **({"#error": "error"} if error else {}),
                            **({"#output": "output"} if output else {}),
                        },
                        "ExpressionAttributeValues": values,
                    }
                }
            ]
            counter = {SlotState.held: "active", SlotState.waiting: "queued"}.get(job.slot)
            if counter:
                ops.append(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": it.key(it.counters_pk(job.user_id), it.COUNTERS_SK),
                            "UpdateExpression": f"ADD {counter} :minus",
                            "ExpressionAttributeValues": {":minus": _n(-1)},
                        }
                    }
                )
            if refund > 0:
                ops += self._credit_ops(job.user_id, refund, render_id, f"refund-{to}")
            try:
                self._transact(ops)
            except _Cancelled:
                continue  # status or slot moved under us: read again and decide again
            return renders.require(render_id)
        raise ServiceError(f"render {render_id}: could not record {to} after {_TRANSACTION_ATTEMPTS} attempts")

    # --- reads -----------------------------------------------------------------------

    def snapshot(self, user_id: str) -> QuotaSnapshot:
        now = int(self._clock())
        windows = [(window, *window.bounds(now)) for window in self.limits.windows]
        window_keys = [(it.quota_pk(user_id), it.window_sk(start, window.seconds)) for window, start, _ in windows]
        keys = [
            *(it.key(pk, sk) for pk, sk in window_keys),
            it.key(it.counters_pk(user_id), it.COUNTERS_SK),
            it.key(it.credits_pk(user_id), it.BALANCE_SK),
        ]
        response = self._db.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
        found = {
            (item["PK"]["S"], item["SK"]["S"]): it.deserialize(item)
            for item in response.get("Responses", {}).get(self._table, [])
        }
        counters = found.get((it.counters_pk(user_id), it.COUNTERS_SK), {})
        credits = found.get((it.credits_pk(user_id), it.BALANCE_SK), {})
        return QuotaSnapshot(
            windows=tuple(
                WindowUsage(window=window, used=int(found.get(key, {}).get("count", 0)), reset_at=end)
                for (window, _, end), key in zip(windows, window_keys, strict=True)
            ),
            active=int(counters.get("active", 0)),
            queued=int(counters.get("queued", 0)),
            balance=int(credits.get("balance", self.limits.initial_credits)),
        )

    # --- plumbing --------------------------------------------------------------------

    def _transact(self, ops: list[dict[str, Any]]) -> None:
        delay = 0.05
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self._db.transact_write_items(TransactItems=ops)  # type: ignore[arg-type]
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                codes = [reason.get("Code", "None") for reason in reasons]
                # Another transaction touched the same items: back off and try again.
                if "TransactionConflict" in codes:
                    if attempt == _TRANSACTION_ATTEMPTS - 1:
                        raise ServiceBusy("too many concurrent requests for this account; retry shortly") from exc
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                raise _Cancelled(codes) from exc


class ExecutionSeen(Exception):
    """A render taken for a lost submission turned out to have a live workflow."""


class _Cancelled(Exception):
    def __init__(self, codes: list[str]) -> None:
        super().__init__(codes)
        self.codes = codes + ["None"] * 16
