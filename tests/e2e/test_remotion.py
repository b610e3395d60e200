"""Engine remotion on the local stack over HTTP: the same workflow, driving the Remotion stand-in.

The stand-in (infra/local/remotion.py) runs under the configured function name and renders real
MP4s; `standin/next-render.json` in its bucket makes the next render hang there (see its docstring).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.remotion import FAULT_KEY
from infra.local.stack import local_stack
from render_service.data import items as it

pytestmark = pytest.mark.e2e
TERMINAL = {"complete", "failed", "cancelled"}
Stack = tuple[LocalCloud, Gateway]


class Client:
    def __init__(self, gateway: Gateway, user: str) -> None:
        self.base = gateway.url
        self.user = user
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer local:{user}"

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=body, timeout=30)

    def get(self, path: str) -> dict[str, Any]:
        response = self.session.get(f"{self.base}{path}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def submit(self, body: dict[str, Any]) -> str:
        created = self.post("/renders", body)
        assert created.status_code == 202, created.text
        return str(created.json()["renderId"])

    def wait(self, render_id: str, until: Any = None, timeout: float = 180) -> tuple[dict[str, Any], list[int]]:
        """Polls until the render ends (or `until(render)` holds); returns it and every progress seen."""
        seen: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            render = self.get(f"/renders/{render_id}")
            seen.append(render["progress"])
            if render["status"] in TERMINAL or (until is not None and until(render)):
                return render, seen
            time.sleep(0.3)
        raise AssertionError(f"render {render_id} did not get there within {timeout} s")


def remotion_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "engine": "remotion",
        "subject": {"type": "generation", "id": "g-1"},
        "kind": "clip",
        "composition": "TextAnimation",
        "inputProps": {"text": "Hello from Remotion", "style": "typewriter", "fontFamily": "Lato"},
        "durationInFrames": 45,
        "fps": 30,
        "output": {"codec": "h264", "crf": 23, "width": 1280, "height": 720},
    }
    return body | overrides


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with local_stack() as running:
        yield running


def probe(url: str, path: Path) -> tuple[int, float, int, int]:
    """(frames, fps, width, height) of the MP4 at a signed URL, frames counted by decoding."""
    path.write_bytes(requests.get(url, timeout=30).content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return frames, float(stream.average_rate or 0), stream.codec_context.width, stream.codec_context.height


def remotion_state(cloud: LocalCloud, render_id: str) -> dict[str, Any]:
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.table_name, Key=it.key(it.render_pk(render_id), it.RENDER_SK), ConsistentRead=True
    )["Item"]
    return it.deserialize(item)["remotion"]  # type: ignore[no-any-return]


def remotion_progress(cloud: LocalCloud, remotion_id: str) -> dict[str, Any]:
    body = cloud.client("s3").get_object(Bucket=cloud.remotion_bucket, Key=f"renders/{remotion_id}/progress.json")
    return json.loads(body["Body"].read())  # type: ignore[no-any-return]


def hang_next_render(cloud: LocalCloud, **fault: Any) -> None:
    cloud.client("s3").put_object(Bucket=cloud.remotion_bucket, Key=FAULT_KEY, Body=json.dumps(fault).encode())


def refunds(cloud: LocalCloud, user: str, render_id: str) -> list[str]:
    ledger = cloud.client("dynamodb").query(
        TableName=cloud.table_name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :ledger)",
        ExpressionAttributeValues={":pk": {"S": it.credits_pk(user)}, ":ledger": {"S": "LEDGER#"}},
        ConsistentRead=True,
    )["Items"]
    return [i["SK"]["S"] for i in ledger if render_id in i["SK"]["S"] and "refund" in i["SK"]["S"]]


# --- renders that complete ------------------------------------------------------------------


def test_a_text_animation_clip_completes_and_probes_as_asked(stack: Stack, tmp_path: Path) -> None:
    cloud, gateway = stack
    client = Client(gateway, "e2e-remotion-clip")
    render_id = client.submit(remotion_body())

    render, progress = client.wait(render_id)
    assert render["status"] == "complete", render
    assert (render["engine"], render["phase"], render["progress"]) == ("remotion", "done", 100)
    assert progress == sorted(progress), "progress went down"
    assert render["cost"] == 1
    assert render["output"]["durationSeconds"] == pytest.approx(1.5, abs=1 / 30)
    assert probe(render["output"]["url"], tmp_path / "clip.mp4") == (45, 30.0, 1280, 720)
    # Remotion's own cost report, kept on the job.
    assert render["engineCost"]["currency"] == "USD"
    assert render["engineCost"]["accrued"] > 0
    assert render["engineCost"]["display"].startswith("$")
    # The output is ours like any other: a poster, the events, the execution named by the render id.
    assert requests.get(render["output"]["posterUrl"], timeout=30).status_code == 200
    events = {e["detail-type"] for e in cloud.received_events(wait_seconds=1) if e["detail"]["renderId"] == render_id}
    assert {"Render Started", "Render Succeeded"} <= events
    assert cloud.ended_execution(render_id)["status"] == "SUCCEEDED"
    # The private output at Remotion was copied, not moved there by anyone else.
    state = remotion_state(cloud, render_id)
    assert state["out_bucket"] == cloud.remotion_bucket
    assert remotion_progress(cloud, state["render_id"])["renderMetadata"]["privacy"] == "private"


def test_a_movie_of_scenes_completes_and_probes_as_asked(stack: Stack, tmp_path: Path) -> None:
    _, gateway = stack
    client = Client(gateway, "e2e-remotion-movie")
    scenes = [{"title": f"Scene {i}", "code": "export default () => null"} for i in range(3)]
    body = remotion_body(
        kind="movie",
        composition="Movie",
        subject={"type": "movie", "id": "m-1"},
        inputProps={"scenes": scenes},
        durationInFrames=72,
        fps=24,
        output={"width": 640, "height": 360},
        concurrency=3,
    )
    render_id = client.submit(body)

    render, _ = client.wait(render_id)
    assert render["status"] == "complete", render
    assert probe(render["output"]["url"], tmp_path / "movie.mp4") == (72, 24.0, 640, 360)
    assert render["output"]["durationSeconds"] == pytest.approx(3.0, abs=1 / 24)


# --- refusals at the door -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"durationInFrames": 601}, "durationInFrames"),
        ({"kind": "movie", "composition": "Movie", "durationInFrames": 3601}, "durationInFrames"),
        ({"kind": "movie", "composition": "Movie", "inputProps": {"scenes": [{}] * 21}}, "inputProps.scenes"),
        ({"output": {"width": 3840, "height": 2160}}, "output.width"),
        ({"concurrency": 201}, "concurrency"),
    ],
)
def test_limits_refuse_what_they_should_naming_the_field(stack: Stack, change: dict[str, Any], field: str) -> None:
    _, gateway = stack
    client = Client(gateway, "e2e-remotion-limits")
    refused = client.post("/renders", remotion_body(**change))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["message"].startswith(f"{field}:")
    assert client.get("/quota")["renders"]["remaining"] == 5  # nothing was counted


# --- renders that end otherwise -------------------------------------------------------------


def test_cancel_asks_remotion_to_stop_and_ends_cancelled_with_one_refund(stack: Stack) -> None:
    cloud, gateway = stack
    user = "e2e-remotion-cancel"
    client = Client(gateway, user)
    hang_next_render(cloud, stall=True)
    render_id = client.submit(remotion_body())
    # Started at Remotion and polled once: the job knows Remotion's render.
    render, _ = client.wait(render_id, until=lambda r: r["engineCost"] is not None)
    assert render["status"] == "rendering"

    cancelled = client.post(f"/renders/{render_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cloud.ended_execution(render_id)["status"] == "ABORTED"
    remotion_id = remotion_state(cloud, render_id)["render_id"]
    assert cloud.client("s3").head_object(Bucket=cloud.remotion_bucket, Key=f"renders/{remotion_id}/cancel.json")
    deadline = time.monotonic() + 30  # the stand-in sees the request on its next look
    while not remotion_progress(cloud, remotion_id)["errors"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [e["name"] for e in remotion_progress(cloud, remotion_id)["errors"]] == ["CancelledError"]

    final = client.get(f"/renders/{render_id}")
    assert (final["status"], final["error"]["code"]) == ("cancelled", "CANCELLED")
    assert client.get("/quota")["credits"]["balance"] == 100
    assert len(refunds(cloud, user, render_id)) == 1


def test_a_fatal_error_at_remotion_fails_the_render_with_its_message(stack: Stack) -> None:
    cloud, gateway = stack
    user = "e2e-remotion-fatal"
    client = Client(gateway, user)
    render_id = client.submit(remotion_body(composition="NoSuchComposition"))

    render, _ = client.wait(render_id)
    assert render["status"] == "failed", render
    assert render["error"]["code"] == "REMOTION_FAILED"
    assert "No composition with the ID NoSuchComposition found" in render["error"]["message"]
    assert "Traceback" not in render["error"]["message"]  # Remotion's stack is for the logs only
    assert cloud.ended_execution(render_id)["status"] == "FAILED"
    assert client.get("/quota")["credits"]["balance"] == 100
    assert len(refunds(cloud, user, render_id)) == 1


def test_a_render_past_its_kinds_timeout_fails_with_the_reason_and_is_stopped(stack: Stack) -> None:
    cloud, gateway = stack
    user = "e2e-remotion-timeout"
    client = Client(gateway, user)
    # Hung at Remotion since 61 s before it was started: past a clip's 60 s on the first poll.
    hang_next_render(cloud, stall=True, startedSecondsAgo=61)
    render_id = client.submit(remotion_body())

    render, _ = client.wait(render_id)
    assert render["status"] == "failed", render
    assert render["error"] == {
        "code": "RENDER_TIMED_OUT",
        "message": "the Remotion render did not finish within 60 s, the limit for a clip",
    }
    assert client.get("/quota")["credits"]["balance"] == 100
    remotion_id = remotion_state(cloud, render_id)["render_id"]
    deadline = time.monotonic() + 30
    while not remotion_progress(cloud, remotion_id)["errors"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [e["name"] for e in remotion_progress(cloud, remotion_id)["errors"]] == ["CancelledError"]
