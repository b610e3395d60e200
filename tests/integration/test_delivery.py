"""Download links: CloudFront-signed when the stack has a distribution, and the key pair behind them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from cryptography.hazmat.primitives import serialization

from render_service.handlers import signing_key


@pytest.fixture
def secret_arn(aws: Any) -> str:
    secrets = boto3.client("secretsmanager")
    return str(secrets.create_secret(Name="signing-key", SecretString="generated-placeholder")["ARN"])


class _Captured(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cloudformation() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Stands in for CloudFormation's response URL; yields (url, replies received)."""
    _Captured.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Captured)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/response", _Captured.bodies
    server.shutdown()
    server.server_close()


class _Context:
    function_name = "SigningKeyGenerator"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:SigningKeyGenerator"
    aws_request_id = "req"
    log_stream_name = "2026/12/02/[$LATEST]abc"


def _event(kind: str, url: str, secret: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/RenderService/1",
        "RequestId": f"{kind}-1",
        "LogicalResourceId": "DeliverySigningKeyPair",
        "ResourceType": "Custom::CloudFrontSigningKey",
        "ResourceProperties": {"ServiceToken": "arn", "SecretArn": secret},
    }


def test_the_key_pair_is_made_once_kept_in_the_secret_and_only_its_public_half_leaves(
    secret_arn: str, cloudformation: tuple[str, list[dict[str, Any]]]
) -> None:
    url, replies = cloudformation
    signing_key.handler(_event("Create", url, secret_arn), _Context())
    created = replies[-1]
    assert (created["Status"], created["PhysicalResourceId"]) == ("SUCCESS", secret_arn)
    public_pem = created["Data"]["PublicKey"]
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in json.dumps(created)

    stored = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    private = serialization.load_pem_private_key(stored.encode(), password=None)
    derived = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert derived.decode() == public_pem
    assert private.key_size == 2048  # type: ignore[union-attr]

    # A retried Create or an Update keeps the pair: URLs already handed out stay valid.
    signing_key.handler(_event("Update", url, secret_arn), _Context())
    signing_key.handler(_event("Create", url, secret_arn), _Context())
    assert [r["Data"]["PublicKey"] for r in replies[1:]] == [public_pem, public_pem]
    signing_key.handler(_event("Delete", url, secret_arn), _Context())
    assert (replies[-1]["Status"], replies[-1]["Data"]) == ("SUCCESS", {})


def test_a_failure_is_reported_to_cloudformation_not_left_hanging(
    aws: Any, cloudformation: tuple[str, list[dict[str, Any]]]
) -> None:
    url, replies = cloudformation
    signing_key.handler(_event("Create", url, "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone"), _Context())
    assert replies[-1]["Status"] == "FAILED"
    assert "ResourceNotFound" in replies[-1]["Reason"]


def test_outputs_get_cloudfront_signed_links_that_last_as_long_as_they_say(
    secret_arn: str, cloudformation: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from render_service import links
    from render_service.settings import get_settings

    url, _ = cloudformation
    signing_key.handler(_event("Create", url, secret_arn), _Context())
    monkeypatch.setenv("CDN_DOMAIN", "d111.cloudfront.net")
    monkeypatch.setenv("CDN_KEY_PAIR_ID", "K2JCJMDEHXQW5F")
    monkeypatch.setenv("CDN_PRIVATE_KEY_SECRET", secret_arn)
    get_settings.cache_clear()

    week = 7 * 24 * 3600
    before = datetime.now(UTC)
    link, expires_at = links.output_url("renders/alice/r-1.mp4", week, filename="r-1.mp4")
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "d111.cloudfront.net", "/alice/r-1.mp4")
    query = parse_qs(parts.query)
    # expiresAt is what the signature enforces, to the second: no credentials in it can expire sooner.
    assert int(query["Expires"][0]) == int(expires_at.timestamp())
    assert before + timedelta(seconds=week - 2) <= expires_at <= datetime.now(UTC) + timedelta(seconds=week)
    assert "X-Amz-Credential" not in link


def test_settings_refuse_a_partial_cdn_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from render_service.settings import Settings

    with pytest.raises(ValidationError, match="go together"):
        Settings.model_validate({"TABLE_NAME": "t", "BUCKET_NAME": "b", "CDN_DOMAIN": "d.cloudfront.net"})
