"""The local stack over real HTTP: the synthesized state machine, our handlers, real ffmpeg."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import imageio_ffmpeg
import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack

pytestmark = pytest.mark.e2e
TERMINAL = {"complete", "failed", "cancelled"}


class Client:
    def __init__(self, base: str, user: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer local:{user}"

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=json, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=30, **kwargs)

    def upload(self, path: Path) -> str:
        ticket = self.post(
            "/uploads", {"filename": path.name, "contentType": "video/mp4", "sizeBytes": path.stat().st_size}
        )
        assert ticket.status_code == 200, ticket.text
        body = ticket.json()
        put = requests.put(body["url"], data=path.read_bytes(), headers=body["headers"], timeout=60)
        assert put.status_code == 200, put.text
        return str(body["src"])

    def wait(self, render_id: str, timeout: float = 180) -> tuple[dict[str, Any], list[int]]:
        """Polls until the render ends; returns it and every progress figure seen on the way."""
        seen: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            render = self.get(f"/renders/{render_id}").json()
            seen.append(render["progress"])
            if render["status"] in TERMINAL:
                return render, seen
            time.sleep(0.3)
        raise AssertionError(f"render {render_id} did not end within {timeout} s")


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    with local_stack() as running:
        yield running


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, float]]:
    directory = tmp_path_factory.mktemp("clips")
    made = []
    for index, (pattern, seconds) in enumerate([("testsrc2", 1.0), ("smptebars", 1.5)]):
        path = directory / f"clip{index}.mp4"
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"{pattern}=size=640x360:rate=30:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
            check=True,
        )  # fmt: skip
        made.append((path, seconds))
    return made


def test_matching_whole_clips_are_remuxed_with_no_chunk_worker_and_no_poll(
    stack: tuple[LocalCloud, Gateway], tmp_path: Path
) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "e2e-remux")
    scenes = []
    for index, pattern in enumerate(("testsrc2", "smptehdbars", "testsrc2")):
        path = tmp_path / f"hd{index}.mp4"
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"{pattern}=size=1280x720:rate=30:duration=1",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
             "-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-g", "30", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-ac", "2", "-shortest", str(path)],
            check=True,
        )  # fmt: skip
        scenes.append({"type": "clip", "src": client.upload(path)})
    created = client.post("/renders", {"timeline": {"scenes": scenes}, "output": {"resolution": "720p", "fps": 30}})
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]

    render, progress = client.wait(render_id)
    assert render["status"] == "complete", render
    assert progress == sorted(progress)
    video = tmp_path / "remuxed.mp4"
    video.write_bytes(requests.get(render["output"]["url"], timeout=30).content)
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 90  # every frame decodes

    chunks = cloud.client("dynamodb").query(
        TableName=cloud.table_name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :chunk)",
        ExpressionAttributeValues={":pk": {"S": f"RENDER#{render_id}"}, ":chunk": {"S": "CHUNK#"}},
    )["Items"]
    assert len(chunks) == 3
    # Done at birth, never dispatched to a worker: StartRender made the output itself.
    assert {(c["status"]["S"], c["attempts"]["N"]) for c in chunks} == {("done", "0")}
    assert {c["key"]["S"] for c in chunks} == {f"renders/e2e-remux/{render_id}.mp4"}
    assert cloud.ended_execution(render_id)["status"] == "SUCCEEDED"
    history = cloud.client("stepfunctions").get_execution_history(executionArn=cloud.execution_arn(render_id))["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    # Straight from StartRender to CompleteRender: no wait, no poll, no join.
    assert "PollRender" not in entered
    assert "Wait for progress" not in entered
    assert "FinalizeRender" not in entered
    assert entered[entered.index("StartRender") :] == [
        "StartRender",
        "Render done?",
        "CompleteRender",
        "Render succeeded",
    ]
    started = next(
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "StartRender"
    )
    assert started["progress"]["waitSeconds"] == 0
    assert (started["progress"]["status"], started["progress"]["output"]["key"]) == (
        "made",
        f"renders/e2e-remux/{render_id}.mp4",
    )


def test_health_and_auth_over_http(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    assert requests.get(f"{gateway.url}/health", timeout=10).json() == {"status": "ok"}
    anonymous = requests.post(f"{gateway.url}/renders", json={}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    forged = requests.get(f"{gateway.url}/quota", headers={"Authorization": "Bearer local:"}, timeout=10)
    assert forged.status_code == 401


def test_a_render_runs_end_to_end(
    stack: tuple[LocalCloud, Gateway], clips: list[tuple[Path, float]], tmp_path: Path
) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "e2e-render")
    scenes = [{"type": "clip", "src": client.upload(path)} for path, _ in clips]
    created = client.post("/renders", {"timeline": {"scenes": scenes}, "output": {"resolution": "720p", "fps": 30}})
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]
    assert created.headers["Location"] == f"/renders/{render_id}"

    render, progress = client.wait(render_id)
    assert render["status"] == "complete", render
    assert progress == sorted(progress), "progress went down"
    assert render["progress"] == 100
    assert render["cost"] == 1  # 2.5 s at 720p, settled from the open-ended reservation

    video = tmp_path / "out.mp4"
    video.write_bytes(requests.get(render["output"]["url"], timeout=30).content)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        assert (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height) == (
            "h264",
            1280,
            720,
        )
        assert container.streams.audio[0].codec_context.name == "aac"
        assert abs(container.duration / 1_000_000 - sum(s for _, s in clips)) <= 1 / 30
    assert frames == 75
    assert render["output"]["durationSeconds"] == pytest.approx(2.5, abs=1 / 30)

    sfn = cloud.client("stepfunctions")
    execution_arn = cloud.execution_arn(render_id)
    execution = cloud.ended_execution(render_id)
    assert (execution["name"], execution["status"]) == (render_id, "SUCCEEDED")
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in sfn.get_execution_history(executionArn=execution_arn)["events"]
        if "stateEnteredEventDetails" in e
    ]
    assert entered[:3] == ["AcquireSlot", "Slot free?", "StartRender"]
    assert entered[-2:] == ["CompleteRender", "Render succeeded"]
    # Joined renders are polled; one StartRender made whole (`made`) is neither polled nor joined.
    assert ("FinalizeRender" in entered) == ("PollRender" in entered)

    events = {
        e["detail-type"]: e["detail"]
        for e in cloud.received_events(wait_seconds=1)
        if e["detail"]["renderId"] == render_id
    }
    assert set(events) >= {"Render Started", "Render Succeeded"}
    assert events["Render Succeeded"]["output"]["sizeBytes"] == video.stat().st_size

    # The poster and thumbnail, made by FinalizeRender, named in the event, signed in the GET.
    announced = events["Render Succeeded"]["output"]
    assert (announced["posterKey"], announced["thumbnailKey"]) == (
        f"renders/e2e-render/{render_id}.poster.jpg",
        f"renders/e2e-render/{render_id}.thumb.jpg",
    )
    for field, size in (("posterUrl", (1280, 720)), ("thumbnailUrl", (320, 180))):
        image = tmp_path / f"{field}.jpg"
        got = requests.get(render["output"][field], timeout=30)
        assert (got.status_code, got.headers["Content-Type"]) == (200, "image/jpeg")
        image.write_bytes(got.content)
        with av.open(str(image)) as container:
            frame = next(container.decode(video=0))
            assert (frame.width, frame.height) == size


def test_fifty_parallel_posts_admit_exactly_the_rate_limit(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    client = Client(gateway.url, "e2e-burst")
    body = {
        "timeline": {"scenes": [{"type": "title", "text": "burst", "duration": 1}]},
        "output": {"resolution": "720p"},
    }

    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(lambda _: client.post("/renders", body), range(50)))

    statuses = [r.status_code for r in responses]
    assert statuses.count(202) == 5, statuses
    assert statuses.count(429) == 45
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    quota = client.get("/quota").json()
    assert quota["renders"] == {**quota["renders"], "limit": 5, "remaining": 0}

    # Three run at once (MAX_ACTIVE_RENDERS), the rest wait their turn; all of them finish.
    admitted = [r.json()["renderId"] for r in responses if r.status_code == 202]
    finals = [client.wait(render_id)[0] for render_id in admitted]
    assert [f["status"] for f in finals] == ["complete"] * 5
    after = client.get("/quota").json()
    assert (after["active"]["count"], after["queued"]["count"]) == (0, 0)


def test_a_corrupt_source_fails_with_a_reason_and_a_refund(stack: tuple[LocalCloud, Gateway], tmp_path: Path) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "e2e-corrupt")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    created = client.post(
        "/renders", {"timeline": {"scenes": [{"type": "clip", "src": client.upload(junk), "duration": 2}]}}
    )
    assert created.status_code == 202, created.text

    render, _ = client.wait(created.json()["renderId"])
    assert render["status"] == "failed"
    assert render["error"]["code"] == "SOURCE_INVALID"
    assert "scenes[0]" in render["error"]["message"]
    assert client.get("/quota").json()["credits"]["balance"] == 100
    assert (client.get("/quota").json()["active"]["count"]) == 0
    failed = [e for e in cloud.received_events(wait_seconds=1) if e["detail-type"] == "Render Failed"]
    assert any(e["detail"]["renderId"] == render["renderId"] for e in failed)


def test_cancel_stops_a_running_render_and_refunds(
    stack: tuple[LocalCloud, Gateway], clips: list[tuple[Path, float]]
) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "e2e-cancel")
    src = client.upload(clips[0][0])
    # Long enough (a minute of 1080p60 output) that it is still rendering when cancelled.
    scenes = [{"type": "title", "text": f"scene {i}", "duration": 15} for i in range(4)] + [
        {"type": "clip", "src": src}
    ]
    created = client.post("/renders", {"timeline": {"scenes": scenes}, "output": {"fps": 60}})
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]
    deadline = time.monotonic() + 60
    while client.get(f"/renders/{render_id}").json()["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)

    cancelled = client.post(f"/renders/{render_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/renders/{render_id}/cancel").status_code == 409
    quota = client.get("/quota").json()
    assert quota["credits"]["balance"] == 100
    assert quota["active"]["count"] == 0

    assert cloud.ended_execution(render_id)["status"] == "ABORTED"
    time.sleep(2)  # a late poll or chunk must not move a cancelled render
    final = client.get(f"/renders/{render_id}").json()
    assert (final["status"], final["error"]["code"]) == ("cancelled", "CANCELLED")


def test_an_execution_stopped_from_the_console_still_ends_its_render(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    client = Client(gateway.url, "e2e-ops-stop")
    scenes = [{"type": "title", "text": f"scene {i}", "duration": 15} for i in range(4)]
    created = client.post("/renders", {"timeline": {"scenes": scenes}, "output": {"fps": 60}})
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]
    execution_arn = cloud.execution_arn(render_id)
    # Stop it while it renders. moto's interpreter can itself error (and end the execution FAILED,
    # not ABORTED) when StopExecution lands while it is entering the first task.
    deadline = time.monotonic() + 60
    while client.get(f"/renders/{render_id}").json()["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)

    # What an operator does in the Step Functions console: no cancel through the API.
    cloud.client("stepfunctions").stop_execution(executionArn=execution_arn, cause="stopped by ops")

    render, _ = client.wait(render_id, timeout=60)
    assert (render["status"], render["error"]["code"]) == ("failed", "ABORTED")
    quota = client.get("/quota").json()
    assert (quota["credits"]["balance"], quota["active"]["count"], quota["queued"]["count"]) == (100, 0, 0)


def test_the_local_stack_enforces_the_ffmpeg_functions_dynamodb_policy(stack: tuple[LocalCloud, Gateway]) -> None:
    from botocore.exceptions import ClientError

    from infra.local.cloud import acting_as
    from render_service import clients

    cloud, _ = stack
    chunk_worker = next(name for name in cloud.template.refs.values() if "ChunkWorker" in name)
    table = cloud.table_name
    with acting_as(chunk_worker):
        clients.dynamodb().get_item(TableName=table, Key={"PK": {"S": "RENDER#x"}, "SK": {"S": "RENDER"}})
        with pytest.raises(ClientError) as denied:
            clients.dynamodb().update_item(
                TableName=table,
                Key={"PK": {"S": "CREDITS#alice"}, "SK": {"S": "BALANCE"}},
                UpdateExpression="SET balance = :b",
                ExpressionAttributeValues={":b": {"N": "1000000"}},
            )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


# --- the local gateway under load and odd HTTP -------------------------------------------------


def _raw(gateway: Gateway, request: bytes, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection, exactly as given; returns (status, headers, body)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_a_burst_of_concurrent_connections_is_answered_without_resets(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    clients = 120
    # All connect at once, as a frontend's burst or a load test does: the listen backlog must hold them.
    barrier = threading.Barrier(clients)

    def one(_: int) -> int | str:
        barrier.wait()
        try:
            return _raw(gateway, b"GET /health HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")[0]
        except OSError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(clients)))
    assert answers == [200] * clients


def test_chunked_request_bodies_are_read(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    body = json.dumps({"timeline": {"scenes": [{"type": "title", "text": "chunked", "duration": 2}]}}).encode()
    pieces = [body[:10], body[10:25], body[25:]]
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nX-Trailer: t\r\n\r\n"
    status, _, answer = _raw(
        gateway,
        b"POST /renders/estimate HTTP/1.1\r\nHost: local\r\nAuthorization: Bearer local:chunky\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked,
    )
    assert status == 200, answer
    assert json.loads(answer)["durationSeconds"] == 2
    # A client library's chunked upload (a generator body) works the same way.
    streamed = requests.post(
        f"{gateway.url}/renders/estimate",
        data=iter(pieces),
        headers={"Authorization": "Bearer local:chunky", "Content-Type": "application/json"},
        timeout=30,
    )
    assert streamed.status_code == 200, streamed.text
    status, _, answer = _raw(
        gateway, b"POST /renders HTTP/1.1\r\nHost: local\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    )
    assert (status, json.loads(answer)["error"]["code"]) == (400, "BAD_REQUEST")


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "TRACE", "CONNECT"])
def test_unknown_methods_get_a_405_in_the_error_shape(stack: tuple[LocalCloud, Gateway], method: str) -> None:
    _, gateway = stack
    status, headers, body = _raw(gateway, f"{method} /renders HTTP/1.1\r\nHost: local\r\n\r\n".encode())
    assert status == 405
    assert json.loads(body)["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in headers["allow"]


def test_a_known_path_with_another_method_is_a_405_naming_the_allowed_ones(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    answer = requests.put(f"{gateway.url}/renders", headers={"Authorization": "Bearer local:m"}, timeout=10)
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert answer.headers["Allow"] == "GET, POST"
    assert (
        requests.get(f"{gateway.url}/nowhere", headers={"Authorization": "Bearer local:m"}, timeout=10).status_code
        == 404
    )
