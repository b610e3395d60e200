"""The render request as the API takes it: one body per engine, told apart by `engine`.

`engine` may be left out of an ffmpeg request (every request before the remotion engine did);
it is filled in before the union is told apart, so the OpenAPI document can still show a plain
discriminated union with its mapping.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, TypeAdapter

from render_service.models.remotion import RemotionRequest
from render_service.models.timeline import RenderRequest

ENGINES = ("ffmpeg", "remotion")


def _ffmpeg_by_default(value: Any) -> Any:
    if isinstance(value, dict) and "engine" not in value:
        return {**value, "engine": "ffmpeg"}
    return value


AnyRenderRequest = Annotated[
    RenderRequest | RemotionRequest, Discriminator("engine"), BeforeValidator(_ffmpeg_by_default)
]
REQUEST = TypeAdapter[RenderRequest | RemotionRequest](AnyRenderRequest)


def parse_request(data: Any) -> RenderRequest | RemotionRequest:
    return REQUEST.validate_python(data)


def parse_request_json(text: str | bytes) -> RenderRequest | RemotionRequest:
    return REQUEST.validate_json(text)
