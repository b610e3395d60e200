"""`make serve`'s entry point: a foreground process that prints its URL and answers over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_prints_its_url_and_honours_policy_variables() -> None:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "RATE_LIMIT_RENDERS": "7", "MAX_ACTIVE_RENDERS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.strip() == f"Render service running at http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/health", timeout=10).status_code == 200
        quota = requests.get(f"{url}/quota", headers={"Authorization": "Bearer local:s"}, timeout=10).json()
        assert (quota["renders"]["limit"], quota["active"]["limit"]) == (7, 2)
    finally:
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
