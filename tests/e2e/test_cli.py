"""The `render` CLI against the local stack over HTTP: uploads, a render followed to the end, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway

pytestmark = pytest.mark.e2e
Stack = tuple[LocalCloud, Gateway]


# The installed entry point, in its own process: the local stack's handlers share this one (and
# their log lines its stdout), and a separate process is how a person runs it.
SCRIPT = Path(sys.executable).with_name("render")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    assert SCRIPT.exists(), "`render` is not installed: [project.scripts] in pyproject.toml"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    done = subprocess.run(
        [str(SCRIPT), *args],
        check=False,
        input=stdin,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def render(gateway: Gateway, user: str, *args: str, stdin: str | None = None) -> Result:
    return cli("--api", gateway.url, "--user", user, *args, stdin=stdin)


def error_line(result: Result) -> str:
    """A failure is one line on stderr, and nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("render: error: ")
    return str(lines[0].removeprefix("render: error: "))


def duration_of(path: Path) -> float:
    with av.open(str(path)) as container:
        assert container.duration is not None
        return float(container.duration / av.time_base)


def test_upload_submit_wait_download_then_the_history(running_stack: Stack, make_clip: Any, tmp_path: Path) -> None:
    _, gateway = running_stack
    user = "cli-render"
    clips = [make_clip("cli-a.mp4", 1.0), make_clip("cli-b.mp4", 1.5, pattern="smptebars")]
    uploaded = render(gateway, user, "upload", *map(str, clips))
    assert uploaded.exit_code == 0, uploaded.stderr
    srcs = uploaded.stdout.split()
    assert len(srcs) == 2
    assert all(src.startswith("s3://") and f"/inputs/{user}/" in src for src in srcs)

    timeline = tmp_path / "timeline.json"
    timeline.write_text(
        json.dumps(
            {
                "scenes": [
                    {"type": "title", "text": "From the CLI", "duration": 1, "animation": "fade-in"},
                    {"type": "clip", "src": srcs[0]},
                    {"type": "clip", "src": srcs[1], "trimStart": 0.5, "transition": {"type": "fade", "duration": 0.4}},
                ]
            }
        )
    )
    estimated = render(gateway, user, "estimate", str(timeline), "--resolution", "720p", "--json")
    assert estimated.exit_code == 0, estimated.stderr
    assert json.loads(estimated.stdout)["credits"] >= 1

    before = json.loads(render(gateway, user, "quota", "--json").stdout)["credits"]["balance"]
    # Longer than a terminal line, with what rich would read as markup: stdout must still carry it whole.
    out = tmp_path / ("a-long-name-" * 8 + "[final].mp4")
    submitted = render(
        gateway, user, "submit", str(timeline), "--resolution", "720p", "--subject", "movie:cli-1",
        "--out", str(out), "--interval", "0.3",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.stderr
    render_id, saved = submitted.stdout.split()
    assert Path(saved) == out
    assert "complete 100%" in submitted.stderr  # the progress lines end at the end
    # 1 s title + 1 s clip + the second clip from 0.5 s (1 s), overlapping the first by 0.4 s.
    assert duration_of(out) == pytest.approx(2.6, abs=0.1)

    status = json.loads(render(gateway, user, "status", render_id, "--json").stdout)
    assert (status["status"], status["progress"], status["subject"]) == (
        "complete", 100, {"type": "movie", "id": "cli-1"},
    )  # fmt: skip
    human = render(gateway, user, "status", render_id)
    assert "complete" in human.stdout
    assert "100%" in human.stdout

    listed = render(gateway, user, "list", "--subject", "movie:cli-1")
    assert render_id in listed.stdout
    assert "complete" in listed.stdout
    assert render(gateway, user, "list", "--status", "failed").stderr.strip() == "no renders"

    after = render(gateway, user, "quota")
    assert f"credits: {before - status['cost']}" in after.stdout
    assert "renders: 4 of 5 left per hour" in after.stdout

    link = render(gateway, user, "url", render_id, "--expires", "120")
    assert link.exit_code == 0, link.stderr
    assert requests.get(link.stdout.strip(), timeout=30).content == out.read_bytes()

    assert render(gateway, user, "delete", render_id).stdout.strip() == f"{render_id} output deleted"
    assert error_line(render(gateway, user, "url", render_id)).startswith("410 OUTPUT_GONE: ")


def test_submit_without_wait_prints_the_id_and_cancel_refunds(running_stack: Stack) -> None:
    _, gateway = running_stack
    user = "cli-cancel"
    body = {
        "timeline": {"scenes": [{"type": "title", "text": "Long", "duration": 60}]},
        "output": {"resolution": "720p"},
    }
    submitted = render(gateway, user, "submit", "-", stdin=json.dumps(body))
    assert submitted.exit_code == 0, submitted.stderr
    render_id = submitted.stdout.strip()
    assert "credits reserved" in submitted.stderr

    cancelled = render(gateway, user, "cancel", render_id)
    assert cancelled.stdout.strip() == f"{render_id} cancelled"
    assert error_line(render(gateway, user, "cancel", render_id)).startswith("409 RENDER_ALREADY_FINISHED: ")
    waited = render(gateway, user, "wait", render_id)
    assert waited.exit_code == 1
    # The progress line it saw, then why it ends without a video.
    assert waited.stderr.strip().splitlines()[-1] == (
        f"render: error: render {render_id} cancelled: CANCELLED: cancelled by the user"
    )
    balance = json.loads(render(gateway, user, "quota", "--json").stdout)["credits"]["balance"]
    assert balance == 100  # the whole reservation came back


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_failure_is_one_clear_line(running_stack: Stack, tmp_path: Path) -> None:
    _, gateway = running_stack
    user = "cli-errors"
    missing = error_line(render(gateway, user, "status", "0123456789abcdef"))
    assert missing.startswith("404 NOT_FOUND: ")

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"timeline": {"scenes": [{"type": "title", "text": "x"}]}, "output": {"fps": 99}}))
    assert error_line(render(gateway, user, "submit", str(bad))).startswith(
        "422 VALIDATION_ERROR: output.fps: Input should be less than or equal to 60"
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert error_line(render(gateway, user, "estimate", str(broken))).startswith(f"{broken}: not valid JSON")
    assert error_line(render(gateway, user, "estimate", str(tmp_path / "absent.json"))).endswith(
        "No such file or directory"
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    assert "unsupported file type .txt" in error_line(render(gateway, user, "upload", str(notes)))
    assert error_line(render(gateway, user, "list", "--subject", "film")).startswith(
        "--subject 'film': must be TYPE:ID"
    )

    forged = cli("--api", gateway.url, "--token", "not-a-token", "quota")
    assert error_line(forged).startswith("401 UNAUTHORIZED: ")
    nowhere = cli("--api", f"http://127.0.0.1:{_free_port()}", "quota")
    assert "cannot reach the API at http://127.0.0.1:" in error_line(nowhere)


def test_the_installed_entry_point_reads_its_environment(running_stack: Stack) -> None:
    _, gateway = running_stack
    done = cli("quota", "--json", env={"RENDER_API_URL": gateway.url, "RENDER_TOKEN": "local:cli-env"})
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["credits"]["balance"] == 100
    assert error_line(cli("quota", env={"RENDER_API_URL": gateway.url, "RENDER_TOKEN": "nope"})).startswith("401 ")
