"""A chunk worker's half of the engine: one ChunkSpec in, one MP4 in S3 out."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from render_service import errors, sources, storage
from render_service.engines.ffmpeg import limits, titles
from render_service.engines.ffmpeg.commands import ChunkPaths, PixelBounds, StillFrames, chunk_argv
from render_service.engines.ffmpeg.models import ChunkSpec, SourceRef
from render_service.engines.ffmpeg.probe import ProbeError, scan_packets
from render_service.engines.ffmpeg.runner import run_ffmpeg
from render_service.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A Lambda runs at most 15 minutes; leave room for the downloads and the upload.
MAX_CHUNK_TIMEOUT_SECONDS = 780.0


def chunk_key(spec: ChunkSpec) -> str:
    return f"{storage.attempt_prefix(spec.render_id, spec.render_attempt)}chunk-{spec.index:04d}.mp4"


def chunk_timeout(spec: ChunkSpec) -> float:
    """Generous for x264 `medium` at 4K on 2 vCPUs (about 10 fps), bounded by the Lambda limit."""
    seconds = spec.frames / spec.fps
    scale = max(1.0, spec.width * spec.height / (1920 * 1080))
    return min(MAX_CHUNK_TIMEOUT_SECONDS, 60.0 + 8.0 * seconds * scale)


def write_title_texts(spec: ChunkSpec, paths: ChunkPaths) -> None:
    """The files the chunk's drawtext filters read (one per title line, or per typewriter prefix)."""
    for k, seg in enumerate(spec.segments):
        if seg.title is not None:
            for line, chars, text in titles.text_files(seg.title, seg.animation, seg.animation_frames):
                paths.title(k, line, chars).write_text(text, encoding="utf-8")


def render_chunk(
    spec: ChunkSpec,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    on_progress: Callable[[int], None],
    cancelled: Callable[[], bool] | None = None,
    timeout_seconds: float | None = None,
) -> str:
    """Download this chunk's inputs, run one ffmpeg, check the frame count, upload; returns the key.

    `cancelled` is asked every couple of seconds while ffmpeg runs; when it says the render
    has ended, ffmpeg is stopped and `RenderCancelled` raised.
    """
    paths = ChunkPaths.for_chunk(settings.work_dir, spec, attempt=uuid.uuid4().hex[:8])
    paths.root.mkdir(parents=True)
    try:
        encode_chunk(spec, paths, s3=s3, settings=settings, on_progress=on_progress, cancelled=cancelled,
                     timeout_seconds=timeout_seconds)  # fmt: skip
        key = chunk_key(spec)
        s3.upload_file(str(paths.output), bucket, key, ExtraArgs={"ContentType": "video/mp4"})
        return key
    finally:
        shutil.rmtree(paths.root, ignore_errors=True)


def place_source(ref: SourceRef, target: Path, *, s3: S3Client, local: Mapping[str, Path], where: str) -> bool:
    """A planned source at `target`: linked from the file planning fetched in the same step
    (`Prepared.local`, by key) when it kept one, else fetched again, pinned to the version planned.
    True when it was the kept file."""
    if ref.key in local:
        sources.link_or_copy(local[ref.key], target)
        return True
    sources.fetch_s3(
        s3, ref.bucket, ref.key, target, max_bytes=max(ref.size_bytes, 1), where=where, etag=ref.etag
    )  # fmt: skip
    return False


def encode_chunk(
    spec: ChunkSpec,
    paths: ChunkPaths,
    *,
    s3: S3Client,
    settings: Settings,
    on_progress: Callable[[int], None],
    local: Mapping[str, Path] | None = None,
    cancelled: Callable[[], bool] | None = None,
    timeout_seconds: float | None = None,
    final_audio_bitrate: str | None = None,
    stills: StillFrames | None = None,
) -> Path:
    """Render one chunk into `paths.output` and check its frame count. Its sources come from
    `local` (files already on disk, by key) where there, else from S3. `final_audio_bitrate`
    makes the chunk the finished output (see `chunk_argv`)."""
    used = sorted({seg.source for seg in spec.segments if seg.source is not None})
    for n in used:
        place_source(spec.sources[n], paths.source(spec, n), s3=s3, local=local or {},
                     where=f"chunk {spec.index} source {n}")  # fmt: skip
    write_title_texts(spec, paths)
    argv = chunk_argv(
        spec,
        paths,
        ffmpeg=settings.ffmpeg,
        fonts=settings.font,
        pixels=PixelBounds.of(settings),
        final_audio_bitrate=final_audio_bitrate,
        stills=stills,
    )
    timeout = timeout_seconds or chunk_timeout(spec)
    counted = [0]

    def progress(frames: int) -> None:
        counted[0] = frames
        on_progress(frames)

    run_ffmpeg(
        argv,
        timeout=timeout,
        budget=limits.budget(settings, timeout=timeout),
        on_progress=progress,
        cancelled=cancelled,
        what=f"chunk {spec.index}",
    )
    if final_audio_bitrate is not None:
        # The output is probed next anyway; ffmpeg's own count of the frames it wrote is exact.
        if counted[0] != spec.frames:
            raise errors.EncodeFailed(f"chunk {spec.index}: produced {counted[0]} frames, expected {spec.frames}")
        return paths.output
    try:
        produced = scan_packets(paths.output, settings=settings, demuxer="mov").frame_count
    except ProbeError as exc:
        raise errors.EncodeFailed(f"chunk {spec.index}: output unreadable ({exc})") from None
    if produced != spec.frames:
        raise errors.EncodeFailed(f"chunk {spec.index}: produced {produced} frames, expected {spec.frames}")
    return paths.output
