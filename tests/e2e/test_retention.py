"""Retention on the local stack, on a shortened clock (a retention day of 2 s): the reminder goes
out before the output expires, then the local lifecycle (moto runs none) deletes it and the API
answers 410, with the record kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from infra.admin import main as admin
from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack

pytestmark = pytest.mark.e2e
DAY_SECONDS = 2  # 7 days last 14 s; the 48 h reminder comes 4 s before; the hourly run every second
BODY = {
    "timeline": {"scenes": [{"type": "title", "text": "kept for a while", "duration": 1}]},
    "output": {"resolution": "720p"},
}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RETENTION_DAY_SECONDS", str(DAY_SECONDS))
        with local_stack() as running:
            yield running


def session(user: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer local:{user}"
    return s


def render(gateway: Gateway, user: str) -> dict[str, Any]:
    client = session(user)
    created = client.post(f"{gateway.url}/renders", json=BODY, timeout=30)
    assert created.status_code == 202, created.text
    render_id = created.json()["renderId"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found: dict[str, Any] = client.get(f"{gateway.url}/renders/{render_id}", timeout=30).json()
        if found["status"] in {"complete", "failed", "cancelled"}:
            assert found["status"] == "complete", found
            return found
        time.sleep(0.3)
    raise AssertionError(f"render {render_id} did not end")


def objects(cloud: LocalCloud, user: str, render_id: str) -> list[str]:
    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.bucket_name, Prefix=f"renders/{user}/{render_id}")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_reminded_before_expiry_then_gone_with_the_record_kept(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    done = render(gateway, "keeper")
    render_id = done["renderId"]
    until = datetime.fromisoformat(done["output"]["retainedUntil"])
    completed = datetime.fromisoformat(done["completedAt"])
    # 7 days from the MP4's upload (a moment before completion), rounded up to the next "midnight".
    assert timedelta(seconds=7 * DAY_SECONDS - 2) < until - completed <= timedelta(seconds=8 * DAY_SECONDS)
    assert len(objects(cloud, "keeper", render_id)) == 3  # MP4, poster, thumbnail

    reminder = None
    while reminder is None and datetime.now(UTC) < until + timedelta(seconds=5):
        for event in cloud.received_events(wait_seconds=1):
            if event["detail-type"] == "Render Expiring" and event["detail"]["renderId"] == render_id:
                reminder = event
    assert reminder is not None, "no Render Expiring event"
    assert datetime.fromisoformat(reminder["time"].replace("Z", "+00:00")) < until
    assert datetime.fromisoformat(reminder["detail"]["output"]["retainedUntil"]) == until
    assert requests.get(reminder["detail"]["output"]["url"], timeout=30).status_code == 200

    while datetime.now(UTC) < until + timedelta(seconds=3) and objects(cloud, "keeper", render_id):
        time.sleep(0.5)
    assert objects(cloud, "keeper", render_id) == []  # the template's lifecycle rule, run locally
    client = session("keeper")
    after = client.get(f"{gateway.url}/renders/{render_id}", timeout=30).json()
    assert (after["status"], after["output"]["expired"], after["output"]["url"]) == ("complete", True, None)
    gone = client.post(f"{gateway.url}/renders/{render_id}/download-url", json={}, timeout=30)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "OUTPUT_GONE")
    late = [e for e in cloud.received_events() if e["detail-type"] == "Render Expiring"]
    assert late == []  # reminded once


def test_a_user_with_a_longer_retention_keeps_outputs_longer(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    argv = ["set-retention", "--table", cloud.table_name, "--user", "premium", "--days", "30", "--reason", "plan"]
    assert admin(argv) == 0
    done = render(gateway, "premium")
    until = datetime.fromisoformat(done["output"]["retainedUntil"])
    assert until - datetime.fromisoformat(done["completedAt"]) > timedelta(seconds=29 * DAY_SECONDS)
    tagging = cloud.client("s3").get_object_tagging(
        Bucket=cloud.bucket_name, Key=f"renders/premium/{done['renderId']}.mp4"
    )
    assert tagging["TagSet"] == [{"Key": "retention-days", "Value": "30"}]
