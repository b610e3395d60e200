"""Whole-render retries on the local stack: the synthesized retry loop, real waits, real ffmpeg.

Faults are injected where the handlers (which run in this process) fetch sources or render
chunks, as a flaky CDN or a crashing ffmpeg would cause them.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import jsonschema
import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack
from render_service import errors, sources
from render_service.engines import ffmpeg as engine
from render_service.engines.ffmpeg import ChunkSpec

pytestmark = pytest.mark.e2e
TERMINAL = {"complete", "failed", "cancelled"}
SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"
SCHEMA_FILES = {
    "Render Started": "started",
    "Render Succeeded": "succeeded",
    "Render Failed": "failed",
    "Render Cancelled": "cancelled",
    "Render Expiring": "expiring",
}


class Client:
    def __init__(self, base: str, user: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer local:{user}"

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=body, timeout=30)

    def get(self, path: str) -> dict[str, Any]:
        response = self.session.get(f"{self.base}{path}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def upload(self, path: Path) -> str:
        ticket = self.post(
            "/uploads", {"filename": path.name, "contentType": "video/mp4", "sizeBytes": path.stat().st_size}
        )
        assert ticket.status_code == 200, ticket.text
        body = ticket.json()
        put = requests.put(body["url"], data=path.read_bytes(), headers=body["headers"], timeout=60)
        assert put.status_code == 200, put.text
        return str(body["src"])

    def submit(self, scenes: list[dict[str, Any]]) -> str:
        created = self.post("/renders", {"timeline": {"scenes": scenes}})
        assert created.status_code == 202, created.text
        return str(created.json()["renderId"])

    def watch(self, render_id: str, timeout: float = 180) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Polls until the render ends; returns it and every view seen on the way."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            render = self.get(f"/renders/{render_id}")
            seen.append(render)
            if render["status"] in TERMINAL:
                return render, seen
            time.sleep(0.1)
        raise AssertionError(f"render {render_id} did not end within {timeout} s")


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    with local_stack() as running:
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("retry-clips") / "clip.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=1",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _flaky_source(monkeypatch: pytest.MonkeyPatch, src: str, failures: int) -> list[str]:
    """The first `failures` planning fetches of `src` fail as a timed-out CDN does."""
    key = src.split("/", 3)[3]
    real, failed = sources.fetch_s3, []

    def fetch(s3: Any, bucket: str, object_key: str, dest: Path, **kwargs: Any) -> sources.Fetched:
        if object_key == key and len(failed) < failures:
            failed.append(kwargs["where"])
            raise errors.SourceTemporarilyUnavailable(f"{kwargs['where']}: the download timed out")
        return real(s3, bucket, object_key, dest, **kwargs)

    monkeypatch.setattr(sources, "fetch_s3", fetch)
    return failed


def _execution(cloud: LocalCloud, render_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    described = cloud.ended_execution(render_id)
    history = cloud.client("stepfunctions").get_execution_history(
        executionArn=cloud.execution_arn(render_id), maxResults=1000
    )["events"]
    return described, history


def _entered(history: list[dict[str, Any]], state: str) -> int:
    return sum(1 for e in history if e.get("stateEnteredEventDetails", {}).get("name") == state)


def _events_for(cloud: LocalCloud, render_id: str) -> list[dict[str, Any]]:
    events = [e for e in cloud.received_events(wait_seconds=1) if e["detail"]["renderId"] == render_id]
    for event in events:
        schema = json.loads((SCHEMAS / f"{SCHEMA_FILES[event['detail-type']]}.schema.json").read_text())
        jsonschema.validate(event, schema)  # what the bus really carries matches the published schema
    return events


def test_a_source_that_fails_twice_then_works_completes_on_the_third_attempt(
    stack: tuple[LocalCloud, Gateway], clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "retry-flaky")
    src = client.upload(clip)
    cloud.received_events()
    failed = _flaky_source(monkeypatch, src, failures=2)

    render_id = client.submit([{"type": "clip", "src": src}, {"type": "title", "text": "after", "duration": 1}])
    render, seen = client.watch(render_id)

    assert render["status"] == "complete", render
    assert (render["attempts"], render["maxAttempts"]) == (3, 3)
    assert failed == ["scenes[0].src", "scenes[0].src"]
    waiting = [view for view in seen if view["phase"] == "retrying"]
    assert waiting, "GET never showed the render waiting for its next attempt"
    assert all(view["status"] == "rendering" and view["nextAttemptAt"] for view in waiting)
    assert {view["lastError"]["code"] for view in waiting} == {"SOURCE_UNAVAILABLE"}
    assert (render["lastError"], render["nextAttemptAt"]) == (None, None)
    # Charged once, at the end.
    quota = client.get("/quota")
    assert (quota["credits"]["balance"], quota["active"]["count"]) == (100 - render["cost"], 0)

    described, history = _execution(cloud, render_id)
    assert described["status"] == "SUCCEEDED"
    assert _entered(history, "Wait before retry") == 2
    assert _entered(history, "StartRender") == 3
    assert [e["detail-type"] for e in _events_for(cloud, render_id)] == ["Render Started", "Render Succeeded"]


def test_a_source_that_never_comes_back_fails_after_the_last_attempt_with_its_reason(
    stack: tuple[LocalCloud, Gateway], clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "retry-gone")
    src = client.upload(clip)
    cloud.received_events()
    _flaky_source(monkeypatch, src, failures=100)

    render, _ = client.watch(client.submit([{"type": "clip", "src": src}]))

    assert (render["status"], render["attempts"], render["error"]["code"]) == ("failed", 3, "SOURCE_UNAVAILABLE")
    assert "timed out" in render["error"]["message"]
    assert client.get("/quota")["credits"]["balance"] == 100
    described, history = _execution(cloud, render["renderId"])
    # The console shows the render's own reason, not a generic one.
    assert (described["status"], described.get("error")) == ("FAILED", "SOURCE_UNAVAILABLE")
    assert "timed out" in described.get("cause", "")
    assert _entered(history, "Wait before retry") == 2
    events = _events_for(cloud, render["renderId"])
    assert [e["detail-type"] for e in events] == ["Render Started", "Render Failed"]


def test_a_corrupt_source_fails_at_once(stack: tuple[LocalCloud, Gateway], tmp_path: Path) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "retry-corrupt")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 200)

    render, _ = client.watch(client.submit([{"type": "clip", "src": client.upload(junk), "duration": 1}]))

    assert (render["status"], render["attempts"], render["error"]["code"]) == ("failed", 1, "SOURCE_INVALID")
    described, history = _execution(cloud, render["renderId"])
    assert (described["status"], described.get("error")) == ("FAILED", "SOURCE_INVALID")
    assert "scenes[0]" in described.get("cause", "")
    assert _entered(history, "Wait before retry") == 0


def test_an_ffmpeg_crash_in_a_chunk_worker_is_retried_in_safe_mode(
    stack: tuple[LocalCloud, Gateway], clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, gateway = stack
    client = Client(gateway.url, "retry-crash")
    src = client.upload(clip)
    real = engine.render_chunk
    crashed: list[int] = []

    def render_chunk(spec: ChunkSpec, **kwargs: Any) -> str:
        if spec.render_attempt == 1 and spec.index == 0:
            crashed.append(spec.index)
            raise errors.EncodeFailed(f"chunk {spec.index}: ffmpeg exited with signal 11")
        return real(spec, **kwargs)

    monkeypatch.setattr(engine, "render_chunk", render_chunk)

    # 25 s: two chunks, so chunk workers render it (a single chunk is rendered inline, below).
    scenes = [{"type": "title", "text": "Long", "duration": 24}, {"type": "clip", "src": src}]
    render, seen = client.watch(client.submit(scenes))

    assert (render["status"], render["attempts"], render["safeMode"]) == ("complete", 2, True), render
    assert len(crashed) == 3, "each chunk has its own retries before the render is retried"
    assert any(view["phase"] == "retrying" and view["lastError"]["code"] == "CHUNK_FAILED" for view in seen)
    assert render["output"]["durationSeconds"] == pytest.approx(25.0, abs=0.05)


def test_an_ffmpeg_crash_in_an_inline_render_is_retried_in_safe_mode(
    stack: tuple[LocalCloud, Gateway], clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, gateway = stack
    client = Client(gateway.url, "retry-inline")
    src = client.upload(clip)
    real = engine.render_inline
    crashed: list[str] = []

    def render_inline(plan: Any, *args: Any, **kwargs: Any) -> Any:
        if plan.chunks[0].render_attempt == 1:
            crashed.append(plan.render_id)
            raise errors.EncodeFailed("chunk 0: ffmpeg exited with signal 11")
        return real(plan, *args, **kwargs)

    monkeypatch.setattr(engine, "render_inline", render_inline)

    render, seen = client.watch(client.submit([{"type": "clip", "src": src, "trimStart": 0.1}]))

    assert (render["status"], render["attempts"], render["safeMode"]) == ("complete", 2, True), render
    assert len(crashed) == 1
    assert any(view["phase"] == "retrying" for view in seen)
    assert render["output"]["durationSeconds"] == pytest.approx(0.9, abs=0.05)
