"""FinalizeRender's half of the engine: join the chunks, encode the audio once, upload, probe."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from render_service import errors, sources
from render_service.engines.ffmpeg import limits
from render_service.engines.ffmpeg.commands import JoinPaths, concat_list, join_argv, remux_argv, remux_concat_list
from render_service.engines.ffmpeg.models import JoinedOutput, RenderPlan, StillKeys
from render_service.engines.ffmpeg.probe import probe
from render_service.engines.ffmpeg.runner import run_ffmpeg
from render_service.engines.ffmpeg.stills import STILLS_TIMEOUT_SECONDS, make_and_upload
from render_service.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_CHUNK_BYTES = 4 << 30
JOIN_TIMEOUT_SECONDS = 600.0


def join_chunks(
    plan: RenderPlan,
    chunk_keys: list[str],
    dest_key: str,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    timeout_seconds: float = JOIN_TIMEOUT_SECONDS,
    stills: StillKeys | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> JoinedOutput:
    """Concat demuxer with `-c:v copy`, soundtrack mixed in, AAC once, `+faststart`; returns the probe.

    A remux plan (plan.py) has no chunk files: its staged sources are the concat's inputs
    (`chunk_keys` are then the sources' keys, as StartRender recorded them).

    With `stills`, a poster and a thumbnail are made from the local file too (best effort).
    `cancelled` is asked every couple of seconds while ffmpeg runs; when it says the render
    has ended, ffmpeg is stopped and `RenderCancelled` raised (nothing is uploaded).
    """
    if len(chunk_keys) != len(plan.chunks):
        raise errors.EncodeFailed(f"expected {len(plan.chunks)} chunks, got {len(chunk_keys)}")
    paths = JoinPaths.for_plan(settings.work_dir, plan, attempt=uuid.uuid4().hex[:8])
    paths.root.mkdir(parents=True)
    try:
        if plan.remux:
            _fetch_remux_sources(plan, paths, s3)
        else:
            for index, key in enumerate(chunk_keys):
                sources.fetch_s3(s3, bucket, key, paths.chunk(index), max_bytes=MAX_CHUNK_BYTES, where=f"chunk {index}")
        if plan.soundtrack is not None:
            ref = plan.soundtrack.source
            sources.fetch_s3(
                s3,
                ref.bucket,
                ref.key,
                paths.soundtrack(plan),
                max_bytes=max(ref.size_bytes, 1),
                where="timeline.soundtrack.src",
                etag=ref.etag,
            )
        if plan.remux:
            paths.concat_list.write_text(remux_concat_list(plan, paths))
            argv = remux_argv(plan, paths, ffmpeg=settings.ffmpeg)
        else:
            paths.concat_list.write_text(concat_list([paths.chunk(i) for i in range(len(chunk_keys))]))
            argv = join_argv(plan, paths, ffmpeg=settings.ffmpeg)
        run_ffmpeg(
            argv,
            timeout=timeout_seconds,
            budget=limits.budget(settings, timeout=timeout_seconds),
            cancelled=cancelled,
            what="join",
        )
        info = probe(paths.output, settings=settings)
        # The Duration line has 10 ms resolution; anything beyond a frame is a bug, not a rounding.
        if abs(info.duration_seconds - plan.duration_seconds) > 1 / plan.fps + 0.011:
            raise errors.EncodeFailed(
                f"joined output lasts {info.duration_seconds:.3f} s, planned {plan.duration_seconds:.3f} s"
            )
        s3.upload_file(str(paths.output), bucket, dest_key, ExtraArgs={"ContentType": "video/mp4"})
        made = None
        if stills is not None:
            made = make_and_upload(
                paths.output,
                stills,
                duration_seconds=info.duration_seconds,
                width=info.width,
                height=info.height,
                out_dir=paths.root / "stills",
                ffmpeg=settings.ffmpeg,
                s3=s3,
                bucket=bucket,
                budget=limits.budget(settings, timeout=STILLS_TIMEOUT_SECONDS),
            )
        return JoinedOutput(**info.model_dump(), stills=made)
    finally:
        shutil.rmtree(paths.root, ignore_errors=True)


def _fetch_remux_sources(plan: RenderPlan, paths: JoinPaths, s3: S3Client) -> None:
    """Each staged source once (a clip used twice is one download), pinned to the version planned."""
    for spec in plan.chunks:
        target = paths.source(spec)
        if target.exists():
            continue
        (seg,) = spec.segments
        assert seg.source is not None
        ref = spec.sources[seg.source]
        sources.fetch_s3(
            s3,
            ref.bucket,
            ref.key,
            target,
            max_bytes=max(ref.size_bytes, 1),
            where=f"scenes[{seg.scene}].src",
            etag=ref.etag,
        )
