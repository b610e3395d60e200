"""The output's half of the engine: join the chunks (FinalizeRender) or render a plan inline
(StartRender: a remux, a single chunk), encode the audio once or copy it, upload, probe."""

from __future__ import annotations

import bisect
import shutil
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from render_service import errors, sources
from render_service.engines.ffmpeg import audio_copy, limits
from render_service.engines.ffmpeg.audio_track import audio_track_key
from render_service.engines.ffmpeg.chunk import encode_chunk, place_source
from render_service.engines.ffmpeg.commands import (
    ChunkPaths,
    JoinPaths,
    StillFrames,
    adts_argv,
    concat_list,
    join_argv,
    remux_argv,
    remux_concat_list,
)
from render_service.engines.ffmpeg.models import JoinedOutput, MediaInfo, RenderPlan, StillKeys
from render_service.engines.ffmpeg.probe import adts_beside, probe
from render_service.engines.ffmpeg.runner import run_ffmpeg
from render_service.engines.ffmpeg.stills import (
    STILLS_TIMEOUT_SECONDS,
    Picture,
    Stills,
    capture,
    from_rendered,
    make_and_upload,
    thumbnail_size,
)
from render_service.engines.ffmpeg.stills import frames_for as still_frames
from render_service.engines.ffmpeg.stills import upload as upload_stills
from render_service.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

MAX_CHUNK_BYTES = 4 << 30
JOIN_TIMEOUT_SECONDS = 600.0
ADTS_TIMEOUT_SECONDS = 120.0


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
    """Concat demuxer with `-c:v copy`, the audio track StartRender encoded copied (or, for a plan
    without one, the chunks' PCM with the soundtrack mixed in, AAC once), `+faststart`; returns the probe.

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
            _remux_sources(plan, paths, s3, {})
        else:
            for index, key in enumerate(chunk_keys):
                sources.fetch_s3(s3, bucket, key, paths.chunk(index), max_bytes=MAX_CHUNK_BYTES, where=f"chunk {index}")
            if plan.audio is not None:
                sources.fetch_s3(s3, bucket, audio_track_key(plan), paths.audio_track, max_bytes=MAX_CHUNK_BYTES,
                                 where="the audio track")  # fmt: skip
        return _finish(plan, paths, dest_key, s3=s3, bucket=bucket, settings=settings, local={},
                       timeout_seconds=timeout_seconds, stills=stills, cancelled=cancelled)  # fmt: skip
    finally:
        shutil.rmtree(paths.root, ignore_errors=True)


def render_inline(
    plan: RenderPlan,
    local: Mapping[str, Path],
    dest_key: str,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    on_progress: Callable[[int], None],
    stills: StillKeys | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> JoinedOutput:
    """A plan that needs no chunk worker (`RenderPlan.inline`), made from the sources planning
    fetched (`local`, by key; any not kept are fetched again): a remux, or the single chunk
    rendered here and joined at once. Nothing makes a round trip through S3 but the output."""
    if not plan.inline:
        raise errors.EncodeFailed(f"a plan of {len(plan.chunks)} chunks is not rendered inline")
    paths = JoinPaths.for_plan(settings.work_dir, plan, attempt=uuid.uuid4().hex[:8])
    paths.root.mkdir(parents=True)
    try:
        if plan.remux:
            _remux_sources(plan, paths, s3, local)
            on_progress(plan.total_frames)
        else:
            (spec,) = plan.chunks
            # Without a soundtrack to mix, the chunk is the output: one ffmpeg, AAC at once, no join.
            single = spec.mode == "encode" and plan.soundtrack is None
            chunk_paths = ChunkPaths(paths.root / "chunk")
            chunk_paths.root.mkdir()
            # The stills' candidates come from the same run: no decode of the output afterwards.
            # Only without decoded clips: ffmpeg rebuilds the whole filter graph when a clip's frames
            # change their properties mid-stream, which would pick the candidates again.
            frames = None
            if single and stills is not None and all(seg.kind != "clip" for seg in spec.segments):
                (paths.root / "stills").mkdir()
                frames = StillFrames(
                    frames=still_frames(plan.duration_seconds, plan.fps, plan.total_frames),
                    thumb=thumbnail_size(plan.width, plan.height),
                    out_dir=paths.root / "stills",
                )
            encode_chunk(
                spec,
                chunk_paths,
                s3=s3,
                settings=settings,
                on_progress=on_progress,
                local=local,
                cancelled=cancelled,
                final_audio_bitrate=plan.encoding.audio_bitrate if single else None,
                stills=frames,
            )
            chunk_paths.output.rename(paths.output if single else paths.chunk(0))
            shutil.rmtree(chunk_paths.root, ignore_errors=True)
            if single:
                return _publish(
                    plan, paths, dest_key, s3=s3, bucket=bucket, settings=settings, stills=stills, rendered=frames
                )
        return _finish(plan, paths, dest_key, s3=s3, bucket=bucket, settings=settings, local=local,
                       timeout_seconds=JOIN_TIMEOUT_SECONDS, stills=stills, cancelled=cancelled)  # fmt: skip
    finally:
        shutil.rmtree(paths.root, ignore_errors=True)


def _finish(
    plan: RenderPlan,
    paths: JoinPaths,
    dest_key: str,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    local: Mapping[str, Path],
    timeout_seconds: float,
    stills: StillKeys | None,
    cancelled: Callable[[], bool] | None,
) -> JoinedOutput:
    """The chunks (or a remux's sources) in `paths` into the output: join, check, upload, stills."""
    if plan.soundtrack is not None and plan.audio is None:  # else the audio track has it mixed in
        place_source(plan.soundtrack.source, paths.soundtrack(plan), s3=s3, local=local,
                     where="timeline.soundtrack.src")  # fmt: skip
    if plan.remux:
        paths.concat_list.write_text(remux_concat_list(plan, paths))
        if plan.audio_copy is not None and not _splice_audio(plan, paths, settings):
            plan = plan.model_copy(update={"audio_copy": None})
        argv = remux_argv(plan, paths, ffmpeg=settings.ffmpeg)
    else:
        paths.concat_list.write_text(concat_list([paths.chunk(i) for i in range(len(plan.chunks))]))
        argv = join_argv(plan, paths, ffmpeg=settings.ffmpeg)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stills") as pool:
        # A remux copies its clips' pictures as they are, so its stills come from the clips while
        # it runs (a stream copy: disk, not CPU), rather than from the output after it.
        early = pool.submit(_remux_stills, plan, paths, settings) if plan.remux and stills is not None else None
        run_ffmpeg(
            argv,
            timeout=timeout_seconds,
            budget=limits.budget(settings, timeout=timeout_seconds),
            cancelled=cancelled,
            what="join",
        )
        captured = early.result() if early is not None else None
    return _publish(plan, paths, dest_key, s3=s3, bucket=bucket, settings=settings, stills=stills, captured=captured)


def _remux_stills(plan: RenderPlan, paths: JoinPaths, settings: Settings) -> Stills | None:
    """The poster and thumbnail of a remux, from its clips (best effort, like `make_and_upload`)."""
    starts = [spec.start_frame / plan.fps for spec in plan.chunks]

    def locate(at: float) -> Picture:
        k = max(bisect.bisect_right(starts, at) - 1, 0)
        spec = plan.chunks[k]
        return Picture(paths.source(spec), spec.sources[0].demuxer, at - starts[k])

    out_dir = paths.root / "stills"
    out_dir.mkdir(exist_ok=True)
    try:
        return capture(
            locate,
            duration_seconds=plan.duration_seconds,
            width=plan.width,
            height=plan.height,
            out_dir=out_dir,
            ffmpeg=settings.ffmpeg,
            budget=limits.budget(settings, timeout=STILLS_TIMEOUT_SECONDS),
        )
    except (errors.RenderFailure, OSError):
        logger.exception("could not make the poster and thumbnail", extra={"render_id": plan.render_id})
        return None


def _publish(
    plan: RenderPlan,
    paths: JoinPaths,
    dest_key: str,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    stills: StillKeys | None,
    rendered: StillFrames | None = None,
    captured: Stills | None = None,
) -> JoinedOutput:
    """The finished `paths.output`: probed and checked against the plan, uploaded, its stills made
    (picked from the candidates the render wrote, when it wrote them, or `captured` already)."""
    info = probe(paths.output, settings=settings)
    # The Duration line has 10 ms resolution; anything beyond a frame is a bug, not a rounding.
    if abs(info.duration_seconds - plan.duration_seconds) > 1 / plan.fps + 0.011:
        raise errors.EncodeFailed(
            f"joined output lasts {info.duration_seconds:.3f} s, planned {plan.duration_seconds:.3f} s"
        )
    # The upload and the stills' decode overlap: one is network, the other CPU.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload") as pool:
        uploaded = pool.submit(
            s3.upload_file, str(paths.output), bucket, dest_key, ExtraArgs={"ContentType": "video/mp4"}
        )
        made = _stills(
            plan, paths, info, s3=s3, bucket=bucket, settings=settings, stills=stills, rendered=rendered,
            captured=captured,
        )  # fmt: skip
        uploaded.result()
    return JoinedOutput(**info.model_dump(), stills=made)


def _stills(
    plan: RenderPlan,
    paths: JoinPaths,
    info: MediaInfo,
    *,
    s3: S3Client,
    bucket: str,
    settings: Settings,
    stills: StillKeys | None,
    rendered: StillFrames | None,
    captured: Stills | None,
) -> StillKeys | None:
    made = None
    if stills is not None and captured is not None:
        made = upload_stills(captured, stills, s3=s3, bucket=bucket)
    elif stills is not None and rendered is not None:
        try:
            made = upload_stills(
                from_rendered(rendered.out_dir, rendered.frames, plan.fps), stills, s3=s3, bucket=bucket
            )
        except (errors.RenderFailure, OSError):
            logger.exception("could not pick the poster and thumbnail", extra={"render_id": plan.render_id})
    elif stills is not None:
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
    return made


def _splice_audio(plan: RenderPlan, paths: JoinPaths, settings: Settings) -> bool:
    """The copied audio track (audio_copy.py) into `paths.spliced_audio`; False when the sources'
    ADTS does not hold the packets planning listed (the remux then encodes its audio)."""
    assert plan.audio_copy is not None
    files = list(dict.fromkeys(paths.source(spec) for spec in plan.chunks))
    demuxers = {paths.source(spec): spec.sources[0].demuxer for spec in plan.chunks}
    # Planning's scan copied the audio of the sources it kept (`adts_beside`); the rest here.
    missing = [(f, demuxers[f]) for f in files if not paths.adts(f).exists()]
    if missing:
        run_ffmpeg(
            adts_argv(settings.ffmpeg, missing, paths),
            timeout=ADTS_TIMEOUT_SECONDS,
            budget=limits.budget(settings, timeout=ADTS_TIMEOUT_SECONDS),
            what="copying the audio",
        )
    try:
        frames = {f: audio_copy.adts_frames(paths.adts(f).read_bytes()) for f in files}
        track = audio_copy.spliced([frames[paths.source(spec)] for spec in plan.chunks], plan.audio_copy)
    except audio_copy.AdtsError as exc:
        logger.warning("audio not copied", extra={"render_id": plan.render_id, "reason": str(exc)})
        return False
    paths.spliced_audio.write_bytes(track)
    return True


def _remux_sources(plan: RenderPlan, paths: JoinPaths, s3: S3Client, local: Mapping[str, Path]) -> None:
    """Each source once (a clip used twice is one file): linked from `local`, else fetched,
    pinned to the version planned."""
    for spec in plan.chunks:
        target = paths.source(spec)
        if target.exists():
            continue
        (seg,) = spec.segments
        assert seg.source is not None
        ref = spec.sources[seg.source]
        kept = place_source(ref, target, s3=s3, local=local, where=f"scenes[{seg.scene}].src")
        if kept and adts_beside(local[ref.key]).exists():
            sources.link_or_copy(adts_beside(local[ref.key]), paths.adts(target))
