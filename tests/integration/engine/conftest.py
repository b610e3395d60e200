"""Engine integration fixtures: tiny synthetic media (ffmpeg lavfi), moto S3, an end-to-end render helper.

Media are generated once per session at 320x180 and 1-2 s so the whole tier runs in seconds
on two cores. PyAV is the independent checker: it decodes what our ffmpeg wrote.
"""

from __future__ import annotations

import subprocess
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import boto3
import imageio_ffmpeg
import pytest
from moto import mock_aws

from render_service.engines.ffmpeg import (
    JoinedOutput,
    RenderPlan,
    StillKeys,
    encode_audio_track,
    join_chunks,
    plan_render,
    render_chunk,
)
from render_service.models.timeline import RenderRequest
from render_service.settings import Settings

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SERVICE_BUCKET = "svc-bucket"
MEDIA_BUCKET = "media-bucket"


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@dataclass(frozen=True)
class MediaFactory:
    root: Path

    def clip(
        self,
        name: str,
        *,
        color: str | None = None,
        seconds: float = 1.0,
        size: str = "320x180",
        fps: int = 30,
        audio: bool = True,
        tone: int = 440,
        keyint: int | None = None,
        crf: int = 30,
        preset: str = "ultrafast",
    ) -> Path:
        """An H.264 (+AAC 48k stereo) MP4; a solid colour or the testsrc2 pattern."""
        path = self.root / f"{name}.mp4"
        if path.exists():
            return path
        video = f"color=c={color}:s={size}:r={fps}:d={seconds}" if color else f"testsrc2=s={size}:r={fps}:d={seconds}"
        args = ["-f", "lavfi", "-i", video]
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=f={tone}:r=48000:d={seconds}"]
        args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
        args += ["-g", str(keyint or fps)]
        if audio:
            args += ["-c:a", "aac", "-ac", "2", "-ar", "48000"]
        _ffmpeg(*args, str(path))
        return path

    def sequence(self, name: str, colors: tuple[str, ...], *, fps: int = 30) -> Path:
        """One second of each colour in turn (red, lime, blue: trims are checked by colour)."""
        path = self.root / f"{name}.mp4"
        if path.exists():
            return path
        args: list[str] = []
        for color in colors:
            args += ["-f", "lavfi", "-i", f"color=c={color}:s=320x180:r={fps}:d=1"]
        args += ["-f", "lavfi", "-i", f"sine=f=440:r=48000:d={len(colors)}"]
        chain = "".join(f"[{i}:v]" for i in range(len(colors))) + f"concat=n={len(colors)}:v=1:a=0[v]"
        args += ["-filter_complex", chain, "-map", "[v]", "-map", f"{len(colors)}:a"]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2"]
        _ffmpeg(*args, str(path))
        return path

    def image(self, name: str, *, color: str = "yellow", size: str = "200x200") -> Path:
        path = self.root / f"{name}.png"
        if not path.exists():
            _ffmpeg("-f", "lavfi", "-i", f"color=c={color}:s={size}", "-frames:v", "1", str(path))
        return path

    def tone(self, name: str, *, seconds: float = 1.0, freq: int = 220) -> Path:
        path = self.root / f"{name}.m4a"
        if not path.exists():
            _ffmpeg("-f", "lavfi", "-i", f"sine=f={freq}:r=44100:d={seconds}", "-c:a", "aac", str(path))
        return path

    def garbage(self, name: str) -> Path:
        path = self.root / name
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
        return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaFactory:
    return MediaFactory(tmp_path_factory.mktemp("media"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        table_name="renders",
        bucket_name=SERVICE_BUCKET,
        allowed_source_buckets=(MEDIA_BUCKET,),
        work_dir=tmp_path / "work",
    )


@pytest.fixture
def s3(fake_aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (SERVICE_BUCKET, MEDIA_BUCKET, "other-bucket"):
            client.create_bucket(Bucket=bucket)
        yield client


@pytest.fixture
def upload(s3: Any) -> Callable[..., str]:
    def put(path: Path, key: str | None = None, bucket: str = MEDIA_BUCKET) -> str:
        key = key or path.name
        s3.upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{key}"

    return put


@dataclass
class Rendered:
    plan: RenderPlan
    info: JoinedOutput
    path: Path
    progress: dict[int, list[int]]


@pytest.fixture
def render(s3: Any, settings: Settings, tmp_path: Path) -> Callable[..., Rendered]:
    """Plan, render every chunk (two at a time, like the async workers), join, download the result."""

    def run(
        request: dict[str, Any] | RenderRequest,
        *,
        render_id: str = "r-test",
        chunk_seconds: float = 15.0,
        stills: StillKeys | None = None,
    ) -> Rendered:
        req = request if isinstance(request, RenderRequest) else RenderRequest.model_validate(request)
        plan = plan_render(render_id, req, s3=s3, bucket=SERVICE_BUCKET, settings=settings, chunk_seconds=chunk_seconds)
        # Round-trip through JSON, as the workflow stores specs in DynamoDB.
        plan = RenderPlan.model_validate_json(plan.model_dump_json())
        progress: dict[int, list[int]] = {c.index: [] for c in plan.chunks}
        if plan.remux:  # as StartRender does: no chunk worker, the staged sources are the chunks
            keys = [spec.sources[0].key for spec in plan.chunks]
        else:
            keys = _render_chunks(plan, s3, settings, progress)
        if plan.audio is not None:  # as StartRender does, beside the chunks
            encode_audio_track(plan, {}, s3=s3, bucket=SERVICE_BUCKET, settings=settings)
        dest = f"renders/u/{render_id}.mp4"
        info = join_chunks(plan, keys, dest, s3=s3, bucket=SERVICE_BUCKET, settings=settings, stills=stills)
        local = tmp_path / f"{render_id}.mp4"
        s3.download_file(SERVICE_BUCKET, dest, str(local))
        return Rendered(plan=plan, info=info, path=local, progress=progress)

    return run


def _render_chunks(plan: RenderPlan, s3: Any, settings: Settings, progress: dict[int, list[int]]) -> list[str]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(
            pool.map(
                lambda spec: render_chunk(
                    spec, s3=s3, bucket=SERVICE_BUCKET, settings=settings, on_progress=progress[spec.index].append
                ),
                plan.chunks,
            )
        )


@dataclass(frozen=True)
class Decoded:
    """What PyAV sees in a file: the independent check of our ffmpeg output."""

    frames: int
    video_seconds: float
    audio_seconds: float
    width: int
    height: int
    fps: Fraction
    sar: Fraction | None
    video_codec: str
    audio_codec: str | None
    pix_fmt: str
    audio_rate: int | None
    audio_channels: int | None


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        width, height, fps = vs.codec_context.width, vs.codec_context.height, vs.average_rate
        sar, pix_fmt, vcodec = vs.sample_aspect_ratio, vs.codec_context.pix_fmt, vs.codec_context.name
    audio_seconds, acodec, rate, channels = 0.0, None, None, None
    with av.open(str(path)) as container:
        if container.streams.audio:
            a = container.streams.audio[0]
            acodec, rate, channels = a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels
            samples = sum(f.samples for f in container.decode(audio=0))
            audio_seconds = samples / rate
    return Decoded(
        frames=frames,
        video_seconds=frames / float(fps),
        audio_seconds=audio_seconds,
        width=width,
        height=height,
        fps=fps,
        sar=sar,
        video_codec=vcodec,
        audio_codec=acodec,
        pix_fmt=pix_fmt,
        audio_rate=rate,
        audio_channels=channels,
    )


def _rgb(frame: av.VideoFrame, width: int, height: int) -> list[tuple[int, int, int]]:
    small = frame.reformat(width=width, height=height, format="rgb24")
    plane = small.planes[0]
    rows = bytes(plane)
    pixels = []
    for y in range(height):
        row = rows[y * plane.line_size : y * plane.line_size + width * 3]
        pixels += [(row[i], row[i + 1], row[i + 2]) for i in range(0, width * 3, 3)]
    return pixels


def _frame(path: Path, index: int) -> av.VideoFrame:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame
    raise IndexError(index)


def frame_rgb(path: Path, index: int) -> tuple[float, float, float]:
    """The mean RGB of video frame `index` (in presentation order)."""
    pixels = _rgb(_frame(path, index), 32, 18)
    return tuple(sum(p[c] for p in pixels) / len(pixels) for c in range(3))  # type: ignore[return-value]


def frame_means(path: Path) -> list[tuple[float, float, float]]:
    """The mean RGB of every frame, in one decoding pass."""
    means = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            pixels = _rgb(frame, 16, 9)
            means.append(tuple(sum(p[c] for p in pixels) / len(pixels) for c in range(3)))
    return means  # type: ignore[return-value]


def frame_spread(path: Path, index: int) -> float:
    """How far the frame is from uniform: the largest per-channel range over a 128x72 thumbnail."""
    pixels = _rgb(_frame(path, index), 128, 72)
    return float(max(max(p[c] for p in pixels) - min(p[c] for p in pixels) for c in range(3)))


def mono_samples(path: Path) -> tuple[list[float], int]:
    """The first audio stream decoded to mono float samples, and its sample rate."""
    values: list[float] = []
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                values.extend(array("f", bytes(out.planes[0]))[: out.samples])
    return values, rate


def audio_rms(path: Path, start: float, end: float) -> float:
    """RMS of the first channel between two times (decoded as float samples)."""
    values, rate = mono_samples(path)
    window = values[int(start * rate) : int(end * rate)]
    return (sum(v * v for v in window) / max(len(window), 1)) ** 0.5


@pytest.fixture(scope="session")
def media_check() -> Any:
    """The PyAV helpers, as a fixture (tests are files, not a package)."""

    class Check:
        decode = staticmethod(decode)
        frame_rgb = staticmethod(frame_rgb)
        frame_means = staticmethod(frame_means)
        frame_spread = staticmethod(frame_spread)
        audio_rms = staticmethod(audio_rms)
        mono_samples = staticmethod(mono_samples)

    return Check
