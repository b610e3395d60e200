"""Two rate windows on the local stack over HTTP: each enforced exactly under a burst from many threads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack
from render_service.data import items as it

pytestmark = pytest.mark.e2e
HOUR, DAY = 3600, 86400
WINDOWS = [{"limit": 3, "seconds": HOUR}, {"limit": 5, "seconds": DAY}]
BODY = {
    "timeline": {"scenes": [{"type": "title", "text": "burst", "duration": 1}]},
    "output": {"resolution": "720p"},
}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    # The person starting the stack sets the policy as `RATE_LIMITS=... make serve` would.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RATE_LIMITS", json.dumps(WINDOWS))
        with local_stack() as running:
            yield running


def burst(gateway: Gateway, user: str, count: int = 30) -> list[requests.Response]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer local:{user}"
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: session.post(f"{gateway.url}/renders", json=BODY, timeout=60), range(count)))


def quota(gateway: Gateway, user: str) -> dict[str, Any]:
    response = requests.get(f"{gateway.url}/quota", headers={"Authorization": f"Bearer local:{user}"}, timeout=30)
    return response.json()["renders"]  # type: ignore[no-any-return]


def cancel_all(gateway: Gateway, user: str, responses: list[requests.Response]) -> None:
    """Admitted renders are not the point here; cancelling frees the machine for the other tests."""
    for response in responses:
        if response.status_code == 202:
            requests.post(
                f"{gateway.url}/renders/{response.json()['renderId']}/cancel",
                headers={"Authorization": f"Bearer local:{user}"},
                timeout=30,
            )


def refused_windows(responses: list[requests.Response]) -> set[tuple[int, int]]:
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.json()["error"]["code"] == "RATE_LIMITED" and int(r.headers["Retry-After"]) > 0 for r in refused)
    return {(r.json()["error"]["details"]["limit"], r.json()["error"]["details"]["seconds"]) for r in refused}


def test_the_hour_window_admits_exactly_its_limit_and_refusals_count_nowhere(
    stack: tuple[LocalCloud, Gateway],
) -> None:
    _, gateway = stack
    responses = burst(gateway, "e2e-hourly")
    statuses = [r.status_code for r in responses]
    cancel_all(gateway, "e2e-hourly", responses)

    assert (statuses.count(202), statuses.count(429)) == (3, 27), statuses
    assert refused_windows(responses) == {(3, HOUR)}
    assert [(w["seconds"], w["used"]) for w in quota(gateway, "e2e-hourly")["windows"]] == [(HOUR, 3), (DAY, 3)]


def test_the_day_window_admits_exactly_what_is_left_of_the_day(stack: tuple[LocalCloud, Gateway]) -> None:
    cloud, gateway = stack
    # Four renders in earlier hours of today, as the day window item holds them.
    now = int(time.time())
    day_start = now - now % DAY
    cloud.client("dynamodb").put_item(
        TableName=cloud.table_name,
        Item=it.serialize(
            {"PK": it.quota_pk("e2e-daily"), "SK": it.window_sk(day_start, DAY), "count": 4, "expiresAt": now + DAY}
        ),
    )
    responses = burst(gateway, "e2e-daily")
    statuses = [r.status_code for r in responses]
    cancel_all(gateway, "e2e-daily", responses)

    assert (statuses.count(202), statuses.count(429)) == (1, 29), statuses
    assert refused_windows(responses) == {(5, DAY)}
    renders = quota(gateway, "e2e-daily")
    assert [(w["seconds"], w["used"], w["remaining"]) for w in renders["windows"]] == [(HOUR, 1, 2), (DAY, 5, 0)]
    assert (renders["limit"], renders["remaining"]) == (5, 0)
