"""The workflow's remotion steps against the stand-in over moto: started once, watched, delivered, stopped."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from render_service import errors
from render_service.models.jobs import RenderJob, RenderStatus
from render_service.models.requests import parse_request
from render_service.models.steps import CatchError
from render_service.workflow.steps import Steps

FUNCTION, BUCKET = "remotion-render-steps", "remotionlambda-steps"


@pytest.fixture
def steps(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Steps:
    from infra.local import remotion as standin
    from render_service.lifecycle import lifecycle
    from render_service.service import reset

    env = {
        "REMOTION_FUNCTION_NAME": FUNCTION,
        "REMOTION_SERVE_URL": "https://remotion.local/sites/app/index.html",
        "REMOTION_BUCKET": BUCKET,
        "REMOTION_REGION": "us-east-1",
        "REMOTION_VERSION": standin.VERSION,
        "WORK_DIR": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset()
    aws.s3.create_bucket(Bucket=BUCKET)
    role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda").create_function(
        FunctionName=FUNCTION,
        Runtime="nodejs22.x",
        Role=role,
        Handler="infra.local.remotion.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
    )
    return Steps(lifecycle())


def started_job(steps: Steps, **fields: Any) -> str:
    body = {
        "engine": "remotion",
        "kind": "clip",
        "composition": "TextAnimation",
        "inputProps": {"text": "Steps", "style": "fade-in"},
        "durationInFrames": 30,
        "fps": 30,
        "output": {"width": 320, "height": 180},
        **fields,
    }
    job = RenderJob(render_id=str(uuid.uuid4()), user_id="alice", request=parse_request(body), cost=1)
    steps.accounting.admit(job)
    steps.accounting.acquire_slot(job)
    return job.render_id


def remotion_renders(aws: Any) -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="renders/").get("Contents", [])
    return sorted(o["Key"] for o in listed if o["Key"].endswith("/progress.json"))


def poll_until_done(steps: Steps, render_id: str) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.append(steps.poll_render(render_id).result())
        if seen[-1]["status"] == "done":
            return seen
        time.sleep(0.2)
    raise AssertionError("the stand-in never finished")


def test_a_retried_start_never_starts_a_second_render(steps: Steps, aws: Any) -> None:
    render_id = started_job(steps)
    first = steps.start_render(render_id).result()
    again = steps.start_render(render_id).result()

    assert first == again == {"status": "rendering", "progress": 5, "waitSeconds": 2}
    assert len(remotion_renders(aws)) == 1
    state = steps.renders.require(render_id).remotion
    assert state is not None
    assert state.bucket == BUCKET
    assert remotion_renders(aws) == [f"renders/{state.render_id}/progress.json"]
    poll_until_done(steps, render_id)  # the stand-in renders in the background: let it finish here


def test_a_render_is_watched_then_delivered_into_our_bucket(steps: Steps, aws: Any) -> None:
    render_id = started_job(steps, kind="movie", composition="Movie", inputProps={"scenes": [{"title": "a"}]})
    steps.start_render(render_id)
    seen = poll_until_done(steps, render_id)

    assert {s["waitSeconds"] for s in seen} == {3}  # a movie's interval
    assert [s["progress"] for s in seen] == sorted(s["progress"] for s in seen)
    assert seen[-1]["progress"] == 90
    job = steps.renders.require(render_id)
    assert job.remotion is not None
    assert job.remotion.out_key == f"renders/{job.remotion.render_id}/out.mp4"
    assert job.remotion.costs is not None
    assert job.remotion.costs.currency == "USD"

    output = steps.finalize_render(render_id).result()
    assert output["key"] == f"renders/alice/{render_id}.mp4"
    assert (output["width"], output["height"]) == (320, 180)
    assert output["durationSeconds"] == pytest.approx(1.0, abs=1 / 30)
    assert aws.s3.head_object(Bucket="renders-test-bucket", Key=output["key"])["ContentLength"] == output["sizeBytes"]
    assert output["posterKey"] == f"renders/alice/{render_id}.poster.jpg"


def test_a_render_cancelled_while_remotion_starts_it_is_cancelled_there(
    steps: Steps, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    render_id = started_job(steps)
    function = steps.ends.remotion.function
    start = function.start

    def start_while_the_user_cancels(request: Any) -> Any:
        started = start(request)
        steps.accounting.finish(render_id, RenderStatus.cancelled)
        return started

    monkeypatch.setattr(function, "start", start_while_the_user_cancels)
    with pytest.raises(errors.RenderAlreadyFinished):
        steps.start_render(render_id)

    # The job never learnt Remotion's id: the one render the stand-in was asked for is cancelled.
    (progress,) = remotion_renders(aws)
    assert aws.s3.head_object(Bucket=BUCKET, Key=progress.replace("progress.json", "cancel.json"))
    assert steps.renders.require(render_id).status == RenderStatus.cancelled


def test_a_failed_render_is_stopped_at_remotion(steps: Steps, aws: Any) -> None:
    from infra.local.remotion import FAULT_KEY

    aws.s3.put_object(Bucket=BUCKET, Key=FAULT_KEY, Body=b'{"stall": true}')
    render_id = started_job(steps)
    steps.start_render(render_id)
    steps.poll_render(render_id)

    failure = steps.ends.attempt_failed(render_id, CatchError(Error="SourceInvalid"))
    assert (failure.retry, steps.renders.require(render_id).status) == (False, RenderStatus.failed)
    state = steps.renders.require(render_id).remotion
    assert state is not None
    assert aws.s3.head_object(Bucket=BUCKET, Key=f"renders/{state.render_id}/cancel.json")


def test_a_retried_attempt_stops_the_old_render_and_starts_a_new_one(steps: Steps, aws: Any) -> None:
    from infra.local.remotion import FAULT_KEY

    aws.s3.put_object(Bucket=BUCKET, Key=FAULT_KEY, Body=b'{"stall": true}')
    render_id = started_job(steps)
    steps.start_render(render_id)
    first = steps.renders.require(render_id).remotion
    assert first is not None

    failure = steps.ends.attempt_failed(render_id, CatchError(Error="RemotionUnavailable"))

    assert failure.retry is True
    assert aws.s3.head_object(Bucket=BUCKET, Key=f"renders/{first.render_id}/cancel.json")
    assert steps.renders.require(render_id).remotion is None
    steps.start_render(render_id)
    second = steps.renders.require(render_id).remotion
    assert second is not None
    assert second.render_id != first.render_id
    poll_until_done(steps, render_id)
