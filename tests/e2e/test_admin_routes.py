"""The /admin routes over real HTTP on the local stack: the gateway puts its admin users in the
Cognito `admins` group, and everyone else is refused with a 403 in the API's error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from infra.local.cloud import LocalCloud
from infra.local.gateway import Gateway
from infra.local.stack import local_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, Gateway]]:
    with local_stack(admin_users="admin, ops-2") as running:
        yield running


def as_user(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer local:{user}"}


def test_only_the_configured_admins_reach_the_admin_routes(stack: tuple[LocalCloud, Gateway]) -> None:
    _, gateway = stack
    url = gateway.url
    submitted = requests.post(
        f"{url}/renders",
        json={"timeline": {"scenes": [{"type": "title", "text": "Hello", "duration": 1}]}},
        headers=as_user("alice"),
        timeout=30,
    )
    assert submitted.status_code == 202, submitted.text
    render_id = submitted.json()["renderId"]
    routes = [
        ("GET", "/admin/renders?active=true"),
        ("GET", f"/admin/renders/{render_id}"),
        ("GET", "/admin/users/alice/renders"),
        ("POST", f"/admin/renders/{render_id}/cancel"),
    ]
    for user in ("alice", "admins", "bob"):
        for method, path in routes:
            refused = requests.request(method, f"{url}{path}", headers=as_user(user), timeout=30)
            assert refused.status_code == 403, (user, path, refused.text)
            assert refused.json()["error"]["code"] == "FORBIDDEN"
    for method, path in routes:
        assert requests.request(method, f"{url}{path}", timeout=30).status_code == 401, path

    for admin in ("admin", "ops-2"):
        seen = requests.get(f"{url}/admin/renders/{render_id}", headers=as_user(admin), timeout=30)
        assert seen.status_code == 200, seen.text
        assert seen.json()["userId"] == "alice"
        assert "executions/details/arn:aws:states:" in seen.json()["consoleUrl"]
    history = requests.get(f"{url}/admin/users/alice/renders", headers=as_user("admin"), timeout=30)
    assert [r["renderId"] for r in history.json()["renders"]] == [render_id]
