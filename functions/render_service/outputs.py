"""A finished render's output as its owner sees it: the MP4 and its stills, and links to them.

One home for the links so that every path that shows an output (GET, the list) signs the same
objects for the same time, and none past the output's expiry (see retention.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from render_service import clients, links, retention, storage
from render_service.models import api
from render_service.models.jobs import OutputObject, RenderJob, RenderStatus
from render_service.settings import Settings

if TYPE_CHECKING:
    from render_service.engines.ffmpeg.models import JoinedOutput


def made(key: str, info: JoinedOutput) -> OutputObject:
    """The MP4 either engine made at `key` (with its stills, if any), as the job records it."""
    return OutputObject(
        key=key,
        size_bytes=info.size_bytes,
        duration_seconds=info.duration_seconds,
        width=info.width,
        height=info.height,
        poster_key=info.stills.poster if info.stills else None,
        thumbnail_key=info.stills.thumbnail if info.stills else None,
    )


def view(job: RenderJob, settings: Settings, *, check_output: bool = False) -> api.OutputView | None:
    """`check_output` confirms the MP4 still exists before handing out links (one S3 request):
    done for a single render, not for every item of a history page."""
    output = job.output
    if output is None:
        return None
    url = expires = poster = thumbnail = None
    # Only links that work: the object may have been removed outside the API (lifecycle, ops).
    expired = retention.expired(output)
    if (
        job.status == RenderStatus.complete
        and not output.deleted
        and not expired
        and (not check_output or storage.exists(clients.s3(), settings.bucket_name, output.key))
    ):
        # Never a link that outlives the output.
        ttl = retention.link_seconds(output, settings.download_url_ttl_seconds)
        url, expires = links.output_url(output.key, ttl, filename=f"{job.render_id}.mp4")
        # Stills are shown inline (an <img>, a <video poster>), so no attachment disposition.
        poster = links.output_url(output.poster_key, ttl)[0] if output.poster_key else None
        thumbnail = links.output_url(output.thumbnail_key, ttl)[0] if output.thumbnail_key else None
    return api.OutputView(
        url=url,
        expiresAt=expires,
        posterUrl=poster,
        thumbnailUrl=thumbnail,
        sizeBytes=output.size_bytes,
        durationSeconds=output.duration_seconds,
        width=output.width,
        height=output.height,
        deleted=output.deleted,
        retainedUntil=output.retained_until,
        expired=expired,
    )
