"""Webhook signatures, both sides: the standard library only, so a receiver can copy or import it.

`X-Render-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the
deployment's webhook secret (the stack output `WebhookSecretArn`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Render-Signature"
EVENT_ID_HEADER = "X-Render-Event-Id"
EVENT_TYPE_HEADER = "X-Render-Event-Type"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Render-Signature` value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """True if `body` was signed with `secret` at most `tolerance` seconds from now.

    Pass the raw body bytes, before any JSON parsing. Header names match case-insensitively. The
    timestamp is signed too, so an old request cannot be replayed with a fresh `t`.
    """
    value = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
    pairs = [(k.strip(), v.strip()) for k, _, v in (part.partition("=") for part in value.split(","))]
    try:
        timestamp = int(next((v for k, v in pairs if k == "t"), ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    # Several v1 values may be sent while a secret is being rotated: any one may match.
    return any(hmac.compare_digest(expected, v) for k, v in pairs if k == "v1")
