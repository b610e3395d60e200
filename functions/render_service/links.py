"""Download links for finished outputs: one function, whichever signer the deployment has.

Deployed, CloudFront signs (`cdn.py`): the link works until its `expiresAt`, up to 7 days,
whatever happens to the Lambda role's session. Locally (no CDN configured), S3 presigns with
the local stack's static credentials, which never expire, so `expiresAt` holds there too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from aws_lambda_powertools.utilities import parameters

from render_service import clients, storage
from render_service.cdn import CloudFrontSigner
from render_service.settings import get_settings

# The key is read once per container and then every 15 minutes, so a replaced key takes effect.
SECRET_MAX_AGE_SECONDS = 900


def output_url(key: str, expires_in: int, *, filename: str | None = None) -> tuple[str, datetime]:
    settings = get_settings()
    if not settings.cdn_domain:
        return storage.presign_get(clients.s3(), settings.bucket_name, key, expires_in, filename=filename)
    pem = parameters.get_secret(settings.cdn_private_key_secret, max_age=SECRET_MAX_AGE_SECONDS)
    signer = _signer(settings.cdn_domain, settings.cdn_key_pair_id, str(pem))
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in)
    return signer.url(key, expires_at, filename=filename), expires_at


@lru_cache(maxsize=4)
def _signer(domain: str, key_pair_id: str, pem: str) -> CloudFrontSigner:
    return CloudFrontSigner.from_pem(domain, key_pair_id, pem)
