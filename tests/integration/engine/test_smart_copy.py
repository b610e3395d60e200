"""Smart copy: sources that already match the output are copied packet for packet, never re-encoded."""

from __future__ import annotations

from typing import Any

import pytest

from render_service.engines.ffmpeg import plan_render, planned_commands

OUT = {"resolution": "720p", "aspectRatio": "16:9", "fps": 30, "quality": "medium"}


@pytest.fixture
def hd_sources(media: Any, upload: Any) -> dict[str, str]:
    # superfast uses B-frames, so copies must cope with reordering and edit lists.
    common = {"size": "1280x720", "seconds": 2.0, "keyint": 30, "preset": "superfast"}
    return {
        "red": upload(media.clip("hd-red", color="red", **common)),
        "pattern": upload(media.clip("hd-pattern", tone=660, **common)),
    }


def _all_args(argvs: list[list[str]]) -> str:
    return " ".join(" ".join(argv) for argv in argvs)


def test_matching_clips_plan_no_encode_and_render_correctly(
    render: Any, hd_sources: dict[str, str], media_check: Any, settings: Any
) -> None:
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": hd_sources["red"]},
                {"type": "clip", "src": hd_sources["pattern"], "trimStart": 1.0, "duration": 1.0},
                {"type": "clip", "src": hd_sources["red"], "duration": 1.0, "volume": 0.5},
            ]
        },
        "output": OUT,
    }
    result = render(request)
    commands = planned_commands(result.plan, settings)
    decoded = media_check.decode(result.path)

    assert [c.mode for c in result.plan.chunks] == ["copy", "copy", "copy"]
    assert "libx264" not in _all_args(commands)
    assert all("-c:v copy" in " ".join(argv) for argv in commands)
    assert decoded.frames == result.plan.total_frames == 120
    assert abs(decoded.audio_seconds - decoded.video_seconds) <= 1 / 30
    assert (decoded.width, decoded.height, decoded.video_codec, decoded.pix_fmt) == (1280, 720, "h264", "yuv420p")
    red = media_check.frame_rgb(result.path, 10)
    assert red[0] > 200
    assert red[1] < 50
    assert media_check.frame_spread(result.path, 75) > 100  # the test pattern, from its second second
    assert media_check.frame_rgb(result.path, 110)[0] > 200


def test_cuts_off_keyframes_or_other_sizes_are_encoded(
    s3: Any, settings: Any, hd_sources: dict[str, str], media: Any, upload: Any
) -> None:
    small = upload(media.clip("small-red", color="red"))
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": hd_sources["red"], "trimStart": 0.5},  # not on a keyframe
                {"type": "clip", "src": small},  # 320x180 into 1280x720
                {"type": "clip", "src": hd_sources["pattern"], "duration": 1.5},  # ends between keyframes
            ]
        },
        "output": OUT,
    }
    from render_service.models.timeline import RenderRequest

    plan = plan_render(
        "r-mixed", RenderRequest.model_validate(request), s3=s3, bucket=settings.bucket_name, settings=settings
    )

    assert plan.encode_chunks == len(plan.chunks)
    assert "libx264" in _all_args(planned_commands(plan, settings))


def test_copied_and_encoded_chunks_join_into_one_decodable_file(
    render: Any, hd_sources: dict[str, str], media_check: Any
) -> None:
    request = {
        "timeline": {
            "scenes": [
                {"type": "title", "text": "Intro", "duration": 1.0},
                {"type": "clip", "src": hd_sources["pattern"]},
                {"type": "clip", "src": hd_sources["red"], "trimStart": 0.5},
            ]
        },
        "output": OUT,
    }
    result = render(request)
    decoded = media_check.decode(result.path)

    assert [c.mode for c in result.plan.chunks] == ["encode", "copy", "encode"]
    assert decoded.frames == result.plan.total_frames == 30 + 60 + 45
    assert abs(decoded.audio_seconds - decoded.video_seconds) <= 1 / 30
    assert media_check.frame_spread(result.path, 15) > 100  # title
    assert media_check.frame_spread(result.path, 60) > 100  # copied pattern
    assert media_check.frame_rgb(result.path, 120)[0] > 200  # encoded red
