"""Admission, slots and refunds against moto: the invariants that keep costs and credits honest."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from render_service.data import items as it
from render_service.data.accounting import Accounting, Limits
from render_service.data.renders import RenderRepository
from render_service.errors import InsufficientCredits, RateLimited, RenderAlreadyFinished, TooManyQueued
from render_service.models.jobs import OutputObject, RenderJob, RenderStatus, SlotState
from render_service.models.timeline import RenderRequest

TABLE = "renders-test"
REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "clip", "src": "s3://b/k.mp4"}]}})


def limits(**overrides: Any) -> Limits:
    base = {
        "rate_limit": 5,
        "window_seconds": 3600,
        "max_active": 3,
        "max_queued": 10,
        "initial_credits": 100,
        "credits_enabled": True,
    }
    return Limits(**(base | overrides))  # type: ignore[arg-type]


def job(user: str = "alice", cost: int = 2) -> RenderJob:
    return RenderJob(render_id=str(uuid.uuid4()), user_id=user, request=REQUEST, cost=cost)


def counters(aws: Any, user: str) -> dict[str, int]:
    item = aws.dynamodb.get_item(TableName=TABLE, Key=it.key(it.counters_pk(user), it.COUNTERS_SK)).get("Item", {})
    return {k: v for k, v in it.deserialize(item).items() if k in ("active", "queued")}


def ledger(aws: Any, user: str) -> list[dict[str, Any]]:
    response = aws.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :ledger)",
        ExpressionAttributeValues={":pk": {"S": it.credits_pk(user)}, ":ledger": {"S": "LEDGER#"}},
    )
    return [it.deserialize(item) for item in response["Items"]]


def test_limiter_admits_exactly_the_limit_from_many_threads(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits(rate_limit=5, max_queued=50))
    jobs = [job() for _ in range(50)]

    def admit(candidate: RenderJob) -> str:
        try:
            accounting.admit(candidate)
        except RateLimited:
            return "limited"
        return "admitted"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(admit, jobs))

    assert outcomes.count("admitted") == 5
    assert outcomes.count("limited") == 45
    snapshot = accounting.snapshot("alice")
    assert snapshot.used == 5
    assert snapshot.queued == 5
    assert snapshot.balance == 100 - 5 * 2


def test_refusals_name_their_reason_and_change_nothing(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits(initial_credits=3, max_queued=2))
    renders = RenderRepository(aws.dynamodb, TABLE)

    expensive = job(cost=4)
    with pytest.raises(InsufficientCredits) as refused:
        accounting.admit(expensive)
    assert refused.value.details == {"cost": 4, "balance": 3}
    assert renders.get(expensive.render_id) is None

    accounting.admit(job(cost=1))
    accounting.admit(job(cost=1))
    with pytest.raises(TooManyQueued) as queued:
        accounting.admit(job(cost=1))
    assert queued.value.retry_after > 0
    snapshot = accounting.snapshot("alice")
    assert (snapshot.used, snapshot.queued, snapshot.balance) == (2, 2, 1)


def test_rate_limited_carries_seconds_until_the_window_resets(aws: Any) -> None:
    now = 1_700_000_000.0
    accounting = Accounting(aws.dynamodb, TABLE, limits(rate_limit=1), clock=lambda: now)
    accounting.admit(job())
    with pytest.raises(RateLimited) as limited:
        accounting.admit(job())
    window_end = now - now % 3600 + 3600
    assert limited.value.retry_after == int(window_end - now)


def test_rollback_leaves_no_job_no_charge_and_no_count(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits())
    admitted = job(cost=7)
    accounting.admit(admitted)
    accounting.rollback_admission(admitted)

    assert RenderRepository(aws.dynamodb, TABLE).get(admitted.render_id) is None
    snapshot = accounting.snapshot("alice")
    assert (snapshot.used, snapshot.queued, snapshot.balance) == (0, 0, 100)


def test_slots_are_bounded_and_given_back_on_every_ending(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits(max_active=2))
    jobs = [job() for _ in range(3)]
    for candidate in jobs:
        accounting.admit(candidate)

    assert [accounting.acquire_slot(candidate) for candidate in jobs] == [True, True, False]
    assert counters(aws, "alice") == {"active": 2, "queued": 1}
    assert accounting.acquire_slot(jobs[0]) is True  # a retried AcquireSlot keeps its slot

    accounting.finish(jobs[0].render_id, RenderStatus.failed)
    assert accounting.acquire_slot(jobs[2]) is True
    accounting.finish(jobs[1].render_id, RenderStatus.cancelled)
    accounting.finish(
        jobs[2].render_id, RenderStatus.complete, output=OutputObject(key="k", size_bytes=1, duration_seconds=1)
    )
    assert counters(aws, "alice") == {"active": 0, "queued": 0}


def test_cancel_racing_finalize_ends_once_and_refunds_at_most_once(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits(rate_limit=100))
    renders = RenderRepository(aws.dynamodb, TABLE)
    for _ in range(10):
        racer = job(user="racer", cost=3)
        accounting.admit(racer)
        assert accounting.acquire_slot(racer)
        before = accounting.balance("racer")
        output = OutputObject(key="renders/racer/x.mp4", size_bytes=10, duration_seconds=1.0)

        def end(to: RenderStatus, racer: RenderJob = racer, output: OutputObject = output) -> str:
            try:
                accounting.finish(
                    racer.render_id, to, output=output if to == RenderStatus.complete else None, actual_cost=3
                )
            except RenderAlreadyFinished:
                return "lost"
            return "won"

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = dict(
                zip(["cancel", "complete"], pool.map(end, [RenderStatus.cancelled, RenderStatus.complete]), strict=True)
            )

        assert sorted(results.values()) == ["lost", "won"]
        final = renders.require(racer.render_id)
        refunds = [
            e for e in ledger(aws, "racer") if e["renderId"] == racer.render_id and e["entry"].startswith("refund")
        ]
        if results["cancel"] == "won":
            assert final.status == RenderStatus.cancelled
            assert accounting.balance("racer") == before + 3
            assert len(refunds) == 1
        else:
            assert final.status == RenderStatus.complete
            assert accounting.balance("racer") == before
            assert refunds == []
        assert final.slot == SlotState.released
    assert counters(aws, "racer") == {"active": 0, "queued": 0}


def test_complete_refunds_the_unused_reservation(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits())
    reserved = job(cost=15)
    accounting.admit(reserved)
    accounting.acquire_slot(reserved)
    accounting.finish(
        reserved.render_id,
        RenderStatus.complete,
        output=OutputObject(key="k", size_bytes=1, duration_seconds=6),
        actual_cost=1,
    )
    assert accounting.balance("alice") == 100 - 1


def test_granted_credits_are_in_the_ledger(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits())
    assert accounting.grant("bob", 50, "support") == 150
    assert [e["amount"] for e in ledger(aws, "bob")] == [50]
