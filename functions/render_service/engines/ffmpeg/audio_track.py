"""The whole timeline's sound, encoded once by StartRender while the video-only chunks render.

The join used to mix and encode it from the chunks' PCM when every chunk was done, the one
moment nothing else runs: on two cores, 92 s of AAC was 2.5 s of the mix's end to end. Here it
overlaps the chunks, and reads the sources planning fetched (no chunk carries audio, so none
decodes it either); the join copies the track beside the chunks' video.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from render_service import storage
from render_service.engines.ffmpeg import limits
from render_service.engines.ffmpeg.chunk import place_source
from render_service.engines.ffmpeg.commands import audio_track_argv
from render_service.engines.ffmpeg.models import RenderPlan
from render_service.engines.ffmpeg.runner import run_ffmpeg
from render_service.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)


def audio_track_key(plan: RenderPlan) -> str:
    return f"{storage.attempt_prefix(plan.render_id, plan.chunks[0].render_attempt)}audio.m4a"


def audio_timeout(plan: RenderPlan) -> float:
    """AAC encodes at about 40x realtime on one core; a fifth of that, and a minute to start."""
    return 60.0 + plan.duration_seconds / 8


def encode_audio_track(
    plan: RenderPlan,
    local: Mapping[str, Path],
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    cancelled: Callable[[], bool] | None = None,
) -> str:
    """`plan.audio` into S3 at `audio_track_key(plan)`, from the sources planning kept (`local`,
    by key; any not kept are fetched again, pinned); returns the key."""
    spec = plan.audio
    assert spec is not None, "the plan has no audio track of its own"
    root = settings.work_dir / plan.render_id / f"audio-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    try:
        placed: dict[str, Path] = {}
        sounding = {
            seg.source
            for seg in spec.segments
            if seg.kind == "clip" and seg.source is not None and spec.sources[seg.source].has_audio and not seg.muted
        }
        for n in sorted(sounding):
            ref = spec.sources[n]
            placed[ref.key] = root / f"src-{n}{ref.ext}"
            place_source(ref, placed[ref.key], s3=s3, local=local, where=f"audio source {n}")
        soundtrack = None
        if plan.soundtrack is not None:
            soundtrack = root / f"soundtrack{plan.soundtrack.source.ext}"
            place_source(plan.soundtrack.source, soundtrack, s3=s3, local=local, where="timeline.soundtrack.src")
        out = root / "audio.m4a"
        timeout = audio_timeout(plan)
        run_ffmpeg(
            audio_track_argv(plan, placed, soundtrack, out, ffmpeg=settings.ffmpeg),
            timeout=timeout,
            budget=limits.budget(settings, timeout=timeout),
            cancelled=cancelled,
            what="the audio track",
        )
        key = audio_track_key(plan)
        s3.upload_file(str(out), bucket, key, ExtraArgs={"ContentType": "audio/mp4"})
        logger.info("audio track encoded", extra={"render_id": plan.render_id, "bytes": out.stat().st_size})
        return key
    finally:
        shutil.rmtree(root, ignore_errors=True)
