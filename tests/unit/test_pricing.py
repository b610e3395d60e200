"""Cost, duration bounds and the configuration-dependent rules of a request."""

from __future__ import annotations

from typing import Any

import pytest

from render_service.errors import EngineNotConfigured, InvalidRequest
from render_service.logic import pricing
from render_service.models.remotion import RemotionRequest
from render_service.models.timeline import RenderRequest
from render_service.settings import Settings

SETTINGS = Settings.model_validate({"TABLE_NAME": "t", "BUCKET_NAME": "svc", "ALLOWED_SOURCE_BUCKETS": "assets, media"})


def request(scenes: list[dict[str, Any]], **extra: Any) -> RenderRequest:
    return RenderRequest.model_validate({"timeline": {"scenes": scenes}, **extra})


def clip(duration: float | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "clip", "src": "s3://assets/a.mp4", **({"duration": duration} if duration else {}), **extra}


@pytest.mark.parametrize(
    ("seconds", "resolution", "credits"),
    [
        (30, "720p", 1),
        (60, "720p", 1),
        (61, "720p", 2),
        (60, "1080p", 2),
        (600, "1080p", 15),
        (90, "4k", 6),
        (1, "1080p", 1),
    ],
)
def test_cost_is_ceil_of_minutes_times_the_resolution_multiplier(seconds: float, resolution: str, credits: int) -> None:
    assert pricing.cost(request([clip(seconds)], output={"resolution": resolution}), seconds, SETTINGS) == credits


def test_credits_disabled_makes_every_render_free() -> None:
    free = SETTINGS.model_copy(update={"credits_enabled": False})
    assert pricing.cost(request([clip(600)]), 600, free) == 0


def test_transitions_overlap_and_open_ended_clips_reserve_the_maximum() -> None:
    fade = {"type": "fade", "duration": 0.5}
    assert pricing.duration_bound(request([clip(2), {**clip(3), "transition": fade}])) == 4.5
    assert pricing.duration_bound(request([clip(2), clip()])) == 600
    assert pricing.duration_bound(request([clip()], subject={"type": "clip", "id": "c"})) == 20


@pytest.mark.parametrize(
    ("scenes", "extra", "message"),
    [
        ([clip(10)], {"output": {"resolution": "4k"}}, "output.resolution"),
        (
            [clip(30)],
            {"subject": {"type": "clip", "id": "c1"}},
            "timeline: the output would last 30 s, more than the 20 s",
        ),
        ([clip(300), clip(301)], {}, "timeline: the output would last 601 s"),
        ([{"type": "clip", "src": "s3://secret/a.mp4"}], {}, "timeline.scenes[0].src: bucket 'secret'"),
        (
            [{"type": "clip", "src": "s3://svc/renders/bob/x.mp4"}],
            {},
            "timeline.scenes[0].src: must be one of your uploads",
        ),
        ([clip(5)], {"timeline_soundtrack": "s3://nope/a.mp3"}, "timeline.soundtrack.src: bucket 'nope'"),
    ],
)
def test_policy_refusals_name_the_field_and_the_rule(
    scenes: list[dict[str, Any]], extra: dict[str, Any], message: str
) -> None:
    soundtrack = extra.pop("timeline_soundtrack", None)
    payload: dict[str, Any] = {"timeline": {"scenes": scenes}, **extra}
    if soundtrack:
        payload["timeline"]["soundtrack"] = {"src": soundtrack}
    with pytest.raises(InvalidRequest) as refused:
        pricing.check(RenderRequest.model_validate(payload), "alice", SETTINGS)
    assert refused.value.message.startswith(message)


def test_allowed_sources_pass() -> None:
    pricing.check(request([clip(5), {"type": "clip", "src": "s3://svc/inputs/alice/u/x.mp4"}]), "alice", SETTINGS)
    high = SETTINGS.model_copy(update={"allow_high_resolution": True})
    pricing.check(request([clip(5)], output={"resolution": "4k"}), "alice", high)


def test_estimate_grows_with_resolution() -> None:
    small = pricing.estimate(request([clip(60)], output={"resolution": "720p"}), SETTINGS)
    large = pricing.estimate(request([clip(60)], output={"resolution": "1080p"}), SETTINGS)
    assert small.durationSeconds == large.durationSeconds == 60
    assert small.estimatedRenderSeconds < large.estimatedRenderSeconds
    assert (small.credits, large.credits) == (1, 2)


def remotion(width: int, height: int, frames: int, fps: int = 30, **extra: Any) -> RemotionRequest:
    return RemotionRequest.model_validate(
        {
            "engine": "remotion",
            "kind": "movie",
            "composition": "Movie",
            "durationInFrames": frames,
            "fps": fps,
            "output": {"width": width, "height": height},
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("size", "frames", "fps", "credits"),
    [
        ((1920, 1080), 3600, 30, 3),  # 120 s, priced as 1080p
        ((1080, 1920), 1800, 30, 2),  # portrait: the short side decides
        ((1280, 720), 3600, 30, 2),  # 720p
        ((640, 360), 300, 30, 1),  # below 720p is priced as 720p
        ((1282, 722), 1800, 30, 2),  # just over 720p is 1080p: 60 s x 1.5
        ((1920, 1080), 3600, 60, 2),  # 60 s at 60 fps
    ],
)
def test_remotion_is_priced_by_length_and_the_preset_covering_its_size(
    size: tuple[int, int], frames: int, fps: int, credits: int
) -> None:
    request = remotion(*size, frames, fps)
    assert pricing.cost(request, pricing.duration_bound(request), SETTINGS) == credits
    assert pricing.estimate(request, REMOTION_SETTINGS).credits == credits


REMOTION_SETTINGS = SETTINGS.model_copy(
    update={"remotion_function_name": "fn", "remotion_serve_url": "https://s", "remotion_bucket": "rb"}
)


def test_remotion_needs_a_configured_function_before_any_limit() -> None:
    with pytest.raises(EngineNotConfigured, match="engine: remotion is not configured"):
        pricing.check(remotion(1920, 1080, 99999 // 30), "u", SETTINGS)
    pricing.check(remotion(1920, 1080, 3600), "u", REMOTION_SETTINGS)
    with pytest.raises(InvalidRequest, match="durationInFrames"):
        pricing.check(remotion(1920, 1080, 3601), "u", REMOTION_SETTINGS)
