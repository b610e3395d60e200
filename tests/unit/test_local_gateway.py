"""The local stand-in for API Gateway and its Cognito authorizer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from infra.local.gateway import Gateway, claims_from, to_event


@pytest.mark.parametrize(
    ("header", "sub"),
    [
        ("Bearer local:alice", "alice"),
        ("Bearer local:user-1@example.com", "user-1@example.com"),
        ("Bearer local:", None),
        ("Bearer local:a b", None),
        ("Bearer eyJhbGciOi", None),
        ("local:alice", None),
        (None, None),
    ],
)
def test_only_local_bearer_tokens_become_a_sub_claim(header: str | None, sub: str | None) -> None:
    claims = claims_from(header)
    assert (claims or {}).get("sub") == sub


def test_requests_become_rest_proxy_events() -> None:
    event = to_event(
        "GET", "/renders?limit=5&status=queued", {"Authorization": "Bearer local:bob", "Host": "x"}, b"", "127.0.0.1"
    )
    assert (event["httpMethod"], event["path"]) == ("GET", "/renders")
    assert event["queryStringParameters"] == {"limit": "5", "status": "queued"}
    assert event["requestContext"]["authorizer"]["claims"]["sub"] == "bob"
    assert event["body"] is None
    anonymous = to_event("POST", "/renders", {}, b'{"a": 1}', "127.0.0.1")
    assert anonymous["requestContext"]["authorizer"] is None
    assert anonymous["body"] == '{"a": 1}'


def test_the_handler_answers_one_request_at_a_time_like_one_execution_environment() -> None:
    # The Powertools resolver keeps the request it answers on itself; two at once would mix them up.
    inside, most = 0, 0
    lock = threading.Lock()

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)
        with lock:
            inside -= 1
        return {"statusCode": 200, "body": event["path"]}

    gateway = Gateway(handler)
    gateway.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            bodies = list(pool.map(lambda n: requests.get(f"{gateway.url}/r/{n}", timeout=10).text, range(16)))
    finally:
        gateway.stop()
    assert bodies == [f"/r/{n}" for n in range(16)]
    assert most == 1
