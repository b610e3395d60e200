"""StartRender's half of the engine: fetch and probe every source once, then plan.

Each distinct source is downloaded once, probed and scanned (clips), a few at a time in
parallel (downloads wait on the network, probes on ffmpeg). The files stay on disk while the
step runs, up to `KEEP_BYTES`, because a plan that renders inline (a remux, a single chunk;
see `RenderPlan.inline`) is made from them right away. Probing is bounded by the media bounds
in `Settings` (pixels, duration, packets; see `limits.py`), and a clip's packets are listed only
in the windows its cuts use.

Staging, only for plans that chunk workers render: https sources are uploaded into the service
bucket (`work/<renderId>/sources/<n><ext>`) so that chunk workers, in other Lambda containers,
read them from S3 and never fetch the internet again; uploads in the service bucket are copied
there too (server-side, pinned to the version probed), so the ffmpeg functions never need
access to other users' inputs. Nothing is written to DynamoDB.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from render_service import errors, sources
from render_service.engines.ffmpeg import commands, limits
from render_service.engines.ffmpeg.commands import encoding_for
from render_service.engines.ffmpeg.models import Encoding, RenderPlan, SourceRef
from render_service.engines.ffmpeg.plan import DEFAULT_CHUNK_SECONDS, MAX_OUTPUT_SECONDS, SourceInfo, build_plan
from render_service.engines.ffmpeg.probe import (
    PROBE_TIMEOUT_SECONDS,
    Packet,
    PixelsExceeded,
    Probe,
    ProbeError,
    TooManyPackets,
    VideoPackets,
    count_audio_packets,
    inspect,
    inspect_and_scan,
    scan_packets,
    video_config,
)
from render_service.engines.ffmpeg.runner import run_capture
from render_service.models.timeline import MAX_SOURCE_BYTES, ClipScene, ImageScene, RenderRequest
from render_service.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SOURCES_BUDGET_SECONDS = 210.0
"""All https downloads of one render together: StartRender has 5 minutes, and needs the rest to
probe, stage and plan. A render whose sources are this slow fails as SOURCE_UNAVAILABLE."""


SCAN_LEAD_SECONDS = 2.0
"""Packets listed before a cut: the seek lands on the keyframe before it, and B-frames near the
cut may show before it; smart copy checks that nothing crosses the cut."""
SCAN_TAIL_SECONDS = 2.0
"""Packets listed after a cut's end: smart copy needs the packet that follows it."""
AUDIO_CHECK_SECONDS = 10.0
"""A soundtrack must have samples within this much of its start."""
PARALLEL_SOURCES = 4
"""Sources fetched and probed at once: downloads overlap each other and the probes' ffmpeg."""
KEEP_BYTES = 4 << 30
"""Fetched sources kept on the planner's disk (10 GiB of Lambda ephemeral storage) for an inline render."""


@dataclass(frozen=True)
class SourceUse:
    """One scene's (or the soundtrack's) use of a source."""

    src: str
    where: str  # e.g. "scenes[2].src", for error messages
    kind: str  # "clip" | "image" | "soundtrack"
    trim: float = 0.0  # clips: the cut
    duration: float | None = None


def staged_key(render_id: str, n: int, ext: str) -> str:
    return f"work/{render_id}/sources/{n}{ext}"


@dataclass
class Stage:
    """How a fetched source reaches work/<renderId>/sources/, should chunk workers need it."""

    key: str
    local: Path
    copy_from: sources.S3Location | None = None  # an upload in the service bucket: a server-side copy
    etag: str | None = None  # the version probed, which the copy must be


@dataclass
class Prepared:
    """A plan, and the fetched sources still on disk (by their key in the plan)."""

    plan: RenderPlan
    local: dict[str, Path] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)

    def stage(self, s3: S3Client, bucket: str) -> RenderPlan:
        """Put every source the plan's chunk workers read into work/<renderId>/sources/, and pin
        the plan's references to the versions written (a few at once; the first failure, in
        timeline order, is raised)."""
        with ThreadPoolExecutor(max_workers=PARALLEL_SOURCES, thread_name_prefix="stage") as pool:
            etags = dict(pool.map(lambda stage: (stage.key, _stage_one(stage, s3, bucket)), self.stages))

        def pin(ref: SourceRef) -> SourceRef:
            return ref.model_copy(update={"etag": etags[ref.key]}) if ref.key in etags else ref

        plan = self.plan
        chunks = [c.model_copy(update={"sources": [pin(r) for r in c.sources]}) for c in plan.chunks]
        soundtrack = plan.soundtrack
        if soundtrack is not None:
            soundtrack = soundtrack.model_copy(update={"source": pin(soundtrack.source)})
        audio = plan.audio
        if audio is not None:
            audio = audio.model_copy(update={"sources": [pin(r) for r in audio.sources]})
        self.plan = plan.model_copy(
            update={
                "chunks": chunks,
                "soundtrack": soundtrack,
                "audio": audio,
                "staged_keys": [s.key for s in self.stages],
            }
        )
        return self.plan


def _stage_one(stage: Stage, s3: S3Client, bucket: str) -> str | None:
    """One source into work/<renderId>/sources/; the ETag of what was written."""
    if stage.copy_from is None:
        s3.upload_file(str(stage.local), bucket, stage.key)
        return s3.head_object(Bucket=bucket, Key=stage.key).get("ETag")
    try:
        copied = s3.copy_object(
            Bucket=bucket,
            Key=stage.key,
            CopySource={"Bucket": stage.copy_from.bucket, "Key": stage.copy_from.key},
            CopySourceIfMatch=stage.etag or "*",
        )
    except ClientError as exc:
        raise errors.SourceUnavailable(f"{stage.key}: changed or disappeared while the render started") from exc
    return copied["CopyObjectResult"].get("ETag")


def plan_render(
    render_id: str,
    request: RenderRequest,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    smart_copy: bool = True,
    fetch_https: sources.HttpsFetcher | None = None,
) -> RenderPlan:
    """A plan for chunk workers: every source fetched, checked, probed and staged (see `prepare_render`)."""
    with prepare_render(
        render_id, request, s3=s3, bucket=bucket, settings=settings, chunk_seconds=chunk_seconds,
        smart_copy=smart_copy, fetch_https=fetch_https,
    ) as prepared:  # fmt: skip
        return prepared.stage(s3, bucket)


@contextmanager
def prepare_render(
    render_id: str,
    request: RenderRequest,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    smart_copy: bool = True,
    fetch_https: sources.HttpsFetcher | None = None,
) -> Iterator[Prepared]:
    """Fetch, check and probe the sources, then plan the chunks (see `plan.py`); the fetched files
    stay on disk until the block ends. Nothing is staged yet (`Prepared.stage`).

    `chunk_seconds` is the target chunk length; `smart_copy=False` encodes every chunk
    (a kill switch, and the benchmark's baseline); `fetch_https` replaces the
    SSRF-guarded downloader in tests.
    """
    uses = _uses(request)
    # Refuse disallowed buckets before downloading anything.
    for use in uses:
        if not use.src.startswith("https://"):
            sources.check_s3_allowed(use.src, settings.source_buckets, where=use.where)
    deadline = time.monotonic() + SOURCES_BUDGET_SECONDS
    root = settings.work_dir / render_id / f"plan-{uuid.uuid4().hex[:8]}"
    kept = _Kept(KEEP_BYTES)

    def one(n: int, src: str) -> tuple[SourceInfo, Stage | None, Path | None]:
        mine = [u for u in uses if u.src == src]
        local = root / f"src-{n}{_suffix(src)}"
        ref, stage = _fetch(
            render_id, n, src, local, mine[0].where, s3=s3, bucket=bucket, settings=settings, fetch=fetch_https,
            deadline=deadline,
        )  # fmt: skip
        info = inspect_source(local, ref, mine, settings)
        if stage is None and not kept.take(ref.size_bytes):
            local.unlink(missing_ok=True)
            return info, None, None
        return info, stage, local

    try:
        root.mkdir(parents=True, exist_ok=True)
        distinct = list(dict.fromkeys(u.src for u in uses))
        infos: dict[str, SourceInfo] = {}
        prepared = Prepared(plan=None)  # type: ignore[arg-type]  # set below
        for src, (info, stage, local) in zip(distinct, _in_parallel(one, distinct), strict=True):
            infos[src] = info
            if stage is not None:
                prepared.stages.append(stage)
            if local is not None:
                prepared.local[info.ref.key] = local
        plan = build_plan(
            render_id, request, infos, chunk_seconds=chunk_seconds, smart_copy=smart_copy,
            encoder_config=lambda: _encoder_config(request, settings),
        )  # fmt: skip
        prepared.plan = plan
        yield prepared
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Kept:
    """Bytes of fetched sources kept on disk, bounded (shared by the fetching threads)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.lock = limit, 0, threading.Lock()

    def take(self, size: int) -> bool:
        with self.lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            return True


def _in_parallel(
    one: Callable[[int, str], tuple[SourceInfo, Stage | None, Path | None]], distinct: list[str]
) -> list[tuple[SourceInfo, Stage | None, Path | None]]:
    """`one` for every source, a few at once; the first failure in timeline order is raised (the
    same error a one-by-one run would report), and sources not started yet are not fetched."""
    if len(distinct) <= 1:
        return [one(n, src) for n, src in enumerate(distinct)]
    pool = ThreadPoolExecutor(max_workers=PARALLEL_SOURCES, thread_name_prefix="source")
    futures: list[Future[tuple[SourceInfo, Stage | None, Path | None]]] = [
        pool.submit(one, n, src) for n, src in enumerate(distinct)
    ]
    try:
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _encoder_config(request: RenderRequest, settings: Settings) -> str | None:
    width, height = request.output.size
    fps = request.output.fps
    return encoder_config(settings, width, height, fps, encoding_for(request.output.quality, fps))


_CONFIGS: dict[tuple[str, int, int, int, Encoding], str | None] = {}
_CONFIGS_LOCK = threading.Lock()


def encoder_config(settings: Settings, width: int, height: int, fps: int, encoding: Encoding) -> str | None:
    """The video configuration (as `VideoPackets.video_config`) our chunks get for
    an output: one frame encoded with their settings, once per output shape in a container."""
    key = (settings.ffmpeg, width, height, fps, encoding)
    with _CONFIGS_LOCK:
        if key in _CONFIGS:
            return _CONFIGS[key]
    out = settings.work_dir / f"encoder-config-{uuid.uuid4().hex[:8]}.mp4"
    found: str | None = None
    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        run_capture(
            commands.encoder_config_argv(settings.ffmpeg, width, height, fps, encoding, out),
            timeout=PROBE_TIMEOUT_SECONDS,
            budget=limits.budget(settings, timeout=PROBE_TIMEOUT_SECONDS),
            what="measuring the encoder's configuration",
        )
        found = video_config(out, settings=settings, demuxer="mov")
    except (ProbeError, errors.ServiceError, OSError, subprocess.SubprocessError):
        return None  # no copy next to encoded scenes: always safe (and not remembered)
    finally:
        out.unlink(missing_ok=True)
    with _CONFIGS_LOCK:
        _CONFIGS[key] = found
    return found


def _uses(request: RenderRequest) -> list[SourceUse]:
    uses = []
    for i, scene in enumerate(request.timeline.scenes):
        if isinstance(scene, ClipScene):
            uses.append(SourceUse(scene.src, f"scenes[{i}].src", "clip", scene.trimStart, scene.duration))
        elif isinstance(scene, ImageScene):
            uses.append(SourceUse(scene.src, f"scenes[{i}].src", "image"))
    if request.timeline.soundtrack is not None:
        uses.append(SourceUse(request.timeline.soundtrack.src, "timeline.soundtrack.src", "soundtrack"))
    return uses


def _suffix(src: str) -> str:
    return sources.suffix_of(src.split("?", 1)[0].split("#", 1)[0])


def _fetch(
    render_id: str,
    n: int,
    src: str,
    local: Path,
    where: str,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    fetch: sources.HttpsFetcher | None,
    deadline: float,
) -> tuple[SourceRef, Stage | None]:
    """Download one source; its reference as chunk workers would read it, and how to stage it there."""
    if src.startswith("https://"):
        got = (fetch or sources.fetch_https)(src, local, max_bytes=MAX_SOURCE_BYTES, where=where, deadline=deadline)
        key = staged_key(render_id, n, local.suffix)
        ref = SourceRef(
            bucket=bucket, key=key, etag=None, size_bytes=got.size_bytes, ext=local.suffix, demuxer="", has_audio=False
        )
        return ref, Stage(key=key, local=local)
    loc = sources.check_s3_allowed(src, settings.source_buckets, where=where)
    got = sources.fetch_s3(s3, loc.bucket, loc.key, local, max_bytes=MAX_SOURCE_BYTES, where=where)
    if loc.bucket == bucket:
        # Uploads are copied (server-side, pinned to the version just probed) next to the render,
        # so the functions that run ffmpeg need read access to work/<id>/ only, never to every
        # user's inputs/.
        key = staged_key(render_id, n, local.suffix)
        ref = SourceRef(
            bucket=bucket, key=key, etag=got.etag, size_bytes=got.size_bytes, ext=local.suffix, demuxer="",
            has_audio=False,
        )  # fmt: skip
        return ref, Stage(key=key, local=local, copy_from=loc, etag=got.etag)
    ref = SourceRef(
        bucket=loc.bucket,
        key=loc.key,
        etag=got.etag,
        size_bytes=got.size_bytes,
        ext=local.suffix,
        demuxer="",
        has_audio=False,
    )
    return ref, None


def inspect_source(local: Path, ref: SourceRef, mine: list[SourceUse], settings: Settings) -> SourceInfo:
    """Probe a fetched source for its uses, within the media bounds. Raises RenderFailure subclasses."""
    kinds = {u.kind for u in mine}
    where = mine[0].where
    formats: tuple[str, ...] = ()
    if "clip" in kinds:
        formats += commands.VIDEO_FORMATS
    if "image" in kinds:
        formats += commands.IMAGE_FORMATS
    if "soundtrack" in kinds:
        formats += commands.AUDIO_FORMATS
    max_pixels = settings.max_image_pixels if "image" in kinds else settings.max_video_pixels
    clips = [u for u in mine if u.kind == "clip"]
    merged = None
    if kinds == {"clip"}:
        spans = cut_windows([(u.trim, u.duration) for u in clips])
        (start, end), *_ = spans
        merged = inspect_and_scan(
            local, settings=settings, formats=formats, max_pixels=max_pixels, start=start, duration=end - start,
            max_packets=limits.MAX_WINDOW_PACKETS, adts=_whole_file(spans),
        )  # fmt: skip
    try:
        info: Probe = (
            merged[0]
            if merged is not None
            else inspect(local, settings=settings, formats=tuple(dict.fromkeys(formats)), max_pixels=max_pixels)
        )
    except PixelsExceeded as exc:
        kind = "image" if "image" in kinds else "video"
        raise _too_many_pixels(where, kind, exc.width, exc.height, settings) from None
    except ProbeError as exc:
        raise errors.SourceInvalid(f"{where}: not a readable media file ({exc})") from None
    except errors.ResourceLimitExceeded as exc:
        raise errors.ResourceLimitExceeded(f"{where}: {exc.message}") from None
    demuxer = info.demuxer.split(",")[0]
    if "clip" in kinds and (info.video is None or demuxer not in commands.VIDEO_FORMATS):
        raise errors.SourceInvalid(f"{where}: no video stream")
    if "image" in kinds and (info.video is None or demuxer not in commands.IMAGE_FORMATS):
        raise errors.SourceInvalid(f"{where}: not a still image (png, jpeg, webp or bmp)")
    if "soundtrack" in kinds and (info.audio is None or demuxer not in commands.AUDIO_FORMATS):
        raise errors.SourceInvalid(f"{where}: no audio stream")
    _check_bounds(info, kinds, where, settings)
    has_audio = info.audio is not None
    if "soundtrack" in kinds:
        _check_has_samples(local, demuxer, where, info, settings)
    packets = None
    if "clip" in kinds:
        # The only audio a remux copies (plan._audio_copy): AAC-LC, which ADTS always holds.
        aac = info.audio is not None and (info.audio.codec, info.audio.profile) == ("aac", "LC")
        packets = _scan_cuts(
            local, demuxer, clips, info.start_seconds, settings, adts=aac, listed=merged[1] if merged else None
        )
        # A declared audio stream with nothing in it is silence, not an input to wait on.
        has_audio = has_audio and packets.audio_packets > 0
    ref = ref.model_copy(update={"demuxer": demuxer, "has_audio": has_audio})
    return SourceInfo(ref=ref, probe=info, packets=packets)


def _too_many_pixels(where: str, kind: str, width: int, height: int, settings: Settings) -> errors.MediaTooLarge:
    bound = settings.max_image_pixels if kind == "image" else settings.max_video_pixels
    return errors.MediaTooLarge(
        f"{where}: the {kind} is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
        f"at most {bound / 1e6:.1f} megapixels and {limits.MAX_SIDE} pixels a side"
    )


def _check_bounds(info: Probe, kinds: set[str], where: str, settings: Settings) -> None:
    """Pixels, duration and packets, from the probe alone (nothing decoded, nothing listed)."""
    if info.video is not None and kinds & {"clip", "image"}:
        kind = "image" if "image" in kinds else "video"
        bound = settings.max_image_pixels if kind == "image" else settings.max_video_pixels
        w, h = info.video.width, info.video.height
        if w * h > bound or max(w, h) > limits.MAX_SIDE:
            raise _too_many_pixels(where, kind, w, h, settings)
    if kinds & {"clip", "soundtrack"} and info.duration_seconds is not None:
        if info.duration_seconds > settings.max_source_seconds:
            raise errors.MediaTooLarge(
                f"{where}: the source lasts {info.duration_seconds:.0f} s; at most {settings.max_source_seconds:.0f} s"
            )
        if "clip" in kinds and info.video is not None:
            frames = info.duration_seconds * info.video.fps
            if frames > settings.max_source_packets:
                raise errors.MediaTooLarge(
                    f"{where}: the video holds about {frames:.0f} frames "
                    f"({info.duration_seconds:.0f} s at {info.video.fps:g} fps); at most {settings.max_source_packets}"
                )


def _check_has_samples(local: Path, demuxer: str, where: str, info: Probe, settings: Settings) -> None:
    """A soundtrack is looped to the video's length: one without samples would loop forever."""
    empty = errors.SourceInvalid(f"{where}: the audio has no samples")
    if not info.duration_seconds:
        raise empty
    try:
        found = count_audio_packets(local, settings=settings, demuxer=demuxer, seconds=AUDIO_CHECK_SECONDS)
    except ProbeError as exc:
        raise errors.SourceInvalid(f"{where}: the audio cannot be read ({exc})") from None
    if found == 0:
        raise empty


def cut_windows(cuts: list[tuple[float, float | None]]) -> list[tuple[float, float]]:
    """The (start, end) windows of a source that clips cut from it, in seconds, merged where they meet.

    A clip without a duration runs to the end, but never past the longest output.
    """
    spans = sorted(
        (
            max(0.0, trim - SCAN_LEAD_SECONDS),
            trim + (MAX_OUTPUT_SECONDS if length is None else length) + SCAN_TAIL_SECONDS,
        )
        for trim, length in cuts
    )
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _whole_file(spans: list[tuple[float, float]]) -> bool:
    """Whether the cuts' windows (`cut_windows`) are one listing from the file's start."""
    return len(spans) == 1 and spans[0][0] == 0


def _scan_cuts(
    local: Path,
    demuxer: str,
    clips: list[SourceUse],
    start_seconds: float,
    settings: Settings,
    *,
    adts: bool,
    listed: VideoPackets | None = None,
) -> VideoPackets:
    """The video packets of the windows the clips cut, in decode order, and the audio found there.

    Each window is one bounded listing; a window that ends early has reached the end of the
    video (`VideoPackets.complete`). With `adts` (the audio is AAC), a listing of the whole file
    also copies its audio packets beside it (`adts_beside`), for a remux to splice. `listed` is
    the first window's listing when `inspect_and_scan` made it already.
    """
    where = clips[0].where
    packets: list[Packet] = []
    audio = 0
    complete = False
    time_base = Fraction(1, 1)
    first: VideoPackets | None = None
    spans = cut_windows([(u.trim, u.duration) for u in clips])
    whole_file = _whole_file(spans)
    for n, (start, end) in enumerate(spans):
        if n == 0 and listed is not None:
            window = listed
        else:
            try:
                window = scan_packets(
                    local,
                    settings=settings,
                    demuxer=demuxer,
                    start=start,
                    duration=end - start,
                    audio=True,
                    max_packets=limits.MAX_WINDOW_PACKETS,
                    h264_config=first is None,
                    adts=adts and whole_file,
                )
            except TooManyPackets as exc:
                raise errors.MediaTooLarge(
                    f"{where}: {exc} within {end - start:.0f} s of the cut; at most {limits.MAX_WINDOW_PACKETS}"
                ) from None
            except ProbeError as exc:
                if start > 0 and str(exc) == "no video frames":
                    complete = True  # the cut starts past the end; planning says so, with the numbers
                    continue
                raise errors.SourceInvalid(f"{where}: the video cannot be read ({exc})") from None
            except errors.ResourceLimitExceeded as exc:
                raise errors.ResourceLimitExceeded(f"{where}: {exc.message}") from None
        time_base = window.time_base
        first = first or window
        last = packets[-1].dts if packets else None
        packets += [p for p in window.packets if last is None or p.dts > last]
        audio += window.audio_packets
        # Packets carry the file's own timestamps; windows count from the file's start.
        complete = window.seconds(window.end_pts) - start_seconds < end - SCAN_TAIL_SECONDS / 2
    # Audio is timed for copying only from one listing of the whole file (a remux's clip).
    whole = complete and whole_file
    return VideoPackets(
        time_base=time_base,
        packets=packets,
        audio_packets=audio,
        complete=complete,
        video_config=first.video_config if first is not None else None,
        audio_extradata=first.audio_extradata if first is not None else None,
        audio=first.audio if first is not None and whole else None,
    )
