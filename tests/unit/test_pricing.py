"""Cost, duration bounds and the configuration-dependent rules of a request."""

from __future__ import annotations

from typing import Any

import pytest

from render_service.errors import InvalidRequest
from render_service.logic import pricing
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
