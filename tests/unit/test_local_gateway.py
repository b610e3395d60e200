"""The local stand-in for API Gateway and its Cognito authorizer."""

from __future__ import annotations

import pytest

from infra.local.gateway import claims_from, to_event


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
