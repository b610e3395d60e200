"""The remotion engine: renders on the app team's own Remotion Lambda, spoken to through its protocol.

The workflow steps call:

- `start` (StartRender): invoke the function with a start payload (private output, cancellation
  enabled); the reply's renderId and bucket are kept on the job.
- `watch` (PollRender): Remotion's progress becomes ours (never lower, with a phase); a fatal
  error fails the render with Remotion's message (its stack goes to the log, for ops); a render
  still going after its kind's timeout, counted from Remotion's own start time, fails and is
  cancelled at Remotion.
- `deliver` (FinalizeRender): the output is copied server-side from Remotion's bucket to ours
  (`renders/<user>/<id>.mp4`), then probed, and given a poster and thumbnail as ffmpeg's are, so
  presigning, retention, deletion and events are those of every render.
- `cancel` (the lifecycle's cancel): Remotion's cancel signal beside its progress document.

We depend on no Remotion package (their licence is not open source): see `protocol.py`.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from render_service import errors
from render_service.engines.ffmpeg import limits
from render_service.engines.ffmpeg.models import JoinedOutput, StillKeys
from render_service.engines.ffmpeg.probe import probe
from render_service.engines.ffmpeg.stills import STILLS_TIMEOUT_SECONDS, make_and_upload
from render_service.engines.remotion.client import RemotionConfig, RemotionFunction, StartedRender, clients_for
from render_service.engines.remotion.protocol import Costs, RenderProgress
from render_service.models.remotion import RemotionRequest
from render_service.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["RemotionFunction", "StartedRender", "Watch", "deliver", "function", "watch"]

logger = Logger(child=True)

# Our progress bands, as for ffmpeg: starting 0-5, Remotion's render 5-90, delivery 90-100.
_RENDER_START, _RENDER_END = 5, 90


def config(settings: Settings) -> RemotionConfig:
    if not settings.remotion_configured:
        raise errors.EngineNotConfigured("engine: remotion is not configured for this deployment")
    return RemotionConfig(
        function_name=settings.remotion_function_name,
        serve_url=settings.remotion_serve_url,
        region=settings.remotion_region,
        bucket=settings.remotion_bucket,
        version=settings.remotion_version,
    )


def function(settings: Settings) -> RemotionFunction:
    cfg = config(settings)
    lambda_client, s3 = clients_for(cfg.region)
    return RemotionFunction(cfg, lambda_client=lambda_client, s3=s3)


@dataclass(frozen=True)
class Watch:
    """What one look at Remotion's progress means for our job."""

    progress: int
    phase: str  # rendering | finalizing
    done: bool
    costs: Costs


def started_at(progress: RenderProgress, fallback: datetime) -> datetime:
    """When Remotion started the render (its own clock, from renderMetadata), else when we did."""
    meta = progress.renderMetadata
    if meta is not None and meta.startedDate:
        return datetime.fromtimestamp(meta.startedDate / 1000, UTC)
    return fallback


def watch(progress: RenderProgress, request: RemotionRequest, *, started: datetime, now: datetime) -> Watch:
    """Maps Remotion's progress onto ours, or raises the failure it amounts to."""
    fatal = progress.fatal_error()
    if fatal is not None:
        # The user reads Remotion's message; ops read the stack in the log.
        logger.error(
            "remotion reported a fatal error",
            extra={"remotion_error": fatal.name, "remotion_message": fatal.message, "remotion_stack": fatal.stack},
        )
        name = f"{fatal.name}: " if fatal.name and fatal.name != "Error" else ""
        raise errors.RemotionRenderFailed(f"Remotion: {name}{fatal.message}"[:1000])
    if progress.done:
        if not progress.outKey:
            raise errors.RemotionRenderFailed("Remotion reported the render done without an output")
        return Watch(progress=_RENDER_END, phase="finalizing", done=True, costs=progress.costs)
    limit = request.limits.render_timeout_seconds
    if now - started_at(progress, started) > timedelta(seconds=limit):
        raise errors.RemotionTimedOut(
            f"the Remotion render did not finish within {limit} s, the limit for a {request.kind.value}"
        )
    share = _RENDER_START + int((_RENDER_END - _RENDER_START) * min(progress.overallProgress, 0.999))
    # Remotion combines the chunks once they are all rendered: that is our finalizing phase too.
    phase = "finalizing" if progress.encodingStatus is not None else "rendering"
    return Watch(progress=share, phase=phase, done=False, costs=progress.costs)


def deliver(
    progress: RenderProgress,
    request: RemotionRequest,
    *,
    remotion_s3: S3Client,
    s3: S3Client,
    bucket: str,
    key: str,
    settings: Settings,
    stills: StillKeys | None = None,
) -> JoinedOutput:
    """Copies Remotion's output into our bucket (private, server-side), then probes it there; with
    `stills`, makes the poster and thumbnail from the same local copy (best effort)."""
    source_bucket = progress.outBucket or progress.bucket
    if not source_bucket or not progress.outKey:
        raise errors.RemotionRenderFailed("Remotion reported no output location")
    try:
        s3.copy(
            {"Bucket": source_bucket, "Key": progress.outKey},
            bucket,
            key,
            ExtraArgs={"ContentType": "video/mp4", "MetadataDirective": "REPLACE"},
            SourceClient=remotion_s3,
        )
    except (ClientError, BotoCoreError) as exc:
        raise errors.RemotionUnavailable(f"could not copy Remotion's output: {exc}") from None
    directory = Path(tempfile.mkdtemp(dir=settings.work_dir))
    try:
        local = directory / "output.mp4"
        s3.download_file(bucket, key, str(local))
        try:
            info = probe(local, settings=settings)
        except errors.SourceInvalid as exc:
            raise errors.RemotionRenderFailed(f"Remotion's output is not a playable video ({exc})") from None
        wanted = (request.output.width, request.output.height)
        off_by = abs(info.duration_seconds - request.seconds)
        if (info.width, info.height) != wanted or off_by > 1 / request.fps + 0.011:
            raise errors.RemotionRenderFailed(
                f"Remotion's output is {info.width}x{info.height}, {info.duration_seconds:.3f} s; "
                f"asked for {wanted[0]}x{wanted[1]}, {request.seconds:.3f} s"
            )
        made = None
        if stills is not None:
            made = make_and_upload(
                local,
                stills,
                duration_seconds=info.duration_seconds,
                width=info.width,
                height=info.height,
                out_dir=directory / "stills",
                ffmpeg=settings.ffmpeg,
                s3=s3,
                bucket=bucket,
                budget=limits.budget(settings, timeout=STILLS_TIMEOUT_SECONDS),
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return JoinedOutput(**info.model_dump(), stills=made)
