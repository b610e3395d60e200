"""The operator's routes (/admin/...) on API Gateway events, against moto: only the admins group
gets in, they see every user's renders, and their cancel is the user's own (one refund, one event)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from render_service.models.jobs import Phase

BUCKET = "renders-test-bucket"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:RenderWorkflow"
Call = Callable[..., tuple[int, dict[str, Any]]]
ADMIN = {"user": "olga", "groups": "admins"}


@pytest.fixture
def call(aws: Any, load_event: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Call:
    """One request through the API handler as `user`, a member of `groups` (the claim as API
    Gateway's Cognito authorizer passes it: one comma-separated string); returns (status, JSON)."""
    import boto3

    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="RenderWorkflow",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    assert arn == MACHINE_ARN
    monkeypatch.setenv("RATE_LIMIT_RENDERS", "50")
    from render_service.handlers.api import handler

    base = load_event("api_post_render")

    def send(
        method: str,
        path: str,
        payload: Any = None,
        user: str | None = "alice",
        groups: str | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        event = copy.deepcopy(base)
        event.update(httpMethod=method, path=path, resource=path, queryStringParameters=query)
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
        event["body"] = json.dumps(payload) if payload is not None else None
        claims = {"sub": user, **({"cognito:groups": groups} if groups is not None else {})}
        event["requestContext"]["authorizer"] = {"claims": claims} if user else None
        response = handler(event, _Context())
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else {}

    return send


class _Context:
    function_name = "Api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:Api"
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 29000


def render_body(user: str, subject: str = "m1") -> dict[str, Any]:
    return {
        "subject": {"type": "movie", "id": subject},
        "timeline": {"scenes": [{"type": "clip", "src": f"s3://{BUCKET}/inputs/{user}/u1/intro.mp4", "duration": 30}]},
        "output": {"resolution": "720p"},
    }


def submit(call: Call, user: str, subject: str = "m1") -> str:
    status, created = call("POST", "/renders", render_body(user, subject), user=user)
    assert status == 202, created
    return str(created["renderId"])


def admin_routes(render_id: str) -> list[tuple[str, str, dict[str, str] | None]]:
    return [
        ("GET", "/admin/renders", {"active": "true"}),
        ("GET", f"/admin/renders/{render_id}", None),
        ("POST", f"/admin/renders/{render_id}/cancel", None),
        ("GET", "/admin/users/alice/renders", None),
    ]


@pytest.mark.parametrize("groups", [None, "", "editors", "admins-readonly,editors", "[editors]"])
def test_a_non_admin_gets_403_on_every_admin_route(call: Call, groups: str | None) -> None:
    render_id = submit(call, "alice")
    for method, path, query in admin_routes(render_id):
        status, payload = call(method, path, user="mallory", groups=groups, query=query)
        assert (status, payload["error"]["code"]) == (403, "FORBIDDEN"), path
        # Before any validation: a bad parameter from a non-admin is still a 403, not a 422.
        status, _ = call(method, path, user="mallory", groups=groups, query={**(query or {}), "limit": "0"})
        assert status == 403, path
    # The refused cancel did nothing.
    assert call("GET", f"/renders/{render_id}")[1]["status"] == "queued"


def test_without_a_token_the_admin_routes_are_401(call: Call) -> None:
    for method, path, query in admin_routes("r1"):
        assert call(method, path, user=None, query=query)[0] == 401, path


def test_an_admin_lists_active_renders_across_users_newest_first(call: Call) -> None:
    from render_service.service import service

    alices = submit(call, "alice", "m1")
    bobs = submit(call, "bob", "m2")
    ended = submit(call, "bob", "m3")
    assert call("POST", f"/renders/{ended}/cancel", user="bob")[0] == 200
    renders = service().renders
    job = renders.require(alices)
    service().accounting.acquire_slot(job)
    renders.start_rendering(alices)
    renders.record_progress(alices, 40, Phase.rendering)

    for groups in ("admins", "editors,admins", "[editors admins]"):
        status, page = call("GET", "/admin/renders", user="olga", groups=groups, query={"active": "true"})
        assert status == 200, page
        assert [(r["renderId"], r["userId"]) for r in page["renders"]] == [(bobs, "bob"), (alices, "alice")]
    first, second = page["renders"]
    assert (first["status"], first["subject"], first["engine"]) == ("queued", {"type": "movie", "id": "m2"}, "ffmpeg")
    assert (second["status"], second["phase"], second["progress"]) == ("rendering", "rendering", 40)
    assert second["ageSeconds"] >= 0
    assert page["nextCursor"] is None

    status, one = call("GET", "/admin/renders", **ADMIN, query={"active": "true", "limit": "1"})
    assert [r["renderId"] for r in one["renders"]] == [bobs]
    status, rest = call("GET", "/admin/renders", **ADMIN, query={"limit": "1", "cursor": one["nextCursor"]})
    assert [r["renderId"] for r in rest["renders"]] == [alices]

    status, payload = call("GET", "/admin/renders", **ADMIN, query={"active": "false"})
    assert (status, payload["error"]["message"].split(":")[0]) == (422, "active")
    status, payload = call("GET", "/admin/renders", **ADMIN, query={"cursor": "bm90LWEtY3Vyc29y"})
    assert (status, payload["error"]["message"].split(":")[0]) == (422, "cursor")


def test_an_admin_sees_any_render_with_its_execution(call: Call) -> None:
    render_id = submit(call, "alice")
    status, view = call("GET", f"/admin/renders/{render_id}", **ADMIN)
    assert status == 200, view
    assert (view["userId"], view["status"], view["queuePosition"]) == ("alice", "queued", 1)
    execution = f"arn:aws:states:us-east-1:123456789012:execution:RenderWorkflow:{render_id}"
    assert view["executionArn"] == execution
    assert view["consoleUrl"] == (
        f"https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/{execution}"
    )
    status, payload = call("GET", "/admin/renders/00000000-0000-4000-8000-000000000000", **ADMIN)
    assert (status, payload["error"]["code"]) == (404, "NOT_FOUND")


def test_an_admin_cancel_settles_credits_exactly_once(call: Call, aws: Any) -> None:
    render_id = submit(call, "alice")
    assert call("GET", "/quota")[1]["credits"]["balance"] == 99

    status, view = call("POST", f"/admin/renders/{render_id}/cancel", **ADMIN)
    assert status == 200, view
    assert (view["status"], view["userId"], view["error"]["code"]) == ("cancelled", "alice", "CANCELLED")
    # Again, by the admin or by the user: refused, nothing refunded twice.
    assert call("POST", f"/admin/renders/{render_id}/cancel", **ADMIN)[1]["error"]["code"] == "RENDER_ALREADY_FINISHED"
    assert call("POST", f"/renders/{render_id}/cancel")[0] == 409

    quota = call("GET", "/quota")[1]
    assert quota["credits"]["balance"] == 100  # back to full, once
    assert (quota["queued"]["count"], quota["active"]["count"]) == (0, 0)
    events = aws.received_events()
    assert [(e["detail-type"], e["detail"]["renderId"]) for e in events] == [("Render Cancelled", render_id)]
    assert call("GET", f"/renders/{render_id}")[1]["status"] == "cancelled"  # what the user sees
    assert call("GET", "/admin/renders", **ADMIN)[1]["renders"] == []


def test_an_admin_lists_one_users_renders(call: Call) -> None:
    first = submit(call, "alice", "m1")
    second = submit(call, "alice", "m2")
    submit(call, "bob")
    call("POST", f"/renders/{first}/cancel")
    status, page = call("GET", "/admin/users/alice/renders", **ADMIN)
    assert status == 200, page
    assert [(r["renderId"], r["status"]) for r in page["renders"]] == [(second, "queued"), (first, "cancelled")]
    status, page = call("GET", "/admin/users/alice/renders", **ADMIN, query={"status": "cancelled"})
    assert [r["renderId"] for r in page["renders"]] == [first]
    assert call("GET", "/admin/users/nobody/renders", **ADMIN)[1]["renders"] == []
    assert call("GET", "/admin/users/bad%20name/renders", **ADMIN)[0] == 422


def test_the_admin_routes_are_documented_under_the_admin_tag(call: Call) -> None:
    spec = call("GET", "/openapi.json", user=None)[1]
    admin_ops = {
        (path, method): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path.startswith("/admin/")
    }
    assert len(admin_ops) == 4
    for key, op in admin_ops.items():
        assert op["tags"] == ["admin"], key
        assert op["operationId"].startswith("admin"), key
        assert {"200", "401", "403"} <= set(op["responses"]), key


def test_every_admin_action_is_logged_with_the_admin(call: Call, caplog: pytest.LogCaptureFixture) -> None:
    render_id = submit(call, "alice")
    caplog.clear()
    with caplog.at_level("INFO"):
        for method, path, query in admin_routes(render_id):
            assert call(method, path, **ADMIN, query=query)[0] == 200, path
        call("GET", "/admin/renders", user="mallory", groups="editors")
    # Structured keys (Powertools puts `extra` on the record and in the JSON line).
    records = [vars(r) for r in caplog.records]
    actions = [(r["admin"], r["admin_action"]) for r in records if r["msg"] == "admin action"]
    assert actions == [("olga", "list_active"), ("olga", "show"), ("olga", "cancel"), ("olga", "list_user")]
    cancel = next(r for r in records if r.get("admin_action") == "cancel")
    assert (cancel["render_id"], cancel["render_user"]) == (render_id, "alice")
    refused = [r for r in records if r["msg"] == "admin route refused"]
    assert [(r["user_id"], r["path"]) for r in refused] == [("mallory", "/admin/renders")]
