"""The API document is the contract: schemathesis runs every check against the local stack over HTTP.

It fails on any 5xx and on any response the document does not describe (status, body, headers,
content type), on valid data refused or invalid data accepted, on routes that ignore missing auth
or answer a method they do not have with anything but a 405.

The run is bounded: a few examples per operation, and a rate policy of one render a week, which
the seeded render uses up, so no generated timeline is ever rendered (every later POST /renders is
a documented 429 after all of its validation). The seeded render gives the id routes a real,
complete render to read, sign, cancel (409) and delete (then 410).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
USER = "contract"
LIMITS = {
    "RATE_LIMITS": json.dumps([{"limit": 1, "seconds": 7 * 86400}]),
    "MAX_ACTIVE_RENDERS": "1",
    "MAX_QUEUED_RENDERS": "1",
}
MAX_EXAMPLES = 10
# Reproducible in `make test`; CONTRACT_SEED=<n> explores other inputs.
SEED = int(os.environ.get("CONTRACT_SEED", "20261202"))


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in LIMITS.items():
            env.setenv(name, value)
        # The contract user is an operator too, so the /admin routes are exercised past their 403.
        with local_stack(admin_users=USER) as running:
            yield running


def _seed_render(base: str) -> str:
    """One real render (a second of title at 720p) that ends complete."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer local:{USER}"
    created = session.post(
        f"{base}/renders",
        json={
            "timeline": {"scenes": [{"type": "title", "text": "contract", "duration": 1}]},
            "output": {"resolution": "720p", "fps": 24, "quality": "low"},
        },
        timeout=30,
    )
    assert created.status_code == 202, created.text
    render_id = str(created.json()["renderId"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        render = session.get(f"{base}/renders/{render_id}", timeout=30).json()
        if render["status"] in ("complete", "failed", "cancelled"):
            assert render["status"] == "complete", render
            return render_id
        time.sleep(0.3)
    raise AssertionError(f"the seeded render {render_id} did not end")


def _config(render_id: str) -> str:
    return f"""
hooks = {json.dumps(str(HERE / "contract_checks.py"))}
seed = {SEED}
workers = 1
request-timeout = 30

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

[auth.openapi.bearerAuth]
bearer = "local:{USER}"

[parameters]
"path.renderId" = {json.dumps(render_id)}

[checks.positive_data_acceptance]
# 402 and 429 are the account's limits, 410 a deleted output; 422 is policy (see contract_checks.py).
expected-statuses = ["2xx", "401", "402", "404", "409", "410", "422", "429"]

# The coverage phase walks every constraint of a body: about 800 cases for RenderRequest, most of
# the run. /renders/estimate takes the same body through the same validation and policy as POST
# /renders, which gets that walk; estimate still gets fuzzed (and its responses checked).
[[operations]]
include-operation-id = "estimateRender"
phases.coverage.enabled = false
"""


def test_the_api_does_what_its_document_says(stack: tuple[LocalCloud, Gateway], tmp_path: Path) -> None:
    _, gateway = stack
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(_seed_render(gateway.url)))
    st = Path(sys.executable).parent / "st"
    run = subprocess.run(
        [str(st), "--config-file", str(config), "--no-color", "run", f"{gateway.url}/openapi.json", "--checks", "all"],
        cwd=tmp_path,  # schemathesis' own files stay out of the repository
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    documented = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()["paths"]
    operations = sum(len(item) for item in documented.values())
    assert f"Tested: {operations}" in run.stdout, run.stdout[-5000:]  # every operation, none skipped
