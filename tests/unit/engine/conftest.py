"""Unit fixtures for the engine: probed sources described by hand, no ffmpeg, no network."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from render_service.engines.ffmpeg.models import SourceRef
from render_service.engines.ffmpeg.plan import SourceInfo
from render_service.engines.ffmpeg.probe import AudioStream, Packet, Probe, VideoPackets, VideoStream


def fake_clip(
    *,
    seconds: float = 2.0,
    fps: int = 30,
    size: tuple[int, int] = (1280, 720),
    keyint: int = 30,
    codec: str = "h264",
    profile: str = "High",
    pix_fmt: str = "yuv420p",
    audio: bool = True,
    open_gop: bool = False,
    key: str = "clip.mp4",
    config: str | None = "ours",
) -> SourceInfo:
    """A probed clip: constant frame rate, a keyframe every `keyint` frames, time base 1/(fps*512).

    With `open_gop`, every keyframe after the first is followed (in decode order) by a
    frame shown before it, as open-GOP encoders do. `config` is its video configuration
    (`VideoPackets.video_config`); the tests' planner takes "ours" for our encoder's.
    """
    tick = 512
    count = round(seconds * fps)
    packets = [Packet(pts=i * tick, dts=i * tick, duration=tick, key=i % keyint == 0) for i in range(count)]
    if open_gop:
        for i in range(keyint, count - 1, keyint):
            # decode order: key (pts i), then the leading picture (pts i-1)
            packets[i - 1], packets[i] = packets[i], packets[i - 1]
    probe = Probe(
        demuxer="mov,mp4,m4a,3gp,3g2,mj2",
        duration_seconds=seconds,
        start_seconds=0.0,
        video=VideoStream(
            codec=codec, profile=profile, pix_fmt=pix_fmt, width=size[0], height=size[1], sar=Fraction(1), fps=fps
        ),
        audio=AudioStream(codec="aac", sample_rate=48000, channels="stereo") if audio else None,
    )
    ref = SourceRef(bucket="media", key=key, etag='"abc"', size_bytes=1000, ext=".mp4", demuxer="mov", has_audio=audio)
    listing = VideoPackets(time_base=Fraction(1, fps * tick), packets=packets, video_config=config)
    return SourceInfo(ref=ref, probe=probe, packets=listing)


def fake_image(key: str = "still.png") -> SourceInfo:
    probe = Probe(
        demuxer="png_pipe",
        duration_seconds=None,
        start_seconds=0.0,
        video=VideoStream(codec="png", profile=None, pix_fmt="rgb24", width=640, height=480, sar=Fraction(1), fps=25),
        audio=None,
    )
    ref = SourceRef(bucket="media", key=key, size_bytes=10, ext=".png", demuxer="png_pipe", has_audio=False)
    return SourceInfo(ref=ref, probe=probe)


@pytest.fixture
def clip() -> Callable[..., SourceInfo]:
    return fake_clip


@pytest.fixture
def image() -> Callable[..., SourceInfo]:
    return fake_image


@pytest.fixture
def request_of() -> Callable[..., Any]:
    """A RenderRequest from scenes (dicts) and output fields."""
    from render_service.models.timeline import RenderRequest

    def make(scenes: list[dict[str, Any]], subject: dict[str, str] | None = None, **output: Any) -> RenderRequest:
        body: dict[str, Any] = {"timeline": {"scenes": scenes}, "output": {"resolution": "720p", **output}}
        if subject:
            body["subject"] = subject
        return RenderRequest.model_validate(body)

    return make
