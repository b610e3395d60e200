"""Who hears of a render's ending, and where its output goes, as a request asks: a webhook, an email,
a delivery to a deployment's S3-compatible destination (shared by every engine's request)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_CUSTOM_DATA_BYTES = 1024
MAX_WEBHOOK_URL_CHARS = 2048


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_WEBHOOK_URL_CHARS,
        description="An https URL on a public address; the render's events are POSTed there, signed "
        "(`X-Render-Signature`, see the README).",
    )
    customData: dict[str, Any] | None = Field(
        None, description=f"Echoed in every delivery as `customData`; at most {MAX_CUSTOM_DATA_BYTES} bytes of JSON."
    )

    @field_validator("customData")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            size = len(json.dumps(value, separators=(",", ":")).encode())
            if size > MAX_CUSTOM_DATA_BYTES:
                raise ValueError(f"at most {MAX_CUSTOM_DATA_BYTES} bytes of JSON, got {size}")
        return value


class Notify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool | None = Field(
        None,
        description="Email the caller (the address of their sign-in) when the render succeeds or finally fails. "
        "Absent: the deployment's default.",
    )


DESTINATION_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class Destination(BaseModel):
    """A deployment's S3-compatible bucket (Cloudflare R2, MinIO, another S3) that outputs may be copied to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(min_length=1, description="e.g. https://<account>.r2.cloudflarestorage.com")
    bucket: str = Field(min_length=1)
    prefix: str = Field("", description="Prepended to `<renderId>.mp4`.")
    credentialsSecretArn: str = Field(
        min_length=1, description='A Secrets Manager secret: {"accessKeyId": ..., "secretAccessKey": ...}.'
    )
    region: str = Field("auto", description="R2 takes `auto`.")

    def key(self, render_id: str) -> str:
        return f"{self.prefix}{render_id}.mp4"
