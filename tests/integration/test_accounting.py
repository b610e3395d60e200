"""Admission, slots and refunds against moto: the invariants that keep costs and credits honest."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from render_service.data import items as it
from render_service.data.accounting import Accounting, Limits
from render_service.data.renders import RenderRepository
from render_service.errors import InsufficientCredits, RateLimited, RenderAlreadyFinished, TooManyQueued
from render_service.models.jobs import OutputObject, RenderJob, RenderStatus, SlotState
from render_service.models.rates import RateWindow
from render_service.models.timeline import RenderRequest

TABLE = "renders-test"
REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "clip", "src": "s3://b/k.mp4"}]}})


HOUR, DAY = 3600, 86400


def limits(rate_limit: int = 5, windows: tuple[RateWindow, ...] | None = None, **overrides: Any) -> Limits:
    base = {
        "windows": windows or (RateWindow(limit=rate_limit, seconds=HOUR),),
        "max_active": 3,
        "max_queued": 10,
        "initial_credits": 100,
        "credits_enabled": True,
    }
    return Limits(**(base | overrides))  # type: ignore[arg-type]


def job(user: str = "alice", cost: int = 2, at: float | None = None) -> RenderJob:
    created = {"created_at": datetime.fromtimestamp(at, UTC)} if at is not None else {}
    return RenderJob(render_id=str(uuid.uuid4()), user_id=user, request=REQUEST, cost=cost, **created)


def used(accounting: Accounting, user: str = "alice") -> list[int]:
    """What each rate window (shortest first) has counted for the user."""
    return [usage.used for usage in accounting.snapshot(user).windows]


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
    assert used(accounting) == [5]
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
    assert (used(accounting), snapshot.queued, snapshot.balance) == ([2], 2, 1)


def test_rate_limited_carries_seconds_until_the_window_resets(aws: Any) -> None:
    now = 1_700_000_000.0
    accounting = Accounting(aws.dynamodb, TABLE, limits(rate_limit=1), clock=lambda: now)
    accounting.admit(job(at=now))
    with pytest.raises(RateLimited) as limited:
        accounting.admit(job(at=now))
    window_end = now - now % 3600 + 3600
    assert limited.value.retry_after == int(window_end - now)


# --- more than one rate window ------------------------------------------------------------

HOURLY_AND_DAILY = (RateWindow(limit=3, seconds=HOUR), RateWindow(limit=5, seconds=DAY))
MIDNIGHT = 1_700_006_400.0  # a UTC midnight: the hour and the day window start at the same second


def test_every_window_is_enforced_across_hours_and_names_the_full_one(aws: Any) -> None:
    clock = [MIDNIGHT + 60]
    accounting = Accounting(
        aws.dynamodb, TABLE, limits(windows=HOURLY_AND_DAILY, max_queued=50), clock=lambda: clock[0]
    )

    def admit_at(now: float) -> RenderJob:
        clock[0] = now
        candidate = job(at=now)
        accounting.admit(candidate)
        return candidate

    for _ in range(3):
        admit_at(MIDNIGHT + 60)
    with pytest.raises(RateLimited) as hourly:
        admit_at(MIDNIGHT + 120)
    assert hourly.value.details == {"limit": 3, "seconds": HOUR, "resetAt": int(MIDNIGHT) + HOUR}
    assert hourly.value.retry_after == HOUR - 120
    assert "3 renders per hour" in hourly.value.message
    assert used(accounting) == [3, 3]

    # The next hour has room, the day has two left.
    admit_at(MIDNIGHT + HOUR + 5)
    admit_at(MIDNIGHT + HOUR + 6)
    with pytest.raises(RateLimited) as daily:
        admit_at(MIDNIGHT + HOUR + 10)
    assert daily.value.details == {"limit": 5, "seconds": DAY, "resetAt": int(MIDNIGHT) + DAY}
    assert daily.value.retry_after == DAY - HOUR - 10
    assert "5 renders per day" in daily.value.message
    assert used(accounting) == [2, 5]

    # A new day: both windows start over.
    admit_at(MIDNIGHT + DAY + 1)
    assert used(accounting) == [1, 1]


def test_when_several_windows_are_full_retry_after_waits_for_the_last_to_reset(aws: Any) -> None:
    now = MIDNIGHT + 30
    windows = (RateWindow(limit=2, seconds=HOUR), RateWindow(limit=2, seconds=DAY))
    accounting = Accounting(aws.dynamodb, TABLE, limits(windows=windows), clock=lambda: now)
    accounting.admit(job(at=now))
    accounting.admit(job(at=now))
    with pytest.raises(RateLimited) as limited:
        accounting.admit(job(at=now))
    assert limited.value.details["seconds"] == DAY
    assert limited.value.retry_after == DAY - 30


def test_both_windows_admit_exactly_their_limits_from_many_threads(aws: Any) -> None:
    """The hour window stops a burst; a day already partly used stops the next burst one short."""
    now = MIDNIGHT + 2 * HOUR + 10
    accounting = Accounting(aws.dynamodb, TABLE, limits(windows=HOURLY_AND_DAILY, max_queued=100), clock=lambda: now)

    def burst(user: str, count: int) -> list[str]:
        def admit(candidate: RenderJob) -> str:
            try:
                accounting.admit(candidate)
            except RateLimited as limited:
                return f"limited-{limited.details['seconds']}"
            return "admitted"

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(admit, [job(user=user, at=now) for _ in range(count)]))

    hourly = burst("hourly", 40)
    assert (hourly.count("admitted"), hourly.count(f"limited-{HOUR}")) == (3, 37)
    assert used(accounting, "hourly") == [3, 3]

    # Four renders in the two hours before leave one for this hour's burst.
    for earlier in (5, 6, HOUR + 5, HOUR + 6):
        accounting.admit(job(user="daily", at=MIDNIGHT + earlier))
    daily = burst("daily", 40)
    assert (daily.count("admitted"), daily.count(f"limited-{DAY}")) == (1, 39)
    assert used(accounting, "daily") == [1, 5]


def test_a_refusal_for_any_reason_counts_in_no_window(aws: Any) -> None:
    now = MIDNIGHT + 10
    accounting = Accounting(
        aws.dynamodb, TABLE, limits(windows=HOURLY_AND_DAILY, initial_credits=3, max_queued=2), clock=lambda: now
    )
    with pytest.raises(InsufficientCredits):
        accounting.admit(job(cost=4, at=now))
    assert used(accounting) == [0, 0]
    accounting.admit(job(cost=1, at=now))
    accounting.admit(job(cost=1, at=now))
    with pytest.raises(TooManyQueued):
        accounting.admit(job(cost=1, at=now))
    assert used(accounting) == [2, 2]


def test_rollback_gives_back_every_window(aws: Any) -> None:
    now = MIDNIGHT + 10
    accounting = Accounting(aws.dynamodb, TABLE, limits(windows=HOURLY_AND_DAILY), clock=lambda: now)
    admitted = job(at=now)
    accounting.admit(admitted)
    assert used(accounting) == [1, 1]
    assert accounting.rollback_admission(admitted)
    assert used(accounting) == [0, 0]


def test_rollback_leaves_no_job_no_charge_and_no_count(aws: Any) -> None:
    accounting = Accounting(aws.dynamodb, TABLE, limits())
    admitted = job(cost=7)
    accounting.admit(admitted)
    accounting.rollback_admission(admitted)

    assert RenderRepository(aws.dynamodb, TABLE).get(admitted.render_id) is None
    snapshot = accounting.snapshot("alice")
    assert (used(accounting), snapshot.queued, snapshot.balance) == ([0], 0, 100)


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
