"""Clips only, S3 sources, encoded chunks, concat-copy join: the simple path end to end."""

from __future__ import annotations

from typing import Any

import av
import pytest

from render_service.engines.ffmpeg import plan_render, render_chunk
from render_service.models.timeline import RenderRequest

COLORS = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255)}


def _close(rgb: Any, expected: tuple[int, int, int], tol: float = 40) -> bool:
    return all(abs(float(c) - e) <= tol for c, e in zip(rgb, expected, strict=True))


@pytest.fixture
def rgb_clips(media: Any, upload: Any) -> list[str]:
    return [upload(media.clip(name, color=name, seconds=1.0)) for name in COLORS]


def test_clips_render_in_order_with_exact_duration(render: Any, rgb_clips: list[str], media_check: Any) -> None:
    request = {
        "timeline": {"scenes": [{"type": "clip", "src": src} for src in rgb_clips]},
        "output": {"resolution": "720p", "fps": 30, "quality": "low"},
    }
    result = render(request)
    decoded = media_check.decode(result.path)

    assert result.plan.total_frames == 90
    assert decoded.frames == 90
    assert abs(decoded.audio_seconds - decoded.video_seconds) <= 1 / 30
    assert (decoded.width, decoded.height, decoded.fps) == (1280, 720, 30)
    assert decoded.video_codec == "h264"
    assert decoded.audio_codec == "aac"
    assert (decoded.audio_rate, decoded.audio_channels) == (48000, 2)
    for index, color in ((15, "red"), (45, "lime"), (75, "blue")):
        assert _close(media_check.frame_rgb(result.path, index), COLORS[color]), (index, color)
    assert abs(result.info.duration_seconds - 3.0) <= 1 / 30


@pytest.fixture
def rgb_sequence(media: Any, upload: Any) -> str:
    return upload(media.sequence("rgb-seq", tuple(COLORS)))


def test_trims_pick_the_right_part_of_the_source(render: Any, rgb_sequence: str, media_check: Any) -> None:
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": rgb_sequence, "trimStart": 2.0},  # blue, to the end
                {"type": "clip", "src": rgb_sequence, "trimStart": 1.0, "duration": 1.0},  # green
                {"type": "clip", "src": rgb_sequence, "duration": 0.5},  # red
            ]
        },
        "output": {"resolution": "720p", "fps": 30, "quality": "low"},
    }
    result = render(request)
    decoded = media_check.decode(result.path)

    assert decoded.frames == result.plan.total_frames == 30 + 30 + 15
    for index, color in ((1, "blue"), (28, "blue"), (31, "lime"), (58, "lime"), (61, "red"), (74, "red")):
        assert _close(media_check.frame_rgb(result.path, index), COLORS[color]), (index, color)


def test_chunked_render_equals_single_pass(render: Any, rgb_sequence: str, media_check: Any) -> None:
    request = {
        "timeline": {"scenes": [{"type": "clip", "src": rgb_sequence, "trimStart": 0.3, "volume": 1.5}]},
        "output": {"resolution": "720p", "fps": 25, "quality": "low"},
    }
    chunked = render(request, render_id="r-chunked", chunk_seconds=0.5)
    single = render(request, render_id="r-single", chunk_seconds=60)
    a, b = media_check.decode(chunked.path), media_check.decode(single.path)

    assert len(chunked.plan.chunks) >= 4
    assert len(single.plan.chunks) == 1
    assert a.frames == b.frames == round(2.7 * 25)
    assert abs(a.audio_seconds - b.audio_seconds) <= 1 / 25
    assert abs(a.audio_seconds - a.video_seconds) <= 1 / 25
    assert abs(chunked.info.duration_seconds - single.info.duration_seconds) <= 1 / 25
    # The audio track, encoded once for the whole timeline beside the video-only chunks: no gap or
    # priming silence at any chunk boundary, and the same sound as the single pass, in time.
    assert chunked.plan.audio is not None
    assert all(c.video_only for c in chunked.plan.chunks)
    steady = media_check.audio_rms(chunked.path, 0.1, 2.6)
    for chunk in chunked.plan.chunks[1:]:
        at = chunk.start_frame / 25
        assert media_check.audio_rms(chunked.path, at - 0.01, at + 0.01) == pytest.approx(steady, rel=0.15), at
    (x, _), (y, _) = media_check.mono_samples(chunked.path), media_check.mono_samples(single.path)
    assert len(x) == len(y)
    # Two AAC encodes of the same samples differ a little (-40 dB here), and least when aligned.
    peak = max(abs(v) for v in y)
    error = {lag: _mean_difference(x, y, lag) for lag in (-1, 0, 1)}
    assert error[0] < 0.02 * peak, error
    assert error[0] < min(error[-1], error[1]) / 2, error
    for index, (x, y) in enumerate(
        zip(media_check.frame_means(chunked.path), media_check.frame_means(single.path), strict=True)
    ):
        assert _close(x, y, tol=10), index


def _mean_difference(x: list[float], y: list[float], lag: int) -> float:
    pairs = list(zip(x[max(lag, 0) :], y[max(-lag, 0) :], strict=False))  # the overlap
    return sum(abs(p - q) for p, q in pairs) / len(pairs)


def test_every_chunk_has_exact_frames_samples_and_the_same_parameter_sets(
    s3: Any, settings: Any, rgb_sequence: str, media: Any, upload: Any, tmp_path: Any
) -> None:

    title = {"type": "title", "text": "Chunks", "duration": 1.0}
    fade = {"type": "fade", "duration": 0.4}
    request = RenderRequest.model_validate(
        {
            "timeline": {"scenes": [title, {"type": "clip", "src": rgb_sequence, "transition": fade}]},
            "output": {"resolution": "720p", "fps": 30, "quality": "low"},
        }
    )
    plan = plan_render("r-chunks", request, s3=s3, bucket=settings.bucket_name, settings=settings, chunk_seconds=0.7)
    extradata = set()
    for spec in plan.chunks:
        key = render_chunk(spec, s3=s3, bucket=settings.bucket_name, settings=settings, on_progress=lambda _: None)
        local = tmp_path / key.rsplit("/", 1)[-1]
        s3.download_file(settings.bucket_name, key, str(local))
        with av.open(str(local)) as container:
            video = container.streams.video[0]
            extradata.add(bytes(video.codec_context.extradata or b""))
            frames = list(container.decode(video=0))
        with av.open(str(local)) as container:
            assert not container.streams.audio, "the audio track is encoded apart (audio_track.py)"
        assert len(frames) == spec.frames, spec.index
        assert frames[0].key_frame, spec.index
    assert len(plan.chunks) >= 4
    assert len(extradata) == 1  # identical SPS/PPS: the concat copy join is clean
