"""AcquireSlot: first in, first out per user, and a render whose workflow never started cannot block the queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from render_service.models.jobs import RenderJob, RenderStatus, SlotState
from render_service.models.timeline import RenderRequest
from render_service.settings import get_settings
from render_service.workflow.steps import GHOST_AFTER, Steps

REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 2}]}})


def _admit(steps: Steps, age: timedelta = timedelta(0)) -> RenderJob:
    job = RenderJob(
        render_id=str(uuid.uuid4()), user_id="alice", request=REQUEST, cost=2, created_at=datetime.now(UTC) - age
    )
    steps.accounting.admit(job)
    return job


def test_renders_take_slots_in_the_order_they_were_admitted(aws: Any) -> None:
    steps = Steps(get_settings())
    first, second = _admit(steps, age=timedelta(seconds=30)), _admit(steps)

    assert steps.acquire_slot(second.render_id)["acquired"] is False  # the first has not taken its turn yet
    assert steps.acquire_slot(first.render_id)["acquired"] is True
    assert steps.acquire_slot(second.render_id)["acquired"] is True


def test_a_render_whose_workflow_never_started_is_ended_and_refunded(aws: Any) -> None:
    steps = Steps(get_settings())
    ghost = _admit(steps, age=GHOST_AFTER + timedelta(minutes=1))  # admitted, but StartExecution was lost
    live = _admit(steps)

    assert steps.acquire_slot(live.render_id)["acquired"] is True

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
    steps = Steps(get_settings())
    old_but_live = _admit(steps, age=GHOST_AFTER + timedelta(minutes=1))
    steps.renders.mark_execution_seen(old_but_live.render_id)
    later = _admit(steps)

    assert steps.acquire_slot(later.render_id)["acquired"] is False
    assert steps.renders.require(old_but_live.render_id).status == RenderStatus.queued
