"""The API handler on API Gateway events, against moto: the contract the frontend relies on."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from render_service import storage
from render_service.data.accounting import Accounting
from render_service.models.jobs import OutputObject, RenderStatus

BUCKET = "renders-test-bucket"
CLIP = f"s3://{BUCKET}/inputs/alice/u1/intro.mp4"
Call = Callable[..., tuple[int, dict[str, Any], dict[str, str]]]


@pytest.fixture
def call(aws: Any, load_event: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Call:
    """Sends one request through the API handler; returns (status, JSON body, headers)."""
    import boto3

    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="RenderWorkflow",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("RATE_LIMIT_RENDERS", "50")
    from render_service.handlers.api import handler

    base = load_event("api_post_render")

    def send(
        method: str,
        path: str,
        body: Any = None,
        user: str | None = "alice",
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        raw_body: str | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        event = copy.deepcopy(base)
        event.update(httpMethod=method, path=path, resource=path, queryStringParameters=query)
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
        event["body"] = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        event["headers"] = {**event["headers"], **(headers or {})}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}  # as API Gateway sends both
        event["requestContext"]["authorizer"] = {"claims": {"sub": user}} if user else None
        response = handler(event, _Context())
        payload = json.loads(response["body"]) if response.get("body") else {}
        merged = {
            **(response.get("headers") or {}),
            **{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
        }
        return response["statusCode"], payload, merged

    return send


class _Context:
    function_name = "Api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:Api"
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 29000


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "engine": "ffmpeg",
        "subject": {"type": "movie", "id": "m1"},
        "timeline": {"scenes": [{"type": "clip", "src": CLIP, "duration": 30}]},
        "output": {"resolution": "720p"},
    }
    return base | overrides


def test_post_render_accepts_and_charges(call: Call) -> None:
    status, created, headers = call("POST", "/renders", body())
    assert status == 202
    assert created["status"] == "queued"
    assert created["cost"] == 1
    assert headers["Location"] == f"/prod/renders/{created['renderId']}"  # the stage, as the client called it

    status, render, _ = call("GET", f"/renders/{created['renderId']}")
    assert status == 200
    assert render["status"] == "queued"
    assert render["progress"] == 0
    assert render["subject"] == {"type": "movie", "id": "m1"}
    assert render["queuePosition"] == 1
    status, quota, _ = call("GET", "/quota")
    assert quota["credits"]["balance"] == 99
    assert quota["renders"]["remaining"] == 49
    assert quota["queued"]["count"] == 1


def test_requests_without_a_user_get_401(call: Call) -> None:
    status, payload, headers = call("POST", "/renders", body(), user=None)
    assert (status, payload["error"]["code"]) == (401, "UNAUTHORIZED")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert call("GET", "/renders/abc", user=None)[0] == 401
    assert call("GET", "/quota", user=None)[0] == 401
    assert call("GET", "/health", user=None)[0] == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"output": {"fps": 10}}, "output.fps"),
        ({"output": {"resolution": "8k"}}, "output.resolution"),
        ({"timeline": {"scenes": []}}, "timeline.scenes"),
        ({"timeline": {"scenes": [{"type": "clip", "src": "file:///etc/passwd"}]}}, "timeline.scenes.0.clip.src"),
        ({"timeline": {"scenes": [{"type": "clip", "src": CLIP, "volume": 3}]}}, "timeline.scenes.0.clip.volume"),
        ({"timeline": {"scenes": [{"type": "title", "text": ""}]}}, "timeline.scenes.0.title.text"),
        ({"engine": "blender"}, "engine"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_input_is_a_422_naming_the_field(call: Call, change: dict[str, Any], field: str) -> None:
    status, payload, _ = call("POST", "/renders", body(**change))
    assert status == 422
    assert payload["error"]["code"] == "VALIDATION_ERROR"
    assert payload["error"]["message"].startswith(field)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": {"resolution": "4k"}}, "output.resolution"),
        ({"timeline": {"scenes": [{"type": "clip", "src": "s3://elsewhere/x.mp4"}]}}, "timeline.scenes[0].src: bucket"),
        (
            {"timeline": {"scenes": [{"type": "clip", "src": f"s3://{BUCKET}/renders/bob/x.mp4"}]}},
            "timeline.scenes[0].src",
        ),
        ({"subject": {"type": "clip", "id": "c1"}}, "timeline: the output would last 30"),
    ],
)
def test_policy_refusals_name_the_field(call: Call, change: dict[str, Any], message: str) -> None:
    status, payload, _ = call("POST", "/renders", body(**change))
    assert status == 422
    assert payload["error"]["message"].startswith(message)


def test_malformed_and_oversize_bodies(call: Call) -> None:
    assert call("POST", "/renders", raw_body="{not json")[0] in (400, 422)
    status, payload, _ = call("POST", "/renders", raw_body=json.dumps(body(padding="x" * 300_000)))
    assert status == 413
    assert payload["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_another_users_render_is_404_on_every_route(call: Call) -> None:
    render_id = call("POST", "/renders", body())[1]["renderId"]
    for method, path, payload in [
        ("GET", f"/renders/{render_id}", None),
        ("DELETE", f"/renders/{render_id}", None),
        ("POST", f"/renders/{render_id}/cancel", None),
        ("POST", f"/renders/{render_id}/download-url", {"expiresInSeconds": 60}),
    ]:
        status, error, _ = call(method, path, payload, user="mallory")
        assert (status, error["error"]["code"]) == (404, "NOT_FOUND"), path
    assert call("GET", "/renders", user="mallory")[1]["renders"] == []
    assert call("POST", "/renders/cancel", {"subject": {"type": "movie", "id": "m1"}}, user="mallory")[1] == {
        "cancelled": []
    }
    assert call("GET", f"/renders/{render_id}")[1]["status"] == "queued"
    assert call("GET", "/renders/00000000-0000-4000-8000-000000000000")[0] == 404


def test_idempotent_retry_returns_the_same_render_and_charges_once(call: Call) -> None:
    key = {"Idempotency-Key": "order-42"}
    first = call("POST", "/renders", body(), headers=key)
    again = call("POST", "/renders", body(), headers=key)
    assert first[0] == again[0] == 202
    assert first[1]["renderId"] == again[1]["renderId"]
    assert call("GET", "/quota")[1]["credits"]["balance"] == 99
    assert len(call("GET", "/renders")[1]["renders"]) == 1

    status, payload, _ = call("POST", "/renders", body(output={"resolution": "1080p"}), headers=key)
    assert status == 422
    assert payload["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    # Another user's identical key is their own request.
    bobs = body(timeline={"scenes": [{"type": "clip", "src": f"s3://{BUCKET}/inputs/bob/u1/a.mp4", "duration": 30}]})
    other = call("POST", "/renders", bobs, headers=key, user="bob")
    assert other[0] == 202, other
    assert other[1]["renderId"] != first[1]["renderId"]


def test_failed_start_rolls_the_admission_back(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    from render_service.service import reset

    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:missing")
    reset()
    status, payload, headers = call("POST", "/renders", body())
    assert status == 503
    assert payload["error"]["code"] == "SUBMISSION_FAILED"
    assert headers["Retry-After"] == "1"  # nothing was charged: retrying is safe
    quota = call("GET", "/quota")[1]
    assert quota["credits"]["balance"] == 100
    assert quota["renders"]["remaining"] == 50
    assert quota["queued"]["count"] == 0
    assert call("GET", "/renders")[1]["renders"] == []


def test_history_pages_cover_every_render_exactly_once_newest_first(call: Call) -> None:
    created = [call("POST", "/renders", body())[1]["renderId"] for _ in range(7)]
    call(
        "POST",
        "/renders",
        body(timeline={"scenes": [{"type": "clip", "src": f"s3://{BUCKET}/inputs/bob/b.mp4"}]}),
        user="bob",
    )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, page, _ = call("GET", "/renders", query=query)
        assert status == 200
        assert len(page["renders"]) <= 3
        seen += [r["renderId"] for r in page["renders"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert seen == list(reversed(created))


def test_list_filters_by_subject_and_status_and_refuses_foreign_cursors(call: Call) -> None:
    movie = call("POST", "/renders", body())[1]["renderId"]
    other = call("POST", "/renders", body(subject={"type": "generation", "id": "g7"}))[1]["renderId"]
    call("POST", f"/renders/{other}/cancel")

    by_movie = call("GET", "/renders", query={"subjectType": "movie", "subjectId": "m1"})[1]
    assert [r["renderId"] for r in by_movie["renders"]] == [movie]
    cancelled = call("GET", "/renders", query={"status": "cancelled"})[1]
    assert [r["renderId"] for r in cancelled["renders"]] == [other]
    assert call("GET", "/renders", query={"limit": "101"})[0] == 422
    assert call("GET", "/renders", query={"subjectType": "movie"})[0] == 422

    bobs = body(timeline={"scenes": [{"type": "clip", "src": f"s3://{BUCKET}/inputs/bob/u1/a.mp4", "duration": 30}]})
    call("POST", "/renders", bobs, user="bob")
    call("POST", "/renders", bobs, user="bob")
    bob_cursor = call("GET", "/renders", query={"limit": "1"}, user="bob")[1]["nextCursor"]
    status, payload, _ = call("GET", "/renders", query={"cursor": bob_cursor})
    assert status == 422
    assert payload["error"]["message"].startswith("cursor")


def test_cancel_refunds_frees_the_queue_and_is_final(call: Call, aws: Any) -> None:
    render_id = call("POST", "/renders", body())[1]["renderId"]
    status, render, _ = call("POST", f"/renders/{render_id}/cancel")
    assert status == 200
    assert render["status"] == "cancelled"
    assert render["error"]["code"] == "CANCELLED"
    quota = call("GET", "/quota")[1]
    assert quota["credits"]["balance"] == 100
    assert quota["queued"]["count"] == 0
    status, payload, _ = call("POST", f"/renders/{render_id}/cancel")
    assert (status, payload["error"]["code"]) == (409, "RENDER_ALREADY_FINISHED")
    assert [e["detail-type"] for e in aws.received_events()] == ["Render Cancelled"]


def test_cancel_by_subject_cancels_only_that_subjects_active_renders(call: Call) -> None:
    a = call("POST", "/renders", body())[1]["renderId"]
    b = call("POST", "/renders", body())[1]["renderId"]
    keep = call("POST", "/renders", body(subject={"type": "movie", "id": "m2"}))[1]["renderId"]
    status, result, _ = call("POST", "/renders/cancel", {"subject": {"type": "movie", "id": "m1"}})
    assert status == 200
    assert sorted(result["cancelled"]) == sorted([a, b])
    assert call("GET", f"/renders/{keep}")[1]["status"] == "queued"


def _complete(aws: Any, render_id: str, user: str = "alice") -> str:
    from render_service.service import service

    key, poster, thumbnail = storage.output_keys(user, render_id)
    for name in (key, poster, thumbnail):
        aws.s3.put_object(Bucket=BUCKET, Key=name, Body=b"\x00" * 64)
    accounting: Accounting = service().accounting
    job = service().renders.require(render_id)
    accounting.acquire_slot(job)
    output = OutputObject(key=key, size_bytes=64, duration_seconds=2.0, poster_key=poster, thumbnail_key=thumbnail)
    accounting.finish(render_id, RenderStatus.complete, output=output)
    return key


def test_output_urls_deletion_and_gone(call: Call, aws: Any) -> None:
    render_id = call("POST", "/renders", body())[1]["renderId"]
    status, payload, _ = call("POST", f"/renders/{render_id}/download-url", {"expiresInSeconds": 120})
    assert (status, payload["error"]["code"]) == (409, "RENDER_NOT_COMPLETE")

    _complete(aws, render_id)
    render = call("GET", f"/renders/{render_id}")[1]
    assert render["status"] == "complete"
    assert render["progress"] == 100
    assert render["output"]["url"].startswith("https://")
    assert render["output"]["sizeBytes"] == 64
    # Stills are signed like the MP4, but for showing inline: no attachment disposition.
    assert f"/renders/alice/{render_id}.poster.jpg?" in render["output"]["posterUrl"]
    assert f"/renders/alice/{render_id}.thumb.jpg?" in render["output"]["thumbnailUrl"]
    assert "response-content-disposition" in render["output"]["url"]
    assert "response-content-disposition" not in render["output"]["posterUrl"]
    listed = call("GET", "/renders")[1]["renders"]
    assert [r["output"]["thumbnailUrl"] is not None for r in listed if r["renderId"] == render_id] == [True]
    status, fresh, _ = call("POST", f"/renders/{render_id}/download-url", {"expiresInSeconds": 120})
    assert status == 200
    assert "X-Amz-Expires=120" in fresh["url"]
    assert call("POST", f"/renders/{render_id}/download-url", {"expiresInSeconds": 5})[0] == 422

    status, deleted, _ = call("DELETE", f"/renders/{render_id}")
    assert status == 200
    assert deleted["output"]["deleted"] is True
    assert (deleted["output"]["url"], deleted["output"]["posterUrl"], deleted["output"]["thumbnailUrl"]) == (
        None,
        None,
        None,
    )
    assert aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"renders/alice/{render_id}").get("Contents", []) == []
    status, payload, _ = call("POST", f"/renders/{render_id}/download-url", {})
    assert (status, payload["error"]["code"]) == (410, "OUTPUT_GONE")


def test_estimate_has_no_side_effects(call: Call) -> None:
    status, estimate, _ = call("POST", "/renders/estimate", body(output={"resolution": "1080p"}))
    assert status == 200
    assert estimate["durationSeconds"] == 30
    assert estimate["credits"] == 1
    assert estimate["estimatedRenderSeconds"] > 0
    open_ended = call("POST", "/renders/estimate", body(timeline={"scenes": [{"type": "clip", "src": CLIP}]}))[1]
    assert open_ended["durationSeconds"] == 600
    assert call("GET", "/quota")[1]["renders"]["remaining"] == 50
    assert call("GET", "/renders")[1]["renders"] == []


def test_uploads_presign_a_put_into_the_callers_inputs(call: Call) -> None:
    status, ticket, _ = call(
        "POST", "/uploads", {"filename": "intro.mp4", "contentType": "video/mp4", "sizeBytes": 1000}
    )
    assert status == 200
    assert ticket["src"].startswith(f"s3://{BUCKET}/inputs/alice/")
    assert ticket["method"] == "PUT"
    assert call("POST", "/uploads", {"filename": "../x", "contentType": "video/mp4", "sizeBytes": 1})[0] == 422
    assert (
        call("POST", "/uploads", {"filename": "a.exe", "contentType": "application/x-msdownload", "sizeBytes": 1})[0]
        == 422
    )
    assert (
        call("POST", "/uploads", {"filename": "a.mp4", "contentType": "video/mp4", "sizeBytes": 3 * 1024**3})[0] == 422
    )


def test_openapi_document_describes_the_models(call: Call) -> None:
    status, spec, _ = call("GET", "/openapi.json", user=None)
    assert status == 200
    assert {"/renders", "/renders/{renderId}", "/quota", "/uploads"} <= set(spec["paths"])
    assert "RenderRequest" in spec["components"]["schemas"]


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain;charset=UTF-8", "application/json"]
)
def test_json_bodies_are_read_whatever_content_type_the_client_sent(call: Call, content_type: str) -> None:
    status, created, _ = call("POST", "/renders", body(), headers={"Content-Type": content_type})
    assert status == 202, created
    status, error, _ = call("POST", "/renders", raw_body="a=1&b=2", headers={"Content-Type": content_type})
    assert (status, error["error"]["code"]) == (400, "INVALID_JSON")


def test_queue_positions_are_first_in_first_out(call: Call) -> None:
    from render_service.service import service

    ids = [call("POST", "/renders", body())[1]["renderId"] for _ in range(3)]
    assert [call("GET", f"/renders/{i}")[1]["queuePosition"] for i in ids] == [1, 2, 3]

    svc = service()
    assert svc.accounting.acquire_slot(svc.renders.require(ids[0]))
    positions = [call("GET", f"/renders/{i}")[1]["queuePosition"] for i in ids]
    assert positions == [None, 1, 2]
    assert call("GET", "/quota")[1]["active"]["count"] == 1


def test_no_url_is_handed_out_for_an_output_removed_behind_the_apis_back(call: Call, aws: Any) -> None:
    render_id = call("POST", "/renders", body())[1]["renderId"]
    key = _complete(aws, render_id)
    assert call("GET", f"/renders/{render_id}")[1]["output"]["url"]
    aws.s3.delete_object(Bucket=BUCKET, Key=key)
    output = call("GET", f"/renders/{render_id}")[1]["output"]
    assert output["url"] is None
    assert output["sizeBytes"] == 64
    assert call("POST", f"/renders/{render_id}/download-url", {})[0] == 410


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("[" * 50_000 + "]" * 50_000, 400, "INVALID_JSON"),
        ('{"a": ' + "9" * 5000 + "}", 400, "INVALID_JSON"),
        ("null", 422, "VALIDATION_ERROR"),
        ('"just a string"', 422, "VALIDATION_ERROR"),
    ],
)
def test_hostile_bodies_get_a_4xx_not_a_500(call: Call, raw: str, status: int, code: str) -> None:
    got, payload, _ = call("POST", "/renders", raw_body=raw)
    assert (got, payload["error"]["code"]) == (status, code)
    assert not payload["error"]["message"].startswith(":")


def test_missing_body_names_the_body(call: Call) -> None:
    status, payload, _ = call("POST", "/renders")
    assert status == 422
    assert payload["error"]["message"].startswith("body")


def test_query_parameters_are_bounded_and_named(call: Call) -> None:
    status, payload, _ = call("GET", "/renders", query={"subjectType": "movie", "subjectId": "a#b"})
    assert (status, payload["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert payload["error"]["message"].startswith("subjectId")
    assert call("GET", "/renders", query={"limit": "0"})[1]["error"]["message"].startswith("limit")


def test_contention_that_outlasts_the_retries_is_a_503_with_retry_after(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from render_service.data import accounting

    def conflict(self: Any, **kwargs: Any) -> None:
        reasons = [{"Code": "TransactionConflict"}] * len(kwargs["TransactItems"])
        raise ClientError(
            {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}, "CancellationReasons": reasons},
            "TransactWriteItems",
        )

    monkeypatch.setattr(accounting, "_TRANSACTION_ATTEMPTS", 2)
    from render_service.service import service

    db = service().accounting._db
    monkeypatch.setattr(type(db), "transact_write_items", conflict, raising=False)
    status, payload, headers = call("POST", "/renders", body())
    assert (status, payload["error"]["code"]) == (503, "BUSY")
    assert headers["Retry-After"] == "1"
    assert "TransactionConflict" not in payload["error"]["message"]


def test_quota_shows_every_window_and_a_refusal_names_the_full_one(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATE_LIMIT_RENDERS")
    monkeypatch.setenv("RATE_LIMITS", json.dumps([{"limit": 10, "seconds": 86400}, {"limit": 2, "seconds": 3600}]))
    assert [call("POST", "/renders", body())[0] for _ in range(2)] == [202, 202]

    status, refused, headers = call("POST", "/renders", body())
    assert (status, refused["error"]["code"]) == (429, "RATE_LIMITED")
    assert refused["error"]["message"].startswith("rate limit: at most 2 renders per hour")
    assert {k: refused["error"]["details"][k] for k in ("limit", "seconds")} == {"limit": 2, "seconds": 3600}
    assert 0 < int(headers["Retry-After"]) <= 3600

    renders = call("GET", "/quota")[1]["renders"]
    assert [(w["limit"], w["seconds"], w["used"], w["remaining"]) for w in renders["windows"]] == [
        (2, 3600, 2, 0),
        (10, 86400, 2, 8),
    ]
    # The headline is the window that admits the fewest more.
    assert (renders["limit"], renders["remaining"], renders["resetAt"]) == (2, 0, renders["windows"][0]["resetAt"])


def test_upload_tickets_are_rate_limited_per_user(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    from render_service.service import reset

    monkeypatch.setenv("UPLOAD_RATE_LIMIT", "2")
    reset()
    ticket = {"filename": "a.mp4", "contentType": "video/mp4", "sizeBytes": 10}
    assert [call("POST", "/uploads", ticket)[0] for _ in range(3)] == [200, 200, 429]
    status, payload, headers = call("POST", "/uploads", ticket)
    assert (status, payload["error"]["code"]) == (429, "RATE_LIMITED")
    assert int(headers["Retry-After"]) > 0
    assert call("POST", "/uploads", ticket, user="bob")[0] == 200


def test_a_lost_start_reply_for_a_render_that_is_running_is_still_a_202(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ReadTimeoutError

    from render_service import clients
    from render_service.service import service

    def lost_reply(*, name: str, **_: Any) -> None:
        """StartExecution that starts the workflow (which takes its slot) but whose reply never arrives."""
        svc = service()
        svc.accounting.acquire_slot(svc.renders.require(name))
        raise ReadTimeoutError(endpoint_url="https://states")

    monkeypatch.setattr(clients.sfn(), "start_execution", lost_reply)
    status, created, _ = call("POST", "/renders", body())
    assert status == 202, created
    quota = call("GET", "/quota")[1]
    assert (quota["active"]["count"], quota["credits"]["balance"]) == (1, 99)


def test_docs_serve_swagger_ui_without_auth(aws: Any, load_event: Callable[..., dict[str, Any]]) -> None:
    from render_service.handlers.api import handler

    event = load_event("api_get_render", path="/docs", resource="/docs")
    event["requestContext"]["authorizer"] = None
    response = handler(event, _Context())
    assert response["statusCode"] == 200
    assert "swagger" in response["body"].lower()
    assert "/openapi.json" in response["body"] or "openapi" in response["body"].lower()


# --- refusals at the door ------------------------------------------------------------------

NON_PUBLIC_HOSTS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "127.1",
    "169.254.169.254",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:a9fe:a9fe]",
    "[::127.0.0.1]",
    "[fe80::1%25eth0]",
    "[64:ff9b::a9fe:a9fe]",
    "10.0.0.1.",
    "internal.example",  # resolves to a private address (see the resolver below)
]


@pytest.fixture
def private_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        ip = "10.0.0.7" if host == "internal.example" else "93.184.215.14"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize("host", NON_PUBLIC_HOSTS)
@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("scene", "timeline.scenes[1].src"),
        ("soundtrack", "timeline.soundtrack.src"),
    ],
)
def test_https_sources_that_cannot_be_public_are_refused_at_submit_and_charge_nothing(
    call: Call, private_dns: None, host: str, where: str, field: str
) -> None:
    url = f"https://{host}/a.mp4"
    timeline: dict[str, Any] = {"scenes": [{"type": "clip", "src": CLIP, "duration": 5}]}
    if where == "scene":
        timeline["scenes"].append({"type": "image", "src": url, "duration": 2})
    else:
        timeline["soundtrack"] = {"src": url}
    before = call("GET", "/quota")[1]
    status, payload, _ = call("POST", "/renders", body(timeline=timeline))
    assert status == 422, payload
    assert payload["error"]["code"] == "INVALID_REQUEST"
    assert payload["error"]["message"].startswith(f"{field}: ")
    assert payload["error"]["details"]["field"] == field
    assert call("POST", "/renders/estimate", body(timeline=timeline))[0] == 422
    assert call("GET", "/quota")[1] == before
    assert call("GET", "/renders")[1]["renders"] == []


def test_public_https_sources_are_admitted(call: Call, private_dns: None) -> None:
    scenes = [{"type": "image", "src": "https://media.example/poster.png", "duration": 2}]
    status, created, _ = call("POST", "/renders", body(timeline={"scenes": scenes}))
    assert status == 202, created


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/renders/{id}/download-url", {"expiresInSecond": 60}, "expiresInSecond"),
        ("/uploads", {"filename": "a.mp4", "contentType": "video/mp4", "sizeBytes": 1, "acl": "public"}, "acl"),
        ("/renders/cancel", {"subject": {"type": "movie", "id": "m1"}, "all": True}, "all"),
        ("/renders/cancel", {"subject": {"type": "movie", "id": "m1", "owner": "bob"}}, "subject.owner"),
        ("/renders", body(output={"resolution": "720p", "bitrate": 1}), "output.bitrate"),
        ("/renders/estimate", body(extra=1), "extra"),
    ],
)
def test_every_request_body_refuses_unknown_fields(call: Call, path: str, payload: Any, field: str) -> None:
    render_id = call("POST", "/renders", body())[1]["renderId"]
    status, error, _ = call("POST", path.format(id=render_id), payload)
    assert status == 422, error
    assert error["error"]["code"] == "VALIDATION_ERROR"
    assert error["error"]["message"].startswith(f"{field}: ")


def test_every_request_model_in_the_document_forbids_unknown_fields(call: Call) -> None:
    spec = call("GET", "/openapi.json", user=None)[1]
    schemas = spec["components"]["schemas"]
    refs = {
        ref
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "requestBody" in op
        for ref in _refs(op["requestBody"])
    }
    seen: set[str] = set()

    def walk(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        schema = schemas[name]
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is False, name
        for ref in _refs(schema):
            walk(ref)

    for ref in refs:
        walk(ref)
    assert {"RenderRequest", "DownloadUrlRequest", "UploadRequest", "CancelBySubject"} <= seen


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_body_limit_counts_bytes_not_characters(call: Call) -> None:
    # 100,000 characters, 300,000 bytes of UTF-8: over the 256 KiB limit.
    raw = json.dumps(body(padding="\u20ac" * 100_000), ensure_ascii=False)
    assert len(raw) < 256 * 1024 < len(raw.encode())
    status, payload, _ = call("POST", "/renders", raw_body=raw)
    assert (status, payload["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert call("GET", "/renders")[1]["renders"] == []


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _b64(b"[" * 1500),
        _b64(b"null"),
        _b64(b"[]"),
        _b64(b'"USER#alice"'),
        _b64(json.dumps({"GSI1PK": "USER#alice"}).encode()),
        _b64(json.dumps({"GSI1PK": "USER#alice", "GSI1SK": "x", "PK": "RENDER#x", "SK": "RENDER", "a": "b"}).encode()),
        _b64(json.dumps({"GSI1PK": "USER#alice", "GSI1SK": 5, "PK": "RENDER#x", "SK": "RENDER"}).encode()),
        _b64(json.dumps({"GSI1PK": "USER#alice", "GSI1SK": {"S": "x"}, "PK": "RENDER#x", "SK": "RENDER"}).encode()),
        _b64(json.dumps({"GSI1PK": "USER#alice", "GSI1SK": "", "PK": "RENDER#x", "SK": "RENDER"}).encode()),
        _b64(json.dumps({"GSI1PK": "USER#alice", "GSI1SK": "x", "PK": "QUOTA#alice", "SK": "RENDER"}).encode()),
        _b64(json.dumps({"GSI1PK": "USER#alice", "GSI1SK": "x" * 2000, "PK": "RENDER#x", "SK": "RENDER"}).encode()),
        _b64(b"\xff\xfe"),
        "not base64 at all!",
        "====",
        "%00",
    ],
)
def test_crafted_cursors_are_a_4xx(call: Call, cursor: str) -> None:
    call("POST", "/renders", body())
    status, payload, _ = call("GET", "/renders", query={"cursor": cursor})
    assert 400 <= status < 500, payload
    assert payload["error"]["message"].startswith("cursor")


@pytest.fixture
def app_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    from render_service.api import app as api_app

    cors = api_app.cors_config("https://app.example, https://admin.example")
    monkeypatch.setattr(api_app, "CORS", cors)
    monkeypatch.setattr(api_app.app, "_cors", cors)


def test_cors_answers_only_the_configured_origins(call: Call, app_origins: None) -> None:
    for origin in ("https://app.example", "https://admin.example"):
        status, _, headers = call("GET", "/quota", headers={"Origin": origin})
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "Location" in headers["Access-Control-Expose-Headers"]
        status, _, headers = call("GET", "/quota", user=None, headers={"Origin": origin})
        assert (status, headers["Access-Control-Allow-Origin"]) == (401, origin)
    for _status, _, headers in (
        call("GET", "/quota", headers={"Origin": "https://evil.example"}),
        call("GET", "/quota", user=None, headers={"Origin": "https://evil.example"}),
    ):
        assert "Access-Control-Allow-Origin" not in headers


def test_cors_config_reads_a_comma_separated_list() -> None:
    from render_service.api.app import cors_config

    assert cors_config("*").allowed_origin("https://any.example") == "*"
    config = cors_config(" https://a.example ,https://b.example,")
    assert config.allowed_origin("https://b.example") == "https://b.example"
    assert config.allowed_origin("https://c.example") is None


def test_location_carries_the_stage_or_base_path_the_client_called(
    call: Call, load_event: Callable[..., dict[str, Any]]
) -> None:
    from render_service.handlers.api import handler

    for full_path, prefix in (("/v1/renders", "/v1"), ("/renders", ""), ("/media/api/renders", "/media/api")):
        event = load_event("api_post_render", body=json.dumps(body()))
        event["requestContext"]["path"] = full_path
        event["requestContext"]["authorizer"] = {"claims": {"sub": "alice"}}
        response = handler(event, _Context())
        assert response["statusCode"] == 202, response
        render_id = json.loads(response["body"])["renderId"]
        location = {
            **(response.get("headers") or {}),
            **{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
        }["Location"]
        assert location == f"{prefix}/renders/{render_id}"


def test_an_undocumented_method_is_a_405_with_or_without_a_token(call: Call) -> None:
    # Nothing to guard on a route that does not exist: the answer is the 405 it is, not a 401.
    for user in (None, "alice"):
        status, payload, headers = call("PUT", "/health", user=user)
        assert (status, payload["error"]["code"], headers["Allow"]) == (405, "METHOD_NOT_ALLOWED", "GET")
        assert call("PATCH", "/renders/abc", user=user)[0] == 405
    assert call("GET", "/renders/abc", user=None)[0] == 401


@pytest.mark.parametrize("path", ["/renders", "/renders/estimate", "/renders/{id}/download-url", "/uploads"])
def test_a_json_array_is_not_an_object_body(call: Call, path: str) -> None:
    """Powertools' validation took the first element of a list for an object parameter, so
    `[<valid body>, "junk"]` was accepted as the valid body (and `[null]` as no body)."""
    render_id = call("POST", "/renders", body())[1]["renderId"]
    first = {
        "/renders": body(),
        "/renders/estimate": body(),
        "/renders/{id}/download-url": None,
        "/uploads": {"filename": "a.mp4", "contentType": "video/mp4", "sizeBytes": 10},
    }[path]
    status, error, _ = call("POST", path.format(id=render_id), [first, "junk"])
    assert (status, error["error"]["code"]) == (422, "VALIDATION_ERROR"), error
    assert error["error"]["message"].startswith("body: ")


@pytest.mark.parametrize(
    ("scene", "engine", "field"),
    [
        ({"type": "video", "src": CLIP}, "ffmpeg", "timeline.scenes.0.type"),
        ({"src": CLIP}, "ffmpeg", "timeline.scenes.0.type"),
        ({"type": "clip", "src": CLIP}, "x", "engine"),
    ],
)
def test_an_unknown_tag_is_reported_at_its_own_field(call: Call, scene: Any, engine: str, field: str) -> None:
    """The engine union and the scenes' union both refuse unknown tags; each names its own field."""
    status, error, _ = call("POST", "/renders/estimate", body(engine=engine, timeline={"scenes": [scene]}))
    assert (status, error["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert error["error"]["message"].startswith(f"{field}: "), error


def test_a_known_path_with_an_undocumented_method_is_a_405(call: Call) -> None:
    status, payload, headers = call("PATCH", "/renders/abc")
    assert (status, payload["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")
    assert headers["Allow"] == "DELETE, GET"
    assert call("PUT", "/nowhere")[0] == 404


# --- engine "remotion" ---------------------------------------------------------------------

REMOTION_ENV = {
    "REMOTION_FUNCTION_NAME": "remotion-render-4-0-0-mem2048mb-disk2048mb-120sec",
    "REMOTION_SERVE_URL": "https://remotionlambda-abc.s3.us-east-1.amazonaws.com/sites/app/index.html",
    "REMOTION_BUCKET": "remotionlambda-useast1-abc",
}


@pytest.fixture
def remotion_configured(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment with a Remotion function (read on the first request, after `aws` cleared the caches)."""
    for key, value in REMOTION_ENV.items():
        monkeypatch.setenv(key, value)


def remotion_body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "engine": "remotion",
        "subject": {"type": "generation", "id": "g1"},
        "kind": "clip",
        "composition": "TextAnimation",
        "inputProps": {"text": "Hello", "style": "typewriter"},
        "durationInFrames": 300,
        "fps": 30,
        "output": {"codec": "h264", "crf": 20, "width": 1920, "height": 1080},
    }
    return base | overrides


def test_a_remotion_request_is_admitted_and_priced_by_length_and_size(call: Call, remotion_configured: None) -> None:
    status, created, _ = call("POST", "/renders", remotion_body())
    assert status == 202, created
    assert created["cost"] == 1  # 10 s at 1080p: ceil(10/60 x 1.5)
    render = call("GET", f"/renders/{created['renderId']}")[1]
    assert (render["engine"], render["status"]) == ("remotion", "queued")

    movie = remotion_body(kind="movie", durationInFrames=3600, inputProps={"scenes": [{"title": "a"}] * 20})
    status, created, _ = call("POST", "/renders", movie)
    assert (status, created["cost"]) == (202, 3)  # 120 s at 1080p: ceil(2 x 1.5)
    small = remotion_body(kind="movie", durationInFrames=3600, output={"width": 1280, "height": 720})
    assert call("POST", "/renders/estimate", small)[1] == {
        "durationSeconds": 120.0,
        "credits": 2,  # 720p: ceil(2 x 1)
        "estimatedRenderSeconds": call("POST", "/renders/estimate", small)[1]["estimatedRenderSeconds"],
    }
    assert call("GET", "/quota")[1]["credits"]["balance"] == 100 - 1 - 3


def test_remotion_without_a_configured_function_is_a_503_that_counts_and_charges_nothing(call: Call) -> None:
    before = call("GET", "/quota")[1]
    status, error, _ = call("POST", "/renders", remotion_body())
    assert (status, error["error"]["code"]) == (503, "ENGINE_NOT_CONFIGURED")
    assert error["error"]["message"].startswith("engine: remotion is not configured")
    assert call("POST", "/renders/estimate", remotion_body())[0] == 503
    after = call("GET", "/quota")[1]
    assert after == before
    assert call("GET", "/renders")[1]["renders"] == []
    assert call("POST", "/renders", body())[0] == 202  # ffmpeg still renders


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"durationInFrames": 601}, "durationInFrames", 422),  # a clip: 20 s, 600 frames at 30 fps
        ({"durationInFrames": 1201, "fps": 60}, "durationInFrames", 422),
        ({"kind": "movie", "durationInFrames": 3601}, "durationInFrames", 422),  # a movie: 120 s
        ({"kind": "movie", "durationInFrames": 900, "subject": {"type": "clip", "id": "c"}}, "durationInFrames", 422),
        ({"kind": "movie", "inputProps": {"scenes": [{}] * 21}}, "inputProps.scenes", 422),
        ({"kind": "movie", "inputProps": {"scenes": "three"}}, "inputProps.scenes", 422),
        ({"framesPerLambda": 4, "kind": "movie", "durationInFrames": 3600}, "framesPerLambda", 422),
        ({"concurrency": 400}, "concurrency", 422),
        ({"concurrency": 10, "durationInFrames": 5}, "concurrency", 422),
        ({"framesPerLambda": 2}, "framesPerLambda", 422),
        ({"output": {"width": 2560, "height": 1440}}, "output.width", 422),
        ({"output": {"width": 1920, "height": 1920}}, "output", 422),
        ({"output": {"width": 1279, "height": 720}}, "output.width", 422),
        ({"output": {"codec": "prores"}}, "output.codec", 422),
        ({"output": {"crf": 60}}, "output.crf", 422),
        ({"kind": "trailer"}, "kind", 422),
        ({"inputProps": ["not", "an", "object"]}, "inputProps", 422),
        ({"composition": "../../etc"}, "composition", 422),
        ({"durationInFrames": 0}, "durationInFrames", 422),
        ({"fps": 120}, "fps", 422),
        ({"timeline": {"scenes": []}}, "timeline", 422),  # an ffmpeg field on a remotion request
        ({"engine": "blender"}, "engine", 422),
    ],
)
def test_remotion_limits_refuse_at_submit_naming_the_field(
    call: Call, remotion_configured: None, change: dict[str, Any], field: str, status: int
) -> None:
    got, error, _ = call("POST", "/renders", remotion_body(**change))
    assert got == status, error
    assert error["error"]["message"].startswith(f"{field}:"), error
    assert call("GET", "/quota")[1]["renders"]["remaining"] == 50  # nothing was counted


def test_the_request_is_one_union_on_engine_in_the_openapi_document(call: Call) -> None:
    spec = call("GET", "/openapi.json", user=None)[1]
    for path in ("/renders", "/renders/estimate"):
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["discriminator"] == {
            "propertyName": "engine",
            "mapping": {
                "ffmpeg": "#/components/schemas/RenderRequest",
                "remotion": "#/components/schemas/RemotionRequest",
            },
        }
        assert {one["$ref"] for one in schema["oneOf"]} == set(schema["discriminator"]["mapping"].values())
    remotion = spec["components"]["schemas"]["RemotionRequest"]
    assert {"engine", "kind", "composition", "durationInFrames"} <= set(remotion["required"])
    assert remotion["additionalProperties"] is False


def test_an_ffmpeg_request_may_still_leave_out_its_engine(call: Call) -> None:
    legacy = {k: v for k, v in body().items() if k != "engine"}
    status, created, _ = call("POST", "/renders", legacy)
    assert status == 202, created
    assert call("GET", f"/renders/{created['renderId']}")[1]["engine"] == "ffmpeg"
