"""A poster frame and a thumbnail from a finished MP4, whichever engine made it, or from the
clips a remux is copying into one (`Locate`: where each of its pictures is).

Cost is what matters here: this runs inside the step that finalizes every render. With `-ss`
before `-i` and `-noaccurate_seek`, ffmpeg seeks to the keyframe at or before a timestamp and
hands that frame on, decoding one frame; an accurate seek decodes from that keyframe up to the
timestamp (up to a GOP, 2 s of frames in our outputs: about four times the cost at 1080p).

1. Candidates: the keyframe at or before each of a few timestamps spread over the video (never
   its first frame), shrunk to 64x36 grey and stacked into one raw frame on stdout. The most
   varied candidate (luma variance) wins: a black or faded frame is nearly uniform, a frame with
   content is not. Ties go to the earliest.
2. Only if no keyframe shows content (a short video has few keyframes, and they may all sit in
   a fade), the same timestamps again with accurate seeks; a video of `SHORT_SECONDS` or less
   starts there.
3. Each run also writes every candidate as a JPEG at the video's own size and a JPEG of
   `THUMBNAIL_LONG_SIDE` on its long side (a few milliseconds each), so the winner is never
   decoded again: one ffmpeg in all when a keyframe has content.

Seen here on 2 cores under load: 0.3 to 0.5 s in all for a 1080p output, whatever its length,
when a keyframe has content.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from render_service import errors, storage
from render_service.engines.ffmpeg import limits
from render_service.engines.ffmpeg.commands import safe_input
from render_service.engines.ffmpeg.models import StillKeys
from render_service.engines.ffmpeg.runner import last_error_line

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

THUMBNAIL_LONG_SIDE = 320
# Where candidates are looked for, as fractions of the duration: past an opening fade, short of a closing one.
CANDIDATE_POSITIONS = (0.2, 0.35, 0.5, 0.65, 0.8)
# Luma variance below this (a standard deviation of 16 levels) is a frame with nothing on it.
CONTENT_VARIANCE = 16.0**2
# The measuring size: enough to tell a title card from a black frame, cheap to compare in Python.
_MEASURE_W, _MEASURE_H = 64, 36
STILLS_TIMEOUT_SECONDS = 30.0
SHORT_SECONDS = 4.0
"""Up to this long (two of our 2-second GOPs), candidates are decoded exactly at once."""
# Our own outputs are MP4 (both engines); nothing else is opened.
_MP4 = ("mov", ("mov",))


@dataclass(frozen=True)
class Stills:
    poster: Path
    thumbnail: Path
    at_seconds: float
    accurate: bool  # the frame at `at_seconds`, else the keyframe at or before it


def keys_for(user_id: str, render_id: str) -> StillKeys:
    return StillKeys(poster=storage.poster_key(user_id, render_id), thumbnail=storage.thumbnail_key(user_id, render_id))


def candidate_times(duration_seconds: float) -> list[float]:
    return [round(duration_seconds * position, 3) for position in CANDIDATE_POSITIONS]


def luma_variance(pixels: bytes) -> float:
    if not pixels:
        return 0.0
    mean = sum(pixels) / len(pixels)
    return sum((p - mean) ** 2 for p in pixels) / len(pixels)


def pick(variances: list[float]) -> int:
    """The index of the most varied candidate; the earliest on a tie."""
    return max(range(len(variances)), key=lambda i: (variances[i], -i))


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """At most `THUMBNAIL_LONG_SIDE` on the long side (never enlarged), even sides, aspect kept."""
    scale = min(1.0, THUMBNAIL_LONG_SIDE / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@dataclass(frozen=True)
class Picture:
    """Where the picture at some time of the video is read: a file, its demuxer, a time in it."""

    video: Path
    demuxer: str
    seconds: float


Locate = Callable[[float], Picture]
"""The picture at a time of the video: in the MP4 itself, or (a remux not yet written) in its clips."""


def in_file(video: Path) -> Locate:
    demuxer, _ = _MP4
    return lambda at: Picture(video, demuxer, at)


def _seek(picture: Picture, *, accurate: bool) -> list[str]:
    seek = [*([] if accurate else ["-noaccurate_seek"]), "-ss", f"{picture.seconds:.3f}"]
    # The one demuxer forced is the only one allowed: nothing inside the file opens another.
    return [*seek, *safe_input(picture.video, picture.demuxer, (picture.demuxer,))]


def candidates_argv(
    ffmpeg: str, video: Path | Locate, times: list[float], *, accurate: bool, thumb: tuple[int, int], out_dir: Path
) -> list[str]:
    """One run for every candidate: its 64x36 grey measure (stacked, raw on stdout) and its poster
    and thumbnail JPEGs (`poster-<i>.jpg`, `thumbnail-<i>.jpg`), so the winner needs no second decode."""
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    locate = in_file(video) if isinstance(video, Path) else video
    for at in times:
        argv += _seek(locate(at), accurate=accurate)
    chains, outputs = [], []
    image = ["-frames:v", "1", "-update", "1", "-f", "image2"]
    for i in range(len(times)):
        # setpts=0: each input's frame keeps its own timestamp otherwise, and vstack pairs frames by timestamp.
        chains.append(f"[{i}:v]trim=end_frame=1,setpts=0,split=3[m{i}][p{i}][t{i}]")
        chains.append(f"[m{i}]scale={_MEASURE_W}:{_MEASURE_H},format=gray[c{i}]")
        chains.append(f"[t{i}]scale={thumb[0]}:{thumb[1]}:flags=lanczos[s{i}]")
        outputs += ["-map", f"[p{i}]", *image, "-q:v", "2", str(out_dir / f"poster-{i}.jpg")]
        outputs += ["-map", f"[s{i}]", *image, "-q:v", "4", str(out_dir / f"thumbnail-{i}.jpg")]
    measures = "".join(f"[c{i}]" for i in range(len(times)))
    chains.append(f"{measures}vstack={len(times)}[out]" if len(times) > 1 else f"{measures}null[out]")
    measure = ["-map", "[out]", "-frames:v", "1", "-f", "rawvideo", "pipe:1"]
    return [*argv, "-filter_complex", ";".join(chains), *measure, *outputs]


def _run(argv: list[str], what: str, budget: limits.Budget | None = None) -> bytes:
    # Raw frames on stdout (bytes), so not the runner's text pipes; the same OS budget all the same.
    bound = budget or limits.budget(None, timeout=STILLS_TIMEOUT_SECONDS)
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=STILLS_TIMEOUT_SECONDS,
            check=False,
            env=bound.child_env(),
            preexec_fn=bound.apply,
        )
    except subprocess.TimeoutExpired:
        raise errors.EncodeTimedOut(f"{what} did not finish within {STILLS_TIMEOUT_SECONDS:.0f} s") from None
    lines = done.stderr.decode(errors="replace").splitlines()
    if (limit := bound.exceeded(done.returncode, lines, 0.0, what)) is not None:
        raise limit
    if done.returncode != 0:
        raise errors.EncodeFailed(f"{what} failed: {last_error_line(lines)}")
    return done.stdout


def _variances(
    ffmpeg: str,
    video: Path | Locate,
    times: list[float],
    *,
    accurate: bool,
    thumb: tuple[int, int],
    out_dir: Path,
    budget: limits.Budget | None = None,
) -> list[float]:
    argv = candidates_argv(ffmpeg, video, times, accurate=accurate, thumb=thumb, out_dir=out_dir)
    raw = _run(argv, "still candidates", budget)
    tile = _MEASURE_W * _MEASURE_H
    if len(raw) != tile * len(times):
        raise errors.EncodeFailed(f"still candidates: expected {tile * len(times)} bytes, got {len(raw)}")
    return [luma_variance(raw[i * tile : (i + 1) * tile]) for i in range(len(times))]


def capture(
    video: Path | Locate,
    *,
    duration_seconds: float,
    width: int,
    height: int,
    out_dir: Path,
    ffmpeg: str,
    budget: limits.Budget | None = None,
) -> Stills:
    """Writes `poster.jpg` (width x height) and `thumbnail.jpg` into `out_dir` from a representative frame.

    `video` is the MP4, or where each of its pictures is (`Locate`): a remux's stills are taken
    from its clips while the remux runs, since it copies their packets as they are.

    Each ffmpeg runs under `budget` (default: the deployed functions', see `limits.py`)."""
    times = candidate_times(duration_seconds)
    thumb = thumbnail_size(width, height)
    fast, exact = out_dir / "keyframes", out_dir / "exact"
    for folder in (fast, exact):
        folder.mkdir(parents=True, exist_ok=True)
    if duration_seconds <= SHORT_SECONDS:
        # A keyframe or two in all: every fast seek would land on the same frame.
        measured = _variances(ffmpeg, video, times, accurate=True, thumb=thumb, out_dir=exact, budget=budget)
        best = pick(measured)
        (exact / f"poster-{best}.jpg").replace(out_dir / "poster.jpg")
        (exact / f"thumbnail-{best}.jpg").replace(out_dir / "thumbnail.jpg")
        return Stills(out_dir / "poster.jpg", out_dir / "thumbnail.jpg", at_seconds=times[best], accurate=True)
    variances = _variances(ffmpeg, video, times, accurate=False, thumb=thumb, out_dir=fast, budget=budget)
    best, accurate, chosen = pick(variances), False, fast
    if variances[best] < CONTENT_VARIANCE:
        measured = _variances(ffmpeg, video, times, accurate=True, thumb=thumb, out_dir=exact, budget=budget)
        if measured[pick(measured)] > variances[best]:
            best, accurate, chosen = pick(measured), True, exact
    poster, thumbnail = out_dir / "poster.jpg", out_dir / "thumbnail.jpg"
    (chosen / f"poster-{best}.jpg").replace(poster)
    (chosen / f"thumbnail-{best}.jpg").replace(thumbnail)
    return Stills(poster=poster, thumbnail=thumbnail, at_seconds=times[best], accurate=accurate)


def frames_for(duration_seconds: float, fps: int, frames: int) -> tuple[int, ...]:
    """The candidate frames of a video being rendered (`StillFrames`): the same positions as
    `candidate_times`, exact, each once."""
    picked = (min(frames - 1, max(0, round(t * fps))) for t in candidate_times(duration_seconds))
    return tuple(dict.fromkeys(picked))


def from_rendered(out_dir: Path, frames: tuple[int, ...], fps: int) -> Stills:
    """Pick among the candidates a render wrote (`StillFrames`), as `capture` would among its own."""
    raw = (out_dir / "measure.gray").read_bytes()
    tile = _MEASURE_W * _MEASURE_H
    if len(raw) != tile * len(frames):
        raise errors.EncodeFailed(f"still candidates: expected {tile * len(frames)} bytes, got {len(raw)}")
    best = pick([luma_variance(raw[i * tile : (i + 1) * tile]) for i in range(len(frames))])
    poster, thumbnail = out_dir / "poster.jpg", out_dir / "thumbnail.jpg"
    (out_dir / f"poster-{best + 1}.jpg").replace(poster)
    (out_dir / f"thumbnail-{best + 1}.jpg").replace(thumbnail)
    return Stills(poster=poster, thumbnail=thumbnail, at_seconds=frames[best] / fps, accurate=True)


def upload(stills: Stills, keys: StillKeys, *, s3: S3Client, bucket: str) -> StillKeys | None:
    """Best effort, like `make_and_upload`."""
    try:
        for path, key in ((stills.poster, keys.poster), (stills.thumbnail, keys.thumbnail)):
            s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": "image/jpeg"})
    except (OSError, ClientError, BotoCoreError):
        logger.exception("could not upload the poster and thumbnail")
        return None
    return keys


def make_and_upload(
    video: Path,
    keys: StillKeys,
    *,
    duration_seconds: float,
    width: int,
    height: int,
    out_dir: Path,
    ffmpeg: str,
    s3: S3Client,
    bucket: str,
    budget: limits.Budget | None = None,
) -> StillKeys | None:
    """Best effort: a render the user paid for is not failed for want of a poster (logged, None)."""
    try:
        stills = capture(
            video,
            duration_seconds=duration_seconds,
            width=width,
            height=height,
            out_dir=out_dir,
            ffmpeg=ffmpeg,
            budget=budget,
        )
        for path, key in ((stills.poster, keys.poster), (stills.thumbnail, keys.thumbnail)):
            s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": "image/jpeg"})
    except (errors.RenderFailure, OSError, ClientError, BotoCoreError):
        logger.exception("could not make the poster and thumbnail", extra={"video": video.name})
        return None
    logger.info("stills made", extra={"at_seconds": stills.at_seconds, "accurate_seek": stills.accurate})
    return keys
