"""Who hears of a render's ending, as a request asks: a webhook, an email (shared by every engine's request)."""

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
