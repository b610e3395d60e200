"""Limits, prices and source checks that follow from a request, before any media is fetched.

Cost = ceil(output minutes x resolution multiplier). Clips without a `duration` are charged as if
they ran to the longest output allowed; the render is settled at the end and the unused part refunded.
"""

from __future__ import annotations

import math

from render_service import urls
from render_service.errors import InvalidRequest
from render_service.models.api import Estimate
from render_service.models.timeline import HIGH_RESOLUTIONS, RenderRequest, Resolution, SubjectType
from render_service.settings import Settings

RESOLUTION_MULTIPLIER = {
    Resolution.r720p: 1.0,
    Resolution.r1080p: 1.5,
    Resolution.r1440p: 2.5,
    Resolution.r4k: 4.0,
}
MAX_OUTPUT_SECONDS = 600.0
MAX_CLIP_OUTPUT_SECONDS = 20.0
# Encoder throughput at 1080p on one chunk worker, and chunk length, for the time estimate only.
_FPS_AT_1080P = 60.0
_CHUNK_SECONDS = 15.0
_OVERHEAD_SECONDS = 15


def max_output_seconds(request: RenderRequest) -> float:
    if request.subject and request.subject.type == SubjectType.clip:
        return MAX_CLIP_OUTPUT_SECONDS
    return MAX_OUTPUT_SECONDS


def declared_seconds(request: RenderRequest) -> float | None:
    """The output length the request states, or None when a clip runs to the end of its source."""
    total = 0.0
    for index, scene in enumerate(request.timeline.scenes):
        if scene.duration is None:
            return None
        total += scene.duration
        if index and scene.transition and scene.transition.type != "none":
            total -= scene.transition.duration
    return total


def duration_bound(request: RenderRequest) -> float:
    declared = declared_seconds(request)
    return max_output_seconds(request) if declared is None else declared


def cost(request: RenderRequest, seconds: float, settings: Settings) -> int:
    if not settings.credits_enabled:
        return 0
    return max(1, math.ceil(seconds / 60 * RESOLUTION_MULTIPLIER[request.output.resolution] - 1e-9))


def check(request: RenderRequest, user_id: str, settings: Settings) -> None:
    """The rules that need configuration; each refusal names the field and the rule."""
    if request.output.resolution in HIGH_RESOLUTIONS and not settings.allow_high_resolution:
        raise InvalidRequest(
            f"output.resolution: {request.output.resolution} is not enabled; at most 1080p",
            details={"field": "output.resolution", "allowed": ["720p", "1080p"]},
        )
    declared = declared_seconds(request)
    limit = max_output_seconds(request)
    if declared is not None and declared > limit:
        raise InvalidRequest(
            f"timeline: the output would last {declared:g} s, more than the {limit:g} s allowed",
            details={"field": "timeline", "maxSeconds": limit},
        )
    sources = [(f"timeline.scenes[{i}].src", getattr(s, "src", None)) for i, s in enumerate(request.timeline.scenes)]
    if request.timeline.soundtrack:
        sources.append(("timeline.soundtrack.src", request.timeline.soundtrack.src))
    for field, src in sources:
        if src and src.startswith("s3://"):
            check_s3_source(field, src, user_id, settings)
    # A source the fetch would surely refuse is refused now, before it costs a quota slot.
    https = {field: src for field, src in sources if src and not src.startswith("s3://")}
    try:
        urls.check_public_urls(https)
    except urls.UrlRefused as refused:
        raise InvalidRequest(str(refused), details={"field": refused.where, "rule": refused.reason}) from None


def check_s3_source(field: str, src: str, user_id: str, settings: Settings) -> None:
    bucket, _, key = src[5:].partition("/")
    if bucket not in settings.source_buckets:
        raise InvalidRequest(f"{field}: bucket '{bucket}' is not an allowed source", details={"field": field})
    # In the service bucket a user may only read their own uploads, never outputs or others' inputs.
    if bucket == settings.bucket_name and not key.startswith(f"inputs/{user_id}/"):
        raise InvalidRequest(f"{field}: must be one of your uploads (inputs/{user_id}/...)", details={"field": field})


def estimate(request: RenderRequest, settings: Settings) -> Estimate:
    seconds = duration_bound(request)
    width, height = request.output.size
    frames = seconds * request.output.fps
    workers = max(1, math.ceil(seconds / _CHUNK_SECONDS))
    encode = frames * (width * height) / (1920 * 1080) / _FPS_AT_1080P / min(workers, 20)
    return Estimate(
        durationSeconds=round(seconds, 3),
        credits=cost(request, seconds, settings),
        estimatedRenderSeconds=math.ceil(encode) + _OVERHEAD_SECONDS,
    )
