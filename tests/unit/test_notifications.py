"""Notifications: the webhook signature (both sides), its retry policy and URL rules; who is emailed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from infra.constructs.webhooks import MAX_RECEIVE_COUNT
from render_service.errors import InvalidRequest
from render_service.logic.pricing import notify_email
from render_service.models.notifications import Webhook
from render_service.models.requests import parse_request
from render_service.settings import Settings
from render_service.signatures import SIGNATURE_HEADER, signature, verify_signature
from render_service.urls import UrlRefused
from render_service.webhooks import backoff_seconds, check_url, is_final

SECRET = "s3cr3t-key"
BODY = b'{"type":"Render Succeeded","renderId":"r-1"}'


def _headers(body: bytes = BODY, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    return {SIGNATURE_HEADER: signature(secret, body, int(time.time() if at is None else at))}


def test_a_good_signature_is_accepted_whatever_the_header_case() -> None:
    assert verify_signature(SECRET, _headers(), BODY)
    assert verify_signature(SECRET, {k.lower(): v for k, v in _headers().items()}, BODY)


def test_a_tampered_body_is_refused() -> None:
    assert not verify_signature(SECRET, _headers(), BODY.replace(b"r-1", b"r-2"))


def test_a_wrong_secret_is_refused() -> None:
    assert not verify_signature(SECRET, _headers(secret="another"), BODY)


def test_an_old_timestamp_is_refused_even_when_correctly_signed() -> None:
    old = _headers(at=time.time() - 301)
    assert not verify_signature(SECRET, old, BODY)
    assert verify_signature(SECRET, old, BODY, tolerance=600)


@pytest.mark.parametrize("value", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1"])
def test_malformed_signatures_are_refused(value: str) -> None:
    assert not verify_signature(SECRET, {SIGNATURE_HEADER: value}, BODY)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY, 1700000000) == f"t=1700000000,v1={expected}"


def test_the_deployed_backoff_spans_about_an_hour_before_the_dead_letter_queue() -> None:
    settings = Settings(TABLE_NAME="t", BUCKET_NAME="b")
    waits = [backoff_seconds(n, settings) for n in range(1, MAX_RECEIVE_COUNT)]
    assert waits[:3] == [30, 60, 120]
    assert max(waits) == 900
    assert 50 * 60 <= sum(waits) <= 75 * 60


@pytest.mark.parametrize(
    ("status", "final"), [(400, True), (404, True), (410, True), (408, False), (429, False), (500, False), (503, False)]
)
def test_only_a_4xx_other_than_408_and_429_is_final(status: int, final: bool) -> None:
    assert is_final(status) is final


def test_loopback_receivers_pass_only_when_allowed() -> None:
    check_url("http://127.0.0.1:8080/hook", allow_loopback=True)
    check_url("http://localhost:3000/hook", allow_loopback=True)
    for url in ("http://127.0.0.1:8080/hook", "https://localhost/hook", "http://example.com/hook"):
        with pytest.raises(UrlRefused):
            check_url(url, allow_loopback=False)
    with pytest.raises(UrlRefused):
        check_url("http://10.1.2.3/hook", allow_loopback=True)


def test_custom_data_is_at_most_a_kilobyte_of_json() -> None:
    Webhook(url="https://example.com/h", customData={"x": "y" * 900})
    with pytest.raises(ValidationError, match="at most 1024 bytes"):
        Webhook(url="https://example.com/h", customData={"x": "y" * 1100})


# --- email: who is mailed ------------------------------------------------------------


def _request(notify: dict[str, bool] | None) -> Any:
    body: dict[str, Any] = {"timeline": {"scenes": [{"type": "title", "text": "x"}]}}
    if notify is not None:
        body["notify"] = notify
    return parse_request(body)


def _settings(**env: str) -> Settings:
    return Settings.model_validate({"TABLE_NAME": "t", "BUCKET_NAME": "b", **env})


def test_email_goes_out_only_when_asked_or_defaulted_and_the_deployment_can_send() -> None:
    sending = _settings(EMAIL_FROM="renders@example.com")
    assert notify_email(_request(None), "a@example.com", sending) is None
    assert notify_email(_request({"email": True}), "a@example.com", sending) == "a@example.com"
    defaulted = _settings(EMAIL_FROM="renders@example.com", EMAIL_NOTIFY_DEFAULT="true")
    assert notify_email(_request(None), "a@example.com", defaulted) == "a@example.com"
    assert notify_email(_request({"email": False}), "a@example.com", defaulted) is None
    assert notify_email(_request(None), None, defaulted) is None  # a default, not a demand


def test_asking_for_email_that_cannot_be_sent_is_a_422_naming_the_field() -> None:
    with pytest.raises(InvalidRequest, match=r"notify\.email: email notifications are not enabled"):
        notify_email(_request({"email": True}), "a@example.com", _settings())
    with pytest.raises(InvalidRequest, match=r"notify\.email: your account has no email address"):
        notify_email(_request({"email": True}), None, _settings(EMAIL_FROM="renders@example.com"))
