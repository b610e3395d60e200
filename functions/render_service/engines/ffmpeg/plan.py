"""Pure planning: from a request and probed sources to chunks. No I/O here.

The output is laid out in integer frames at the output fps. Scene i occupies
frames [start_i, start_i + frames_i); a transition into scene i overlaps it with
the previous scene by `overlap_i` frames, so the total is the sum of the scenes
minus the overlaps. Audio positions derive from frame positions
(`sample(f) = round(f * 48000 / fps)`), so every chunk's audio is exactly as long
as its video and chunk lengths add up without drift.

Chunking: a chunk is a window [a, b) over that frame line. A cut may fall
anywhere except strictly inside a transition's overlap, so every xfade happens
inside one chunk; scene boundaries without a transition are the preferred cuts,
and a long scene is split near the target length. A chunk that starts inside a
scene seeks into its source on the scene's own frame grid, with half a second of
pre-roll that it decodes and drops: the fps filter picks the source frame
nearest to each output frame, and with the same neighbours in view it picks the
same frames a single pass would (a chunked render equals an unsplit one, frame
for frame). A chunk that starts where a transition begins carries the previous
scene's tail and does the crossfade itself.

Smart copy: a clip whose source already has the output's picture (H.264 of any profile, yuv420p,
the same size and fps, square pixels, no rotation), with no transition on either side, whose
cut starts on a keyframe and ends on a keyframe or at the source's end, and whose frames in that
window are constant-rate and closed (no packet outside the window is needed to decode it), may
have its packets copied. Keyframes come from a packet listing (`probe.py`), not from decoding.
A long copied clip is not split: copying runs at hundreds of times realtime, so parallelism
would not pay for the extra requests.

Copied packets are decoded with the parameter sets (SPS/PPS) of the output's first picture, so
a clip is copied only where its own are the same bytes as everything around it:

- Remux: when every scene is a whole source copied (first frame to last, the common "these
  clips, one after another") and all of them share one video configuration, the plan is marked
  `remux` and no chunk worker runs at all: StartRender concatenates the sources' video packets in
  one ffmpeg. Their audio is copied too when they share one AAC format (`audio_copy.py`);
  otherwise each clip's samples are cut exactly as its copy chunk would and encoded once.
- Otherwise each copied clip is a `copy` chunk of its own, joined with the others. When every
  scene is such a copy of one configuration, all are copied. Next to encoded scenes, a clip is
  copied only when its configuration is the one our encoder writes for this output
  (`encoder_config`, measured by encoding one frame); any other clip is encoded with the rest. A file never switches
  parameter sets in the middle, so every decoder plays it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from render_service import errors, fonts
from render_service.engines.ffmpeg import audio_copy, titles
from render_service.engines.ffmpeg.commands import encoding_for
from render_service.engines.ffmpeg.models import (
    SAMPLE_RATE,
    AudioPiece,
    ChunkSpec,
    Encoding,
    RenderPlan,
    Segment,
    SoundtrackSpec,
    SourceRef,
    TransitionIn,
)
from render_service.engines.ffmpeg.probe import Packet, Probe, VideoPackets
from render_service.models.timeline import ClipScene, ImageScene, RenderRequest, SubjectType, TitleScene

MAX_OUTPUT_SECONDS = 600.0
MAX_CLIP_SUBJECT_SECONDS = 20.0
DEFAULT_CHUNK_SECONDS = 15.0
PREROLL_SECONDS = 0.5
"""Decoded and dropped before a piece that starts inside a scene (covers sources down to 2 fps)."""


@dataclass(frozen=True)
class SourceInfo:
    """A fetched and probed source, as planning needs it."""

    ref: SourceRef
    probe: Probe
    packets: VideoPackets | None = None  # clips only


@dataclass(frozen=True)
class _Scene:
    index: int
    frames: int
    overlap: int  # frames shared with the previous scene (its transition), 0 if none
    start: int  # first output frame
    trim_start: float = 0.0
    copy_start: float | None = None  # seconds, set when the scene is copied


def sample_at(frame: int, fps: int) -> int:
    """The audio sample position of an output frame (round half up, deterministic)."""
    return (frame * SAMPLE_RATE * 2 + fps) // (2 * fps)


def build_plan(
    render_id: str,
    request: RenderRequest,
    sources: Mapping[str, SourceInfo],
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    staged_keys: list[str] | None = None,
    smart_copy: bool = True,
    encoder_config: Callable[[], str | None] | None = None,
) -> RenderPlan:
    """`encoder_config` returns the video configuration our encoder writes for this output (see
    `VideoPackets.video_config`); clips next to encoded scenes are copied only when theirs equals it."""
    out = request.output
    fps = out.fps
    width, height = out.size
    encoding = encoding_for(out.quality, fps)
    scenes = _layout(request, sources, fps)
    total = scenes[-1].start + scenes[-1].frames
    seconds = total / fps
    if seconds > MAX_OUTPUT_SECONDS + 1e-9:
        raise errors.RenderTooLong(f"the timeline lasts {seconds:.1f} s; at most {MAX_OUTPUT_SECONDS:.0f} s")
    subject = request.subject
    if subject is not None and subject.type is SubjectType.clip and seconds > MAX_CLIP_SUBJECT_SECONDS + 1e-9:
        raise errors.RenderTooLong(
            f"a clip render lasts at most {MAX_CLIP_SUBJECT_SECONDS:.0f} s; this timeline lasts {seconds:.1f} s"
        )
    remux = False
    audio: list[AudioPiece] | None = None
    if smart_copy:
        scenes = [
            _with_copy(s, request=request, sources=sources, fps=fps, size=(width, height), scenes=scenes)
            for s in scenes
        ]
        remux = all(_whole_source_copy(s, request, sources) for s in scenes) and _one_config(scenes, request, sources)
        if remux:
            audio = _audio_copy(scenes, request, sources, fps, total) if request.timeline.soundtrack is None else None
        else:
            scenes = _copies_matching(scenes, request, sources, encoder_config)
    windows = _windows(scenes, round(chunk_seconds * fps), total)
    ctx = _Context(render_id, request, sources, scenes, fps, width, height, encoding)
    chunks = [_chunk(ctx, n, a, b) for n, (a, b) in enumerate(windows)]
    sound = None
    if not remux and len(chunks) > 1:
        # Encoded once beside the chunks rather than at the join, where nothing else runs: the
        # whole timeline decoded in one pass, so a scene's sound never restarts at a chunk edge.
        sound = _chunk(ctx, len(chunks), 0, total).model_copy(update={"mode": "encode"})
        chunks = [c.model_copy(update={"video_only": True}) for c in chunks]
    soundtrack = None
    if request.timeline.soundtrack is not None:
        st = request.timeline.soundtrack
        music = sources[st.src]
        soundtrack = SoundtrackSpec(
            source=music.ref,
            volume=st.volume,
            fade_out_seconds=st.fadeOut,
            duration_seconds=music.probe.duration_seconds or None,
        )
    return RenderPlan(
        render_id=render_id,
        chunks=chunks,
        duration_seconds=seconds,
        total_frames=total,
        total_samples=sample_at(total, fps),
        width=width,
        height=height,
        fps=fps,
        encoding=encoding,
        soundtrack=soundtrack,
        staged_keys=staged_keys or [],
        remux=remux,
        audio_copy=audio,
        audio=sound,
    )


def _config(scene: _Scene, request: RenderRequest, sources: Mapping[str, SourceInfo]) -> str | None:
    spec = request.timeline.scenes[scene.index]
    assert isinstance(spec, ClipScene)
    packets = sources[spec.src].packets
    return packets.video_config if packets is not None else None


def _one_config(scenes: list[_Scene], request: RenderRequest, sources: Mapping[str, SourceInfo]) -> bool:
    configs = {_config(s, request, sources) for s in scenes}
    return len(configs) == 1 and None not in configs


def _copies_matching(
    scenes: list[_Scene],
    request: RenderRequest,
    sources: Mapping[str, SourceInfo],
    encoder_config: Callable[[], str | None] | None,
) -> list[_Scene]:
    """Copies that share one configuration with everything else in the output: all of them when no
    scene is encoded, else only those whose configuration is our encoder's."""
    if not any(s.copy_start is not None for s in scenes):
        return scenes
    if all(s.copy_start is not None for s in scenes) and _one_config(scenes, request, sources):
        return scenes
    ours = encoder_config() if encoder_config is not None else None
    return [
        s
        if s.copy_start is None or (ours is not None and _config(s, request, sources) == ours)
        else _Scene(index=s.index, frames=s.frames, overlap=s.overlap, start=s.start, trim_start=s.trim_start)
        for s in scenes
    ]


def _audio_copy(
    scenes: list[_Scene], request: RenderRequest, sources: Mapping[str, SourceInfo], fps: int, total: int
) -> list[AudioPiece] | None:
    """The packets each clip of a remux contributes, when all carry one AAC format (audio_copy.py)."""
    clips: list[audio_copy.ClipAudio] = []
    formats: set[str | None] = set()
    for scene in scenes:
        spec = request.timeline.scenes[scene.index]
        assert isinstance(spec, ClipScene)
        info = sources[spec.src]
        stream, packets = info.probe.audio, info.packets
        if spec.muted or spec.volume != 1 or stream is None or packets is None or packets.audio is None:
            return None
        track = packets.audio
        if (stream.codec, stream.profile, stream.sample_rate) != ("aac", "LC", SAMPLE_RATE) or not (
            track.time_base == Fraction(1, SAMPLE_RATE)
            and track.frame_ticks == audio_copy.AAC_FRAME
            and track.contiguous
            and info.ref.has_audio
        ):
            return None
        formats.add(packets.audio_extradata)
        clips.append(audio_copy.ClipAudio(first_pts=track.first_pts, count=track.count, end_pts=track.end_pts))
    if len(formats) != 1 or None in formats:
        return None
    return audio_copy.splice(clips, [sample_at(s.start, fps) for s in scenes], sample_at(total, fps))


def _whole_source_copy(scene: _Scene, request: RenderRequest, sources: Mapping[str, SourceInfo]) -> bool:
    """A copied scene that is its whole source, first frame to last: the concat demuxer can take the
    file as it is (no inpoint, no outpoint, whose DTS-based cut could let a B-frame GOP's next
    keyframe through), at the file's own timestamps (a zero start)."""
    spec = request.timeline.scenes[scene.index]
    if scene.copy_start != 0 or not isinstance(spec, ClipScene):
        return False
    info = sources[spec.src]
    packets = info.packets
    return (
        packets is not None
        and packets.complete
        and len(packets.packets) == scene.frames
        and info.probe.start_seconds == 0
    )


def _layout(request: RenderRequest, sources: Mapping[str, SourceInfo], fps: int) -> list[_Scene]:
    scenes: list[_Scene] = []
    start = 0
    for i, scene in enumerate(request.timeline.scenes):
        trim = 0.0
        if isinstance(scene, ClipScene):
            info = sources[scene.src]
            end = video_end_seconds(info)
            trim = scene.trimStart
            if trim >= end - 0.5 / fps:
                raise errors.SourceInvalid(
                    f"scenes[{i}].trimStart: {trim:g} s is at or past the end of the video ({end:.3f} s)"
                )
            if scene.duration is None and info.packets is not None and not info.packets.complete:
                # Planning listed packets only up to the longest output after the cut.
                raise errors.RenderTooLong(
                    f"scenes[{i}].duration: the clip runs to the end of its video, more than "
                    f"{MAX_OUTPUT_SECONDS:.0f} s after trimStart; a timeline lasts at most {MAX_OUTPUT_SECONDS:.0f} s"
                )
            # Absent duration means "to the end"; a duration past the end is cut at the end.
            wanted = end - trim if scene.duration is None else min(scene.duration, end - trim)
            frames = max(1, round(wanted * fps))
        else:
            frames = max(1, round(scene.duration * fps))
        t = scene.transition
        overlap = 0
        if i > 0 and t is not None and t.type != "none":
            overlap = max(1, round(t.duration * fps))
            if overlap >= frames or overlap >= scenes[-1].frames:
                raise errors.RenderFailure(
                    f"scenes[{i}].transition.duration ({t.duration:g} s) must be shorter than both scenes it joins"
                )
        start = start - overlap if scenes else 0
        scenes.append(_Scene(index=i, frames=frames, overlap=overlap, start=start, trim_start=trim))
        start += frames
    return scenes


def video_end_seconds(info: SourceInfo) -> float:
    """Where the first video stream ends, relative to the file's start (what `-ss` counts from)."""
    if info.packets is None or not info.packets.packets:
        return info.probe.duration_seconds or 0.0
    return float(info.packets.end_pts * info.packets.time_base) - info.probe.start_seconds


# --- smart copy --------------------------------------------------------------------------


def _with_copy(
    scene: _Scene,
    *,
    request: RenderRequest,
    sources: Mapping[str, SourceInfo],
    fps: int,
    size: tuple[int, int],
    scenes: list[_Scene],
) -> _Scene:
    spec = request.timeline.scenes[scene.index]
    if not isinstance(spec, ClipScene):
        return scene
    following = scenes[scene.index + 1] if scene.index + 1 < len(scenes) else None
    if scene.overlap or (following is not None and following.overlap):
        return scene
    start = copy_start(sources[spec.src], spec.trimStart, scene.frames, fps, size)
    if start is None:
        return scene
    return _Scene(
        index=scene.index,
        frames=scene.frames,
        overlap=0,
        start=scene.start,
        trim_start=scene.trim_start,
        copy_start=start,
    )


def copy_start(info: SourceInfo, trim_start: float, frames: int, fps: int, size: tuple[int, int]) -> float | None:
    """The seek position (seconds) for copying `frames` frames from `trim_start`, or None if not copyable.

    The position is rounded *up* to the microsecond (ffmpeg's unit), because a
    stream-copy seek lands on the keyframe at or before it.
    """
    video, packets = info.probe.video, info.packets
    if video is None or packets is None or not info.ref.demuxer.startswith("mov"):
        return None
    # Whether its parameter sets fit the rest of the output is decided for the plan as a whole.
    if (video.codec, video.pix_fmt, (video.width, video.height)) != ("h264", "yuv420p", size):
        return None
    if abs(video.fps - fps) > 0.01 or video.rotation or video.sar not in (None, Fraction(1)):
        return None
    tb = packets.time_base
    frame_ticks = Fraction(1, fps) / tb
    offset = Fraction(info.probe.start_seconds).limit_denominator(1_000_000) / tb
    half = frame_ticks / 2
    order = packets.packets
    wanted_start = Fraction(trim_start).limit_denominator(1_000_000) / tb + offset
    first = next((j for j, p in enumerate(order) if p.key and abs(p.pts - wanted_start) <= half), None)
    if first is None or not _clean_cut(order, first):
        return None
    if first + frames > len(order):
        return None
    window = order[first : first + frames]
    end = first + frames
    if end < len(order) and not (order[end].key and _clean_cut(order, end)):
        return None
    # The window must be exactly `frames` frames at a constant rate, in presentation order.
    pts = sorted(p.pts for p in window)
    if pts[0] != order[first].pts:
        return None
    if any(abs((b - a) - frame_ticks) > frame_ticks / 100 for a, b in itertools.pairwise(pts)):
        return None
    seconds = (order[first].pts - offset) * tb
    return math.ceil(seconds * 1_000_000) / 1_000_000


def _clean_cut(order: list[Packet], j: int) -> bool:
    """True if packet j splits the stream cleanly: nothing before it shows later, nothing after it earlier."""
    pts = order[j].pts
    return all(p.pts < pts for p in order[:j]) and all(p.pts >= pts for p in order[j:])


# --- chunking ---------------------------------------------------------------------------


def _windows(scenes: list[_Scene], target: int, total: int) -> list[tuple[int, int]]:
    """Cut [0, total) into chunk windows; copied scenes are windows of their own."""
    target = max(target, 1)
    windows: list[tuple[int, int]] = []
    run_start: int | None = None
    for scene in scenes:
        if scene.copy_start is not None:
            if run_start is not None:
                windows += _split(run_start, scene.start, scenes, target)
                run_start = None
            windows.append((scene.start, scene.start + scene.frames))
        elif run_start is None:
            run_start = scene.start
    if run_start is not None:
        windows += _split(run_start, total, scenes, target)
    return windows


def _split(a: int, b: int, scenes: list[_Scene], target: int) -> list[tuple[int, int]]:
    clean = sorted(s.start for s in scenes if a < s.start < b and not s.overlap)
    overlaps = [(s.start, s.start + s.overlap) for s in scenes if s.overlap]
    windows = []
    while b - a > target * 3 // 2:
        ideal = a + target
        candidates = [c for c in clean if max(a + 1, a + target // 2) <= c <= a + target * 3 // 2]
        if candidates:
            cut = min(candidates, key=lambda c: abs(c - ideal))
        else:
            cut = ideal
            for lo, hi in overlaps:
                if lo < cut < hi:
                    cut = hi  # never split a crossfade
        if cut >= b:
            break
        windows.append((a, cut))
        a = cut
    windows.append((a, b))
    return windows


def title_segment(
    spec: TitleScene, scene_frames: int, offset: int, width: int, height: int, fps: int, common: Mapping[str, Any]
) -> Segment:
    """A title's piece: laid out for the whole scene (the same in every chunk it spans)."""
    layout = titles.layout(
        spec.text,
        fonts.metrics(spec.fontFamily),
        font_px=titles.font_px(spec.fontSize, width, height),
        width=width,
        height=height,
        position=spec.position.value,
    )
    return Segment(
        kind="title",
        text=spec.text,
        color=spec.color,
        background=spec.background,
        font_size=spec.fontSize,
        position=spec.position,
        font_family=spec.fontFamily,
        title=layout,
        animation=spec.animation,
        animation_frames=titles.animation_frames(spec.animation, len("".join(layout.lines)), scene_frames, fps),
        offset_frames=offset,
        **common,
    )


@dataclass(frozen=True)
class _Context:
    render_id: str
    request: RenderRequest
    sources: Mapping[str, SourceInfo]
    scenes: list[_Scene]
    fps: int
    width: int
    height: int
    encoding: Encoding


def _chunk(ctx: _Context, index: int, a: int, b: int) -> ChunkSpec:
    fps, request = ctx.fps, ctx.request
    refs: dict[str, int] = {}
    segments: list[Segment] = []
    mode = "encode"
    for scene in ctx.scenes:
        p0, p1 = max(a, scene.start), min(b, scene.start + scene.frames)
        if p0 >= p1:
            continue
        spec = request.timeline.scenes[scene.index]
        transition = None
        if scene.overlap and p0 == scene.start and segments:
            t = spec.transition
            assert t is not None
            transition = TransitionIn(
                type=t.type,
                frames=scene.overlap,
                samples=sample_at(scene.start + scene.overlap, fps) - sample_at(scene.start, fps),
            )
        common = {
            "scene": scene.index,
            "frames": p1 - p0,
            "samples": sample_at(p1, fps) - sample_at(p0, fps),
            "transition_in": transition,
        }
        if isinstance(spec, ClipScene):
            source = refs.setdefault(spec.src, len(refs))
            preroll_frames = preroll_samples = 0
            if scene.copy_start is not None:
                mode = "copy"
                start = scene.copy_start
            else:
                # Seek a little before the piece, on the scene's own frame grid, so the fps
                # filter sees the same neighbouring source frames as an unsplit render would.
                offset = p0 - scene.start
                preroll_frames = min(offset, math.ceil(fps * PREROLL_SECONDS))
                seek = offset - preroll_frames
                start = scene.trim_start + seek / fps
                scene_samples = sample_at(p0, fps) - sample_at(scene.start, fps)
                preroll_samples = max(0, scene_samples - round(seek * SAMPLE_RATE / fps))
            segment = Segment(
                kind="clip",
                source=source,
                start_seconds=start,
                preroll_frames=preroll_frames,
                preroll_samples=preroll_samples,
                fit=spec.fit,
                volume=spec.volume,
                muted=spec.muted,
                **common,
            )
        elif isinstance(spec, ImageScene):
            source = refs.setdefault(spec.src, len(refs))
            segment = Segment(kind="image", source=source, fit=spec.fit, **common)
        else:
            assert isinstance(spec, TitleScene)
            segment = title_segment(spec, scene.frames, p0 - scene.start, ctx.width, ctx.height, fps, common)
        segments.append(segment)
    return ChunkSpec(
        render_id=ctx.render_id,
        index=index,
        frames=b - a,
        start_frame=a,
        samples=sample_at(b, fps) - sample_at(a, fps),
        mode=mode,
        width=ctx.width,
        height=ctx.height,
        fps=fps,
        encoding=ctx.encoding,
        segments=segments,
        sources=[ctx.sources[src].ref for src in refs],
    )
