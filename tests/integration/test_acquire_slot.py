"""AcquireSlot: first in, first out per user, and a render whose workflow never started cannot block the queue."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from render_service.lifecycle import GHOST_AFTER, SUBMISSION_LOST, Lifecycle, lifecycle
from render_service.models.jobs import RenderJob, RenderStatus, SlotState
from render_service.models.timeline import RenderRequest
from render_service.notify import EventPublisher
from render_service.service import service
from render_service.settings import get_settings
from render_service.workflow.steps import Steps

REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 2}]}})


def _admit(steps: Steps, age: timedelta = timedelta(0)) -> RenderJob:
    job = RenderJob(
        render_id=str(uuid.uuid4()), user_id="alice", request=REQUEST, cost=2, created_at=datetime.now(UTC) - age
    )
    steps.accounting.admit(job)
    return job


def test_renders_take_slots_in_the_order_they_were_admitted(aws: Any) -> None:
    steps = Steps(lifecycle())
    first, second = _admit(steps, age=timedelta(seconds=30)), _admit(steps)

    assert steps.acquire_slot(second.render_id).acquired is False  # the first has not taken its turn yet
    assert steps.acquire_slot(first.render_id).acquired is True
    assert steps.acquire_slot(second.render_id).acquired is True


def test_a_render_whose_workflow_never_started_is_ended_and_refunded(aws: Any) -> None:
    steps = Steps(lifecycle())
    ghost = _admit(steps, age=GHOST_AFTER + timedelta(minutes=1))  # admitted, but StartExecution was lost
    live = _admit(steps)

    assert steps.acquire_slot(live.render_id).acquired is True

    ended = steps.renders.require(ghost.render_id)
    assert (ended.status, ended.slot, ended.error and ended.error.code) == (
        RenderStatus.failed,
        SlotState.released,
        "SUBMISSION_LOST",
    )
    assert steps.accounting.balance("alice") == 100 - 2  # only the live render is paid for
    assert steps.accounting.snapshot("alice").queued == 0
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Failed"]


def test_a_slow_but_live_workflow_is_not_mistaken_for_a_ghost(aws: Any) -> None:
    steps = Steps(lifecycle())
    old_but_live = _admit(steps, age=GHOST_AFTER + timedelta(minutes=1))
    steps.renders.mark_execution_seen(old_but_live.render_id)
    later = _admit(steps)

    assert steps.acquire_slot(later.render_id).acquired is False
    assert steps.renders.require(old_but_live.render_id).status == RenderStatus.queued


def test_a_render_stored_before_the_flag_existed_is_never_taken_for_lost(aws: Any) -> None:
    steps = Steps(lifecycle())
    legacy = _admit(steps, age=GHOST_AFTER + timedelta(minutes=1))
    aws.dynamodb.update_item(
        TableName=get_settings().table_name,
        Key={"PK": {"S": f"RENDER#{legacy.render_id}"}, "SK": {"S": "RENDER"}},
        UpdateExpression="REMOVE executionSeen",
    )
    later = _admit(steps)

    assert steps.acquire_slot(later.render_id).acquired is False
    assert steps.renders.require(legacy.render_id).status == RenderStatus.queued


def test_the_sweep_leaves_a_render_whose_workflow_showed_up(aws: Any) -> None:
    from render_service.data.accounting import ExecutionSeen

    steps = Steps(lifecycle())
    job = _admit(steps, age=GHOST_AFTER + timedelta(minutes=1))
    steps.renders.mark_execution_seen(job.render_id)
    with pytest.raises(ExecutionSeen):
        steps.accounting.finish(job.render_id, RenderStatus.failed, only_if_unseen=True)
    assert steps.renders.require(job.render_id).status == RenderStatus.queued
    assert steps.accounting.balance("alice") == 98


def test_a_failed_announcement_of_a_lost_render_does_not_fail_the_live_one(aws: Any) -> None:
    class Refusing:
        def put_events(self, **_: Any) -> dict[str, Any]:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}

    svc = dataclasses.replace(service(), events=EventPublisher(Refusing(), "bus"))  # type: ignore[arg-type]
    steps = Steps(Lifecycle(svc))
    lost = _admit(steps, age=GHOST_AFTER + timedelta(minutes=1))
    live = _admit(steps)
    assert steps.acquire_slot(live.render_id).acquired is True
    assert steps.renders.require(lost.render_id).status == RenderStatus.failed


def test_the_scheduled_sweep_ends_lost_renders_no_later_render_comes_for(aws: Any) -> None:
    steps = Steps(lifecycle())
    lost = _admit(steps, age=timedelta(days=3))
    recent = _admit(steps, age=timedelta(minutes=1))
    running = _admit(steps, age=timedelta(days=2))
    steps.renders.mark_execution_seen(running.render_id)

    result = steps.ends.sweep_lost()

    assert result["ended"] == [lost.render_id]
    assert steps.renders.require(lost.render_id).error == SUBMISSION_LOST
    assert {steps.renders.require(j.render_id).status for j in (recent, running)} == {RenderStatus.queued}
    assert steps.accounting.balance("alice") == 100 - 2 * 2
