"""StartRender's half of the engine: fetch and probe every source once, then plan.

Each distinct source is downloaded once, probed, scanned (clips) and deleted
before the next, so the planner's disk holds one source at a time. https sources
are staged into the service bucket (`work/<renderId>/sources/<n><ext>`) so that
chunk workers, in other Lambda containers, read them from S3 and never fetch
the internet again; uploads in the service bucket are copied there too, so the
ffmpeg functions never need access to other users' inputs. Nothing is written
to DynamoDB.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from render_service import errors, sources
from render_service.engines.ffmpeg import commands
from render_service.engines.ffmpeg.models import RenderPlan, SourceRef
from render_service.engines.ffmpeg.plan import DEFAULT_CHUNK_SECONDS, SourceInfo, build_plan
from render_service.engines.ffmpeg.probe import Probe, ProbeError, inspect, scan_packets
from render_service.models.timeline import MAX_SOURCE_BYTES, ClipScene, ImageScene, RenderRequest
from render_service.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SOURCES_BUDGET_SECONDS = 210.0
"""All https downloads of one render together: StartRender has 5 minutes, and needs the rest to
probe, stage and plan. A render whose sources are this slow fails as SOURCE_UNAVAILABLE."""


@dataclass(frozen=True)
class _Use:
    src: str
    where: str  # e.g. "scenes[2].src", for error messages
    kind: str  # "clip" | "image" | "soundtrack"


def staged_key(render_id: str, n: int, ext: str) -> str:
    return f"work/{render_id}/sources/{n}{ext}"


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
    """Fetch, check and probe the sources, then plan the chunks (see `plan.py`).

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
    infos: dict[str, SourceInfo] = {}
    staged: list[str] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        distinct = list(dict.fromkeys(u.src for u in uses))
        for n, src in enumerate(distinct):
            kinds = {u.kind for u in uses if u.src == src}
            where = next(u.where for u in uses if u.src == src)
            local = root / f"src-{n}{_suffix(src)}"
            ref = _fetch(
                render_id, n, src, local, where, s3=s3, bucket=bucket, settings=settings, fetch=fetch_https,
                deadline=deadline,
            )  # fmt: skip
            if ref.key.startswith(f"work/{render_id}/"):
                staged.append(ref.key)
            infos[src] = _inspect(local, ref, kinds, where, settings)
            local.unlink(missing_ok=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return build_plan(render_id, request, infos, chunk_seconds=chunk_seconds, staged_keys=staged, smart_copy=smart_copy)


def _uses(request: RenderRequest) -> list[_Use]:
    uses = []
    for i, scene in enumerate(request.timeline.scenes):
        if isinstance(scene, ClipScene):
            uses.append(_Use(scene.src, f"scenes[{i}].src", "clip"))
        elif isinstance(scene, ImageScene):
            uses.append(_Use(scene.src, f"scenes[{i}].src", "image"))
    if request.timeline.soundtrack is not None:
        uses.append(_Use(request.timeline.soundtrack.src, "timeline.soundtrack.src", "soundtrack"))
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
) -> SourceRef:
    if src.startswith("https://"):
        got = (fetch or sources.fetch_https)(src, local, max_bytes=MAX_SOURCE_BYTES, where=where, deadline=deadline)
        key = staged_key(render_id, n, local.suffix)
        s3.upload_file(str(local), bucket, key)
        etag = s3.head_object(Bucket=bucket, Key=key).get("ETag")
        return SourceRef(
            bucket=bucket, key=key, etag=etag, size_bytes=got.size_bytes, ext=local.suffix, demuxer="", has_audio=False
        )
    loc = sources.check_s3_allowed(src, settings.source_buckets, where=where)
    got = sources.fetch_s3(s3, loc.bucket, loc.key, local, max_bytes=MAX_SOURCE_BYTES, where=where)
    if loc.bucket == bucket:
        # Uploads are copied (server-side, pinned to the version just probed) next to the render,
        # so the functions that run ffmpeg need read access to work/<id>/ only, never to every
        # user's inputs/.
        key = staged_key(render_id, n, local.suffix)
        try:
            copied = s3.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": loc.bucket, "Key": loc.key},
                CopySourceIfMatch=got.etag or "*",
            )
        except ClientError as exc:
            raise errors.SourceUnavailable(f"{where}: changed or disappeared while the render started") from exc
        return SourceRef(
            bucket=bucket,
            key=key,
            etag=copied["CopyObjectResult"].get("ETag"),
            size_bytes=got.size_bytes,
            ext=local.suffix,
            demuxer="",
            has_audio=False,
        )
    return SourceRef(
        bucket=loc.bucket,
        key=loc.key,
        etag=got.etag,
        size_bytes=got.size_bytes,
        ext=local.suffix,
        demuxer="",
        has_audio=False,
    )


def _inspect(local: Path, ref: SourceRef, kinds: set[str], where: str, settings: Settings) -> SourceInfo:
    formats: tuple[str, ...] = ()
    if "clip" in kinds:
        formats += commands.VIDEO_FORMATS
    if "image" in kinds:
        formats += commands.IMAGE_FORMATS
    if "soundtrack" in kinds:
        formats += commands.AUDIO_FORMATS
    try:
        info: Probe = inspect(local, settings=settings, formats=tuple(dict.fromkeys(formats)))
    except ProbeError as exc:
        raise errors.SourceInvalid(f"{where}: not a readable media file ({exc})") from None
    demuxer = info.demuxer.split(",")[0]
    if "clip" in kinds and (info.video is None or demuxer not in commands.VIDEO_FORMATS):
        raise errors.SourceInvalid(f"{where}: no video stream")
    if "image" in kinds and (info.video is None or demuxer not in commands.IMAGE_FORMATS):
        raise errors.SourceInvalid(f"{where}: not a still image (png, jpeg, webp or bmp)")
    if "soundtrack" in kinds and (info.audio is None or demuxer not in commands.AUDIO_FORMATS):
        raise errors.SourceInvalid(f"{where}: no audio stream")
    ref = ref.model_copy(update={"demuxer": demuxer, "has_audio": info.audio is not None})
    packets = None
    if "clip" in kinds:
        try:
            packets = scan_packets(local, settings=settings, demuxer=demuxer)
        except ProbeError as exc:
            raise errors.SourceInvalid(f"{where}: the video cannot be read ({exc})") from None
    return SourceInfo(ref=ref, probe=info, packets=packets)
