"""Limits, prices and source checks that follow from a request, before any media is fetched.

Cost = ceil(output minutes x resolution multiplier), for every engine. Clips without a `duration`
are charged as if they ran to the longest output allowed; the render is settled at the end and the
unused part refunded. A remotion request states its length (durationInFrames / fps) and its size;
the size is priced as the smallest preset that covers its short side.
"""

from __future__ import annotations

import math

from render_service import urls, webhooks
from render_service.errors import EngineNotConfigured, InvalidRequest
from render_service.models.api import Estimate
from render_service.models.jobs import Delivery
from render_service.models.remotion import MAX_CONCURRENCY, RemotionKind, RemotionRequest
from render_service.models.timeline import HIGH_RESOLUTIONS, SHORT_SIDE, RenderRequest, Resolution, SubjectType
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


def max_output_seconds(request: RenderRequest | RemotionRequest) -> float:
    limit = MAX_OUTPUT_SECONDS
    if isinstance(request, RemotionRequest):
        limit = min(limit, request.limits.max_seconds)
    if request.subject and request.subject.type == SubjectType.clip:
        limit = min(limit, MAX_CLIP_OUTPUT_SECONDS)
    return limit


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


def duration_bound(request: RenderRequest | RemotionRequest) -> float:
    if isinstance(request, RemotionRequest):
        return request.seconds
    declared = declared_seconds(request)
    return max_output_seconds(request) if declared is None else declared


def resolution_of(request: RenderRequest | RemotionRequest) -> Resolution:
    """The preset a request is priced as: its own, or the smallest that covers a remotion size's short side."""
    if isinstance(request, RenderRequest):
        return request.output.resolution
    short = min(request.output.width, request.output.height)
    return next(r for r in Resolution if SHORT_SIDE[r] >= short)


def cost(request: RenderRequest | RemotionRequest, seconds: float, settings: Settings) -> int:
    if not settings.credits_enabled:
        return 0
    return max(1, math.ceil(seconds / 60 * RESOLUTION_MULTIPLIER[resolution_of(request)] - 1e-9))


def check(request: RenderRequest | RemotionRequest, user_id: str, settings: Settings) -> None:
    """The rules that need configuration; each refusal names the field and the rule."""
    if request.webhook is not None:
        try:
            webhooks.check_url(request.webhook.url, allow_loopback=settings.webhook_allow_loopback)
        except urls.UrlRefused as refused:
            raise InvalidRequest(str(refused), details={"field": "webhook.url", "rule": refused.reason}) from None
    if request.deliverTo is not None and request.deliverTo not in settings.delivery_destinations:
        known = sorted(settings.delivery_destinations)
        raise InvalidRequest(
            f"deliverTo: '{request.deliverTo}' is not a destination of this deployment"
            + (f" (it has: {', '.join(known)})" if known else " (it has none)"),
            details={"field": "deliverTo", "allowed": known},
        )
    if isinstance(request, RemotionRequest):
        check_remotion(request, settings)
        return
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


def deliveries(request: RenderRequest | RemotionRequest, render_id: str, settings: Settings) -> list[Delivery]:
    """The copies a request asks for (`deliverTo`), pending until the output exists."""
    if request.deliverTo is None:
        return []
    destination = settings.delivery_destinations[request.deliverTo]
    return [Delivery(destination=request.deliverTo, key=destination.key(render_id))]


def notify_email(request: RenderRequest | RemotionRequest, email: str | None, settings: Settings) -> str | None:
    """The address a render's ending is emailed to, or None. Asked for explicitly and impossible: a 422."""
    asked = request.notify.email if request.notify is not None else None
    if not (settings.email_notify_default if asked is None else asked):
        return None
    if asked and not settings.email_from:
        raise InvalidRequest(
            "notify.email: email notifications are not enabled on this deployment (see the README's Configuration)",
            details={"field": "notify.email"},
        )
    if asked and not email:
        raise InvalidRequest("notify.email: your account has no email address", details={"field": "notify.email"})
    return email if settings.email_from else None


def check_s3_source(field: str, src: str, user_id: str, settings: Settings) -> None:
    bucket, _, key = src[5:].partition("/")
    if bucket not in settings.source_buckets:
        raise InvalidRequest(f"{field}: bucket '{bucket}' is not an allowed source", details={"field": field})
    # In the service bucket a user may only read their own uploads, never outputs or others' inputs.
    if bucket == settings.bucket_name and not key.startswith(f"inputs/{user_id}/"):
        raise InvalidRequest(f"{field}: must be one of your uploads (inputs/{user_id}/...)", details={"field": field})


def check_remotion(request: RemotionRequest, settings: Settings) -> None:
    """A deployment without a Remotion function refuses (503, before anything is counted or
    charged), then the product plans' limits for the request's kind."""
    if not settings.remotion_configured:
        raise EngineNotConfigured(
            "engine: remotion is not configured for this deployment (see the README's Configuration)",
            details={"field": "engine", "engine": "remotion"},
        )
    limit = max_output_seconds(request)
    if request.seconds > limit + 1e-9:
        max_frames = math.floor(limit * request.fps + 1e-9)
        raise InvalidRequest(
            f"durationInFrames: {request.durationInFrames} frames at {request.fps} fps is {request.seconds:g} s, "
            f"more than the {limit:g} s ({max_frames} frames) a {_what(request)} may last",
            details={"field": "durationInFrames", "maxSeconds": limit, "maxFrames": max_frames},
        )
    scenes = request.inputProps.get("scenes")
    max_scenes = request.limits.max_scenes
    if request.kind == RemotionKind.movie and scenes is not None and not isinstance(scenes, list):
        raise InvalidRequest(
            "inputProps.scenes: must be a list of scenes", details={"field": "inputProps.scenes", "rule": "list"}
        )
    if max_scenes is not None and isinstance(scenes, list) and len(scenes) > max_scenes:
        raise InvalidRequest(
            f"inputProps.scenes: {len(scenes)} scenes, more than the {max_scenes} a {request.kind.value} may have",
            details={"field": "inputProps.scenes", "maxScenes": max_scenes},
        )
    # Remotion refuses a render that would need more than its concurrency limit of Lambdas.
    if request.framesPerLambda is not None:
        lambdas = math.ceil(request.durationInFrames / request.framesPerLambda)
        if lambdas > MAX_CONCURRENCY:
            least = math.ceil(request.durationInFrames / MAX_CONCURRENCY)
            raise InvalidRequest(
                f"framesPerLambda: {request.framesPerLambda} would need {lambdas} Lambdas, more than Remotion's "
                f"{MAX_CONCURRENCY}; use at least {least}",
                details={"field": "framesPerLambda", "min": least},
            )
    if request.concurrency is not None and request.concurrency > request.durationInFrames:
        raise InvalidRequest(
            f"concurrency: {request.concurrency} is more than the {request.durationInFrames} frames to render",
            details={"field": "concurrency", "max": request.durationInFrames},
        )


def _what(request: RemotionRequest) -> str:
    if request.subject and request.subject.type == SubjectType.clip and request.kind != RemotionKind.clip:
        return "render of a clip subject"
    return request.kind.value


def output_size(request: RenderRequest | RemotionRequest) -> tuple[int, int]:
    if isinstance(request, RemotionRequest):
        return request.output.width, request.output.height
    return request.output.size


def estimate(request: RenderRequest | RemotionRequest, settings: Settings) -> Estimate:
    seconds = duration_bound(request)
    width, height = output_size(request)
    frames = seconds * (request.fps if isinstance(request, RemotionRequest) else request.output.fps)
    workers = max(1, math.ceil(seconds / _CHUNK_SECONDS))
    encode = frames * (width * height) / (1920 * 1080) / _FPS_AT_1080P / min(workers, 20)
    return Estimate(
        durationSeconds=round(seconds, 3),
        credits=cost(request, seconds, settings),
        estimatedRenderSeconds=math.ceil(encode) + _OVERHEAD_SECONDS,
    )
