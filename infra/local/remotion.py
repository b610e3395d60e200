"""A stand-in for the app team's Remotion Lambda, speaking its protocol (see engines/remotion/protocol.py).

It answers `start` and `status` invokes, keeps `renders/<renderId>/progress.json` in its bucket
(moto S3), honours `renders/<renderId>/cancel.json` once a second while rendering, reports errors
the way Remotion does (an `errors[]` entry with name, message, stack and isFatal; `CancelledError`
when cancelled; a refused payload as `{"type": "error"}`), and renders a real H.264/AAC MP4 to
`renders/<renderId>/out.mp4` with ffmpeg.

What it renders: the site has three compositions.
- `TextAnimation` is rendered faithfully from its props (text, style, fontFamily, fontSize, color,
  backgroundColor) with the ffmpeg engine's own title code (engines/ffmpeg/titles.py).
- `Movie` and `DynamicCode` run the team's React code in Remotion; the stand-in cannot, so it
  renders each of `inputProps.scenes` (or the whole video) as a slate of the right length and size.
Anything else is reported as Remotion reports a composition that does not exist.

One hook the real Remotion does not have, for tests of what happens when a render hangs there:
`standin/next-render.json` in its bucket shapes the next render started, and is then removed.
`{"stall": true}` renders nothing until the render is cancelled (a render stuck at Remotion);
`{"startedSecondsAgo": N}` backdates its `renderMetadata.startedDate` by N seconds.

What it does not do: run JavaScript, split the render over several Lambdas (framesPerLambda and
concurrency only shape the reported chunk counts), send webhooks, or charge real money (costs
are estimated from the time spent, as Remotion estimates them).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import shutil
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from render_service import fonts
from render_service.engines.ffmpeg import limits, titles
from render_service.engines.ffmpeg.chunk import write_title_texts
from render_service.engines.ffmpeg.commands import (
    ChunkPaths,
    JoinPaths,
    chunk_argv,
    concat_list,
    encoding_for,
    join_argv,
)
from render_service.engines.ffmpeg.models import ChunkSpec, RenderPlan, Segment
from render_service.engines.ffmpeg.plan import sample_at
from render_service.engines.ffmpeg.runner import run_ffmpeg
from render_service.engines.remotion.protocol import (
    CANCELLED_ERROR,
    BucketProps,
    InlineProps,
    StartPayload,
    StatusPayload,
    cancel_key,
    input_props_key,
    progress_key,
    render_prefix,
)
from render_service.models.timeline import COLOR_NAMES, Quality
from render_service.settings import get_settings

log = logging.getLogger("render_service.local.remotion")

VERSION = "4.0.0"
COMPOSITIONS = ("TextAnimation", "Movie", "DynamicCode")
TEXT_STYLES = ("fade-in", "typewriter", "slide-up", "scale")
# An arm64 Lambda at 2048 MB costs about this much per second (Remotion estimates costs the same way).
COST_PER_SECOND = 0.0000266667
SLATE_COLOURS = ("#1e3a5f", "#5f1e3a", "#3a5f1e", "#5f4b1e", "#1e5f58")
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="remotion")
FAULT_KEY = "standin/next-render.json"
STALL_LIMIT_SECONDS = 600


class Cancelled(Exception):
    pass


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event.get("type")
    version = event.get("version")
    if kind not in ("start", "status"):
        return _refuse(f"unknown payload type {kind!r}")
    if version != VERSION:
        # Remotion: the client and the function must be the same version.
        return _refuse(f"Version mismatch: the payload was built for {version!r}, this function is {VERSION}")
    if kind == "start":
        return _start(StartPayload.model_validate(event))
    return _status(StatusPayload.model_validate(event))


def _refuse(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message, "stack": f"Error: {message}\n    at handler (standin.js)"}


def _s3() -> Any:
    return boto3.client("s3")


def _bucket() -> str:
    return get_settings().remotion_bucket


# --- start --------------------------------------------------------------------------------


def _start(payload: StartPayload) -> dict[str, Any]:
    bucket = _bucket()
    fault = _take_fault(bucket)
    render_id = secrets.token_hex(5)
    frames = payload.forceDurationInFrames
    per_lambda = payload.framesPerLambda or (
        math.ceil(frames / payload.concurrency) if payload.concurrency else max(20, math.ceil(frames / 20))
    )
    document = {
        "renderId": render_id,
        "cancellationEnabled": payload.enableCancellation,
        "renderMetadata": {
            "startedDate": (time.time() - float(fault.get("startedSecondsAgo", 0))) * 1000,
            "totalChunks": math.ceil(frames / per_lambda),
            "compositionId": payload.composition,
            "codec": payload.codec,
            "frameRange": [0, frames - 1],
            "privacy": payload.privacy,
        },
        "overallProgress": 0.0,
        "framesRendered": 0,
        "chunks": 0,
        "lambdasInvoked": 0,
        "errors": [],
        "done": False,
        "timeToFinish": None,
    }
    _write(bucket, render_id, document)
    _pool.submit(_render, payload, bucket, render_id, document, stall=bool(fault.get("stall")))
    return {"type": "success", "renderId": render_id, "bucketName": bucket}


def _take_fault(bucket: str) -> dict[str, Any]:
    """The test hook (see the module's docstring): read once, then gone."""
    try:
        body = _s3().get_object(Bucket=bucket, Key=FAULT_KEY)["Body"].read()
    except ClientError:
        return {}
    _s3().delete_object(Bucket=bucket, Key=FAULT_KEY)
    fault = json.loads(body)
    return fault if isinstance(fault, dict) else {}


def _stall(bucket: str, render_id: str) -> None:
    deadline = time.monotonic() + STALL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if _cancel_requested(bucket, render_id):
            raise Cancelled
        time.sleep(0.25)


def _write(bucket: str, render_id: str, document: dict[str, Any]) -> None:
    _s3().put_object(
        Bucket=bucket, Key=progress_key(render_id), Body=json.dumps(document).encode(), ContentType="application/json"
    )


def _props(payload: StartPayload, bucket: str) -> dict[str, Any]:
    if isinstance(payload.inputProps, InlineProps):
        props = json.loads(payload.inputProps.payload)
    else:
        assert isinstance(payload.inputProps, BucketProps)
        body = _s3().get_object(Bucket=bucket, Key=input_props_key(payload.inputProps.hash))["Body"].read()
        props = json.loads(body)
    if not isinstance(props, dict):
        raise TypeError("inputProps must be a JSON object")
    return props


def _render(payload: StartPayload, bucket: str, render_id: str, document: dict[str, Any], *, stall: bool) -> None:
    started = time.monotonic()
    work = get_settings().work_dir / "remotion" / render_id
    try:
        if stall:
            _stall(bucket, render_id)
        props = _props(payload, bucket)
        if payload.composition not in COMPOSITIONS:
            raise LookupError(
                f"No composition with the ID {payload.composition} found. "
                f"Available compositions: {', '.join(COMPOSITIONS)}"
            )
        spec = _spec(payload, props, render_id)
        document["lambdasInvoked"] = document["renderMetadata"]["totalChunks"]
        output = _encode(spec, work, bucket, render_id, document, started)
        size = output.stat().st_size
        key = f"{render_prefix(render_id)}out.mp4"
        _s3().upload_file(str(output), bucket, key, ExtraArgs={"ContentType": "video/mp4"})
        document.update(
            overallProgress=1.0,
            done=True,
            chunks=document["renderMetadata"]["totalChunks"],
            framesRendered=spec.frames,
            outKey=key,
            outBucket=bucket,
            outputSizeInBytes=size,
            timeToFinish=round((time.monotonic() - started) * 1000),
        )
    except Exception as exc:
        name = CANCELLED_ERROR if isinstance(exc, Cancelled) else type(exc).__name__
        message = "The render was cancelled" if isinstance(exc, Cancelled) else str(exc)
        log.info("stand-in render %s failed: %s: %s", render_id, name, message)
        document["errors"].append(
            {
                "name": name,
                "type": "renderer",
                "message": message,
                "stack": "".join(traceback.format_exception(exc)),
                "chunk": 0,
                "frame": None,
                "isFatal": True,
                "attempt": 1,
                "totalAttempts": 1,
                "willRetry": False,
            }
        )
    finally:
        document["costs"] = _costs(time.monotonic() - started)
        _write(bucket, render_id, document)
        shutil.rmtree(work, ignore_errors=True)


def _costs(seconds: float) -> dict[str, Any]:
    accrued = round(seconds * COST_PER_SECOND, 6)
    return {
        "accruedSoFar": accrued,
        "currency": "USD",
        "displayCost": f"${accrued:.4f}",
        "disclaimer": "Estimated cost for function invocations only (stand-in: from time spent).",
    }


# --- what to draw -------------------------------------------------------------------------


def _color(value: Any, default: str) -> str:
    # A colour the browser would not understand falls back to the composition's default, as CSS does.
    text = str(value) if value is not None else ""
    if text.lower() in COLOR_NAMES or (text.startswith("#") and len(text) in (7, 9)):
        return text
    return default


def _family(value: Any) -> fonts.FontFamily:
    return value if value in fonts.FONTS else fonts.DEFAULT_FAMILY


def _spec(payload: StartPayload, props: dict[str, Any], render_id: str) -> ChunkSpec:
    width, height, fps = payload.forceWidth, payload.forceHeight, payload.forceFps
    frames = payload.forceDurationInFrames
    if payload.composition == "TextAnimation":
        text = props.get("text")
        if not isinstance(text, str) or not text.strip():
            raise TypeError("TextAnimation: props.text must be a non-empty string")
        style = props.get("style", "fade-in")
        if style not in TEXT_STYLES:
            raise ValueError(f"TextAnimation: props.style must be one of {', '.join(TEXT_STYLES)}, got {style!r}")
        pieces = [
            (
                frames,
                text,
                style,
                _family(props.get("fontFamily")),
                int(props.get("fontSize") or 80),
                _color(props.get("color"), "white"),
                _color(props.get("backgroundColor"), "black"),
            )
        ]
    else:
        given = props.get("scenes")
        scenes: list[Any] = given if isinstance(given, list) else []
        count = max(1, len(scenes))
        pieces = []
        for i in range(count):
            share = frames // count + (1 if i < frames % count else 0)
            if share == 0:
                continue
            scene = scenes[i] if i < len(scenes) and isinstance(scenes[i], dict) else {}
            label = str(scene.get("title") or scene.get("text") or f"Scene {i + 1}")[:120]
            slate = f"{payload.composition} · scene {i + 1} of {count}\n{label}"
            pieces.append((share, slate, "none", fonts.DEFAULT_FAMILY, 48, "white", SLATE_COLOURS[i % 5]))
    segments, start = [], 0
    for i, (n, text, style, family, size, color, background) in enumerate(pieces):
        layout = titles.layout(text, fonts.metrics(family), font_px=size, width=width, height=height)
        segments.append(
            Segment(
                scene=i,
                kind="title",
                frames=n,
                samples=sample_at(start + n, fps) - sample_at(start, fps),
                text=text,
                color=color,
                background=background,
                font_family=family,
                title=layout,
                animation=style,  # type: ignore[arg-type]
                animation_frames=titles.animation_frames(style, len("".join(layout.lines)), n, fps),  # type: ignore[arg-type]
            )
        )
        start += n
    return ChunkSpec(
        render_id=render_id,
        index=0,
        frames=frames,
        start_frame=0,
        samples=sample_at(frames, fps),
        mode="encode",
        width=width,
        height=height,
        fps=fps,
        encoding=encoding_for(Quality.medium, fps),
        segments=segments,
        sources=[],
    )


# --- rendering ----------------------------------------------------------------------------


def _encode(spec: ChunkSpec, work: Path, bucket: str, render_id: str, document: dict[str, Any], started: float) -> Path:
    settings = get_settings()
    paths = ChunkPaths(work / "render")
    paths.root.mkdir(parents=True)
    write_title_texts(spec, paths)
    last_check = [0.0]
    lock = threading.Lock()

    def on_progress(frames: int) -> None:
        with lock:
            now = time.monotonic()
            if now - last_check[0] < 1.0:
                return
            last_check[0] = now
            if _cancel_requested(bucket, render_id):
                raise Cancelled
            # Rendering is most of the work; encoding the audio and muxing the rest.
            document.update(
                overallProgress=round(0.9 * frames / spec.frames, 4),
                framesRendered=frames - frames % 5,
                chunks=math.floor(document["renderMetadata"]["totalChunks"] * frames / spec.frames),
                costs=_costs(now - started),
            )
            _write(bucket, render_id, document)

    if _cancel_requested(bucket, render_id):
        raise Cancelled
    run_ffmpeg(
        chunk_argv(spec, paths, ffmpeg=settings.ffmpeg, fonts=settings.font),
        timeout=300,
        budget=limits.budget(settings, timeout=300),
        on_progress=on_progress,
        what="remotion stand-in render",
    )
    plan = RenderPlan(
        render_id=render_id,
        chunks=[spec],
        duration_seconds=spec.frames / spec.fps,
        total_frames=spec.frames,
        total_samples=spec.samples,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        encoding=spec.encoding,
    )
    join = JoinPaths(work / "join")
    join.root.mkdir(parents=True)
    shutil.move(paths.output, join.chunk(0))
    join.concat_list.write_text(concat_list([join.chunk(0)]))
    document["encodingStatus"] = {"framesEncoded": spec.frames}
    run_ffmpeg(
        join_argv(plan, join, ffmpeg=settings.ffmpeg),
        timeout=120,
        budget=limits.budget(settings, timeout=120),
        what="remotion stand-in mux",
    )
    return join.output


def _cancel_requested(bucket: str, render_id: str) -> bool:
    try:
        _s3().head_object(Bucket=bucket, Key=cancel_key(render_id))
    except ClientError:
        return False
    return True


# --- status -------------------------------------------------------------------------------


def _status(payload: StatusPayload) -> dict[str, Any]:
    try:
        body = _s3().get_object(Bucket=payload.bucketName, Key=progress_key(payload.renderId))["Body"].read()
    except ClientError:
        return _refuse(f"No render with ID {payload.renderId} found in bucket {payload.bucketName}")
    document = json.loads(body)
    errors = document.get("errors", [])
    return {
        **document,
        "bucket": payload.bucketName,
        "currentTime": time.time() * 1000,
        # Derived on read, as getRenderProgress() does; progress.json does not store it.
        "fatalErrorEncountered": any(e.get("isFatal") for e in errors),
        "outputFile": (
            f"s3://{document['outBucket']}/{document['outKey']}"
            if document.get("done") and document.get("outKey")
            else None
        ),
        "costs": document.get("costs") or _costs(0),
    }
