"""CloudFront signed URLs: the canned policy, signed as CloudFront verifies it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from render_service.cdn import CloudFrontSigner


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def signer(key: rsa.RSAPrivateKey) -> CloudFrontSigner:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return CloudFrontSigner.from_pem("d111.cloudfront.net", "K2JCJMDEHXQW5F", pem.decode())


def _verify(url: str, key: rsa.RSAPrivateKey) -> tuple[str, int]:
    """Checks the URL as CloudFront does; returns (resource, expiry)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    expires = int(query.pop("Expires")[0])
    signature = query.pop("Signature")[0]
    assert query.pop("Key-Pair-Id") == ["K2JCJMDEHXQW5F"]
    # The resource is the URL without the three signing parameters, as requested.
    rest = parts.query.split("&Expires=")[0] if "&Expires=" in parts.query else ""
    resource = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
    policy = json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()
    assert not set(signature) & set("+=/"), "CloudFront's URL-safe alphabet is -_~"
    raw = base64.b64decode(signature.translate(str.maketrans("-_~", "+=/")))
    key.public_key().verify(raw, policy, padding.PKCS1v15(), hashes.SHA1())
    return resource, expires


def test_a_signed_url_verifies_against_the_public_key_and_expires_when_it_says(
    signer: CloudFrontSigner, key: rsa.RSAPrivateKey
) -> None:
    expires_at = datetime.now(UTC) + timedelta(days=7)
    url = signer.url("renders/alice/r-1.mp4", expires_at)
    resource, expires = _verify(url, key)
    assert resource == "https://d111.cloudfront.net/alice/r-1.mp4"  # the distribution's origin path is renders/
    assert expires == int(expires_at.timestamp())


def test_the_download_filename_is_signed_into_the_url(signer: CloudFrontSigner, key: rsa.RSAPrivateKey) -> None:
    url = signer.url("renders/alice/r-1.mp4", datetime.now(UTC) + timedelta(hours=1), filename="r-1.mp4")
    resource, _ = _verify(url, key)
    disposition = parse_qs(urlsplit(resource).query)["response-content-disposition"][0]
    assert unquote(disposition) == 'attachment; filename="r-1.mp4"'


def test_a_tampered_url_does_not_verify(signer: CloudFrontSigner, key: rsa.RSAPrivateKey) -> None:
    url = signer.url("renders/alice/r-1.mp4", datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidSignature):
        _verify(url.replace("/alice/", "/bob/"), key)


def test_only_outputs_under_renders_are_signed(signer: CloudFrontSigner) -> None:
    with pytest.raises(ValueError, match="renders/"):
        signer.url("inputs/alice/u/x.mp4", datetime.now(UTC))


def test_only_rsa_keys_are_accepted() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="RSA"):
        CloudFrontSigner.from_pem("d.cloudfront.net", "K1", pem.decode())
