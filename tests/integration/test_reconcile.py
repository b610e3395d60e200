"""Executions that end outside the workflow's own failure path still end their render."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from render_service.data.accounting import Accounting
from render_service.models.jobs import OutputObject, RenderJob, RenderStatus, SlotState
from render_service.models.timeline import RenderRequest
from render_service.service import limits
from render_service.settings import get_settings

REQUEST = RenderRequest.model_validate({"timeline": {"scenes": [{"type": "title", "text": "hi", "duration": 2}]}})


class _Context:
    function_name = "Reconcile"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:Reconcile"
    aws_request_id = "test"


def _running(aws: Any) -> tuple[Accounting, RenderJob]:
    settings = get_settings()
    accounting = Accounting(aws.dynamodb, settings.table_name, limits(settings))
    job = RenderJob(render_id=str(uuid.uuid4()), user_id="alice", request=REQUEST, cost=4)
    accounting.admit(job)
    assert accounting.acquire_slot(job)
    return accounting, job


def test_a_timed_out_execution_fails_its_render_and_refunds(
    aws: Any, load_event: Callable[..., dict[str, Any]]
) -> None:
    from render_service.handlers.workflow import reconcile
    from render_service.service import service

    accounting, job = _running(aws)
    event = load_event("execution_timed_out")
    event["detail"] = {**event["detail"], "name": job.render_id}

    assert reconcile(copy.deepcopy(event), _Context()) == {"status": "failed"}
    ended = service().renders.require(job.render_id)
    assert (ended.status, ended.error and ended.error.code, ended.slot) == (
        RenderStatus.failed,
        "TIMED_OUT",
        SlotState.released,
    )
    assert accounting.balance("alice") == 100
    assert accounting.snapshot("alice").active == 0
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Failed"]

    assert reconcile(copy.deepcopy(event), _Context()) == {"status": "failed"}  # a redelivered event changes nothing
    assert accounting.balance("alice") == 100


def test_a_finished_render_is_left_alone(aws: Any, load_event: Callable[..., dict[str, Any]]) -> None:
    from render_service.handlers.workflow import reconcile

    accounting, job = _running(aws)
    accounting.finish(
        job.render_id, RenderStatus.complete, output=OutputObject(key="k", size_bytes=1, duration_seconds=2)
    )
    event = load_event("execution_timed_out")
    event["detail"] = {**event["detail"], "name": job.render_id, "status": "ABORTED"}
    assert reconcile(event, _Context()) == {"status": "complete"}


def test_a_stop_seen_before_the_cancels_write_still_ends_as_cancelled(
    aws: Any, load_event: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from render_service.handlers.workflow import reconcile
    from render_service.lifecycle import lifecycle
    from render_service.logic import renders

    accounting, job = _running(aws)
    event = load_event("execution_timed_out")
    event["detail"] = {**event["detail"], "name": job.render_id, "status": "ABORTED"}
    outcomes: list[dict[str, Any]] = []
    # The race: the execution's ABORTED status reaches Reconcile before the cancel writes its ending.
    monkeypatch.setattr(lifecycle(), "_stop_execution", lambda render_id: outcomes.append(reconcile(event, _Context())))

    view = renders.cancel("alice", job.render_id)

    assert outcomes == [{"status": "cancelled"}]
    assert (view.status, view.error and view.error.code) == ("cancelled", "CANCELLED")
    assert accounting.balance("alice") == 100
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Cancelled"]
