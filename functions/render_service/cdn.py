"""CloudFront signed URLs: download links that live as long as they say.

An S3 URL presigned with a Lambda role's credentials stops working when that role session
expires (hours), whatever its `X-Amz-Expires`. A CloudFront signed URL is checked against a
public key in the distribution's key group, so it works until its own `Expires`, up to the
7 days the API allows. CloudFront's canned policy is signed with RSA-SHA1 (PKCS#1 v1.5); the
signature is base64 with `+=/` swapped for `-_~`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The distribution's origin path: https://<domain>/<user>/<id>.mp4 is s3://<bucket>/renders/<user>/<id>.mp4.
ORIGIN_PREFIX = "renders/"
# S3 honours this on the origin request (CloudFront forwards it, see infra/constructs/delivery.py).
DISPOSITION_PARAMETER = "response-content-disposition"


@dataclass(frozen=True)
class CloudFrontSigner:
    domain: str
    key_pair_id: str  # the CloudFront public key's id
    private_key: rsa.RSAPrivateKey

    @classmethod
    def from_pem(cls, domain: str, key_pair_id: str, pem: str) -> CloudFrontSigner:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("CloudFront signs with RSA keys only")
        return cls(domain=domain, key_pair_id=key_pair_id, private_key=key)

    def url(self, key: str, expires_at: datetime, *, filename: str | None = None) -> str:
        """A signed GET URL for the object `key` (under `renders/`), valid until `expires_at`."""
        if not key.startswith(ORIGIN_PREFIX):
            raise ValueError(f"only {ORIGIN_PREFIX} objects are served by the distribution, not {key!r}")
        resource = f"https://{self.domain}/{quote(key.removeprefix(ORIGIN_PREFIX))}"
        if filename:
            disposition = quote(f'attachment; filename="{filename}"', safe="")
            resource += f"?{DISPOSITION_PARAMETER}={disposition}"
        epoch = int(expires_at.timestamp())
        policy = {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": epoch}}}]}
        signed = json.dumps(policy, separators=(",", ":")).encode()
        signature = self.private_key.sign(signed, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 (CloudFront's rule)
        separator = "&" if "?" in resource else "?"
        return f"{resource}{separator}Expires={epoch}&Signature={_url_safe(signature)}&Key-Pair-Id={self.key_pair_id}"


def _url_safe(data: bytes) -> str:
    return base64.b64encode(data).decode().translate(str.maketrans("+=/", "-_~"))
