"""Pure argv builders: every ffmpeg command the engine runs is assembled here.

Quality ladder (x264 CRF and preset; AAC bitrate). Every chunk of one render uses
the same row, `-profile:v high`, yuv420p, square pixels, a closed GOP of at most
two seconds and the same time base, so the chunks' H.264 streams share their
parameter sets and the concat demuxer can join them with a stream copy:

| quality | CRF | x264 preset | AAC     |
|---------|-----|-------------|---------|
| low     | 28  | veryfast    | 96 kb/s |
| medium  | 23  | veryfast    | 128 kb/s|
| high    | 19  | medium      | 192 kb/s|

(`veryfast` is the sweet spot on 2-vCPU Lambda, about 67 fps at 1080p30; `medium`
costs about 2.5x the time for visibly cleaner gradients.)

Inputs are always local files we downloaded ourselves. Each is opened with
`-protocol_whitelist file,pipe`, the demuxer allow list and the demuxer found at
probe time forced with `-f`, so no input can make ffmpeg reach the network or
follow a playlist to another file. Concat lists use `-safe 0` only because they
hold absolute paths we wrote.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from render_service.engines.ffmpeg import titles
from render_service.engines.ffmpeg.models import SAMPLE_RATE, ChunkSpec, Encoding, RenderPlan, Segment
from render_service.fonts import FontFamily
from render_service.models.timeline import Fit, Quality
from render_service.settings import Settings

FontPaths = Callable[[FontFamily], str]

# The demuxers a source may use. Anything else (hls, concat, image2 sequences, ...) is refused.
VIDEO_FORMATS = ("mov", "matroska", "avi", "mpegts")
IMAGE_FORMATS = ("png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe")
AUDIO_FORMATS = ("mov", "matroska", "mp3", "wav", "aac", "flac", "ogg")
ALL_FORMATS = tuple(dict.fromkeys(VIDEO_FORMATS + IMAGE_FORMATS + AUDIO_FORMATS))

LADDER: dict[Quality, tuple[int, str, str]] = {
    Quality.low: (28, "veryfast", "96k"),
    Quality.medium: (23, "veryfast", "128k"),
    Quality.high: (19, "medium", "192k"),
}

# Seek margin: decode a little past a piece's end so the fps filter never runs short.
READ_MARGIN_SECONDS = 0.5


def encoding_for(quality: Quality, fps: int) -> Encoding:
    crf, preset, audio_bitrate = LADDER[quality]
    return Encoding(crf=crf, preset=preset, gop=2 * fps, audio_bitrate=audio_bitrate)


# --- escaping ---------------------------------------------------------------------------


def filter_value(value: str) -> str:
    """Escape a filter option value for use inside -filter_complex.

    Two levels, as ffmpeg-filters(1) "Notes on filtergraph escaping" describes:
    first the option level (`\\`, `'`, `:`), then the graph level (`\\`, `'`, `[`, `]`, `,`, `;`).
    """
    level1 = re.sub(r"([\\':])", r"\\\1", value)
    return re.sub(r"([\\'\[\],;])", r"\\\1", level1)


def ffmpeg_color(color: str) -> str:
    """`#rrggbb[aa]` becomes ffmpeg's `0xrrggbb[aa]`; names pass through (the API checks their shape)."""
    return "0x" + color[1:] if color.startswith("#") else color


def concat_list(paths: Sequence[Path]) -> str:
    """An ffconcat script; single quotes inside a path are closed, escaped and reopened."""
    lines = ["ffconcat version 1.0"]
    lines += ["file '" + str(p).replace("'", "'\\''") + "'" for p in paths]
    return "\n".join(lines) + "\n"


# --- inputs -----------------------------------------------------------------------------


def safe_input(path: Path, demuxer: str, formats: Sequence[str]) -> list[str]:
    """Open one local file: files and pipes only, allowed demuxers only, the probed one forced."""
    return [
        "-protocol_whitelist",
        "file,pipe",
        "-format_whitelist",
        ",".join(formats),
        "-f",
        demuxer.split(",", maxsplit=1)[0],
        "-i",
        str(path),
    ]


def _base(ffmpeg: str, *, progress: bool) -> list[str]:
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if progress:
        # key=value progress on stdout, every 0.5 s; -nostats keeps stderr for errors only.
        argv += ["-progress", "pipe:1", "-nostats", "-stats_period", "0.5"]
    return argv


def probe_argv(ffmpeg: str, path: Path, formats: Sequence[str], *, max_pixels: int) -> list[str]:
    # No output file: ffmpeg prints the input description and exits 1, which is expected.
    # -max_pixels reaches the decoders avformat_find_stream_info opens, so the probe never
    # decodes a picture larger than the bound just to learn its pixel format.
    return [ffmpeg, "-hide_banner", "-nostdin", *_probe_input(path, formats, max_pixels)]


def _probe_input(path: Path, formats: Sequence[str], max_pixels: int) -> list[str]:
    """Open a file not probed yet: files and pipes only, allowed demuxers only, pictures bounded."""
    return ["-max_pixels", str(max_pixels), "-protocol_whitelist", "file,pipe", "-format_whitelist",
            ",".join(formats), "-i", str(path)]  # fmt: skip


def packet_scan_argv(
    ffmpeg: str,
    path: Path,
    demuxer: str,
    *,
    start: float | None = None,
    duration: float | None = None,
    audio: bool = False,
    parameter_sets: Path | None = None,
    adts: Path | None = None,
    probing: tuple[Sequence[str], int] | None = None,
) -> list[str]:
    """framecrc of a stream copy lists packets' timestamps and flags without decoding.

    `-ss` (the keyframe at or before it, found in the index) and `-t` bound the window read;
    `-copyts` keeps the file's own timestamps, whatever window is read. With `parameter_sets`,
    the same run also writes the window's first video packet there in Annex B form, which puts
    the stream's SPS and PPS in front of it (see h264.py). With `adts`, it also copies the first
    audio stream's packets there as ADTS, for a remux that copies the audio (audio_copy.py).
    With `probing` (allowed demuxers, max pixels), the file is opened the way `probe_argv` opens
    it, not as a known demuxer, and its description is logged as `ffmpeg -i` prints it.
    """
    window: list[str] = ["-copyts"]
    if start:
        window += ["-ss", f"{start:.6f}"]
    if duration is not None:
        window += ["-t", f"{duration:.6f}"]
    maps = ["-map", "0:v:0"] + (["-map", "0:a:0?"] if audio else [])
    if probing is None:
        opening = ["-loglevel", "error", *safe_input(path, demuxer, ALL_FORMATS)]
    else:
        formats, max_pixels = probing
        opening = ["-nostats", *_probe_input(path, formats, max_pixels)]
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        *window,
        *opening,
        *maps,
        "-c",
        "copy",
        "-f",
        "framecrc",
        "pipe:1",
        *(_annexb_head(parameter_sets) if parameter_sets is not None else []),
        *(_adts_copy("0", adts) if adts is not None else []),
    ]


def _adts_copy(stream: str, out: Path) -> list[str]:
    return ["-map", f"{stream}:a:0", "-c:a", "copy", "-map_metadata", "-1", "-f", "adts", str(out)]


def _annexb_head(out: Path) -> list[str]:
    return ["-map", "0:v:0", "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-frames:v", "1", "-f", "h264", str(out)]


def parameter_sets_argv(ffmpeg: str, path: Path, demuxer: str, out: Path) -> list[str]:
    """The first video packet in Annex B form, which puts the stream's SPS and PPS in front of it."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        *safe_input(path, demuxer, ALL_FORMATS),
        *_annexb_head(out),
    ]


def audio_scan_argv(ffmpeg: str, path: Path, demuxer: str, *, seconds: float) -> list[str]:
    """framecrc of the first audio stream's first `seconds`: does it have any samples at all?"""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-t",
        f"{seconds:.6f}",
        *safe_input(path, demuxer, ALL_FORMATS),
        "-map",
        "0:a:0",
        "-c",
        "copy",
        "-f",
        "framecrc",
        "pipe:1",
    ]


# --- chunk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkPaths:
    """Where a chunk worker keeps its files; one directory per chunk, removed afterwards."""

    root: Path

    @classmethod
    def for_chunk(cls, work_dir: Path, spec: ChunkSpec, attempt: str = "") -> ChunkPaths:
        """`attempt` keeps a re-dispatched chunk running in the same process (local mode) apart."""
        return cls(work_dir / spec.render_id / f"chunk-{spec.index:04d}{attempt and '-' + attempt}")

    def source(self, spec: ChunkSpec, index: int) -> Path:
        return self.root / f"src-{index}{spec.sources[index].ext}"

    def title(self, segment_index: int, line: int, chars: int) -> Path:
        """The first `chars` characters of one line of a title (typewriter draws every prefix)."""
        return self.root / f"title-{segment_index}-{line}-{chars}.txt"

    def title_files(self, segment_index: int) -> Callable[[int, int], str]:
        return lambda line, chars: str(self.title(segment_index, line, chars))

    @property
    def output(self) -> Path:
        return self.root / "out.mp4"


# Every encoded picture is tagged BT.709, limited range, whatever its source said: x264 writes the
# tags into the stream's parameter sets, so untagged titles and tagged clips would otherwise get
# different SPS, and copied clips are matched against these bytes (plan.py).
COLOR_TAGS = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"


def fit_filter(fit: Fit, width: int, height: int) -> str:
    # No colour matrix conversion here: it costs swscale its fast paths (about 1.5x the scaling time).
    if fit is Fit.cover:
        # Crop the source to the output's aspect, then scale: the same picture as scaling the whole
        # frame and cropping (SSIM 0.999 between the two on test patterns), but swscale only
        # resamples the part that is kept. A 1080p source into 720x1280 scaled 1920x1080 to
        # 2276x1280 and threw 68 % of it away: a third of the filter CPU per frame.
        return f"crop=w='min(iw,ih*{width}/{height})':h='min(ih,iw*{height}/{width})',scale={width}:{height}"
    if fit is Fit.contain:
        return (
            f"scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black"
        )
    return f"scale={width}:{height}"


def _silence(samples: int) -> str:
    return f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end_sample={samples}"


# Audio is normalised to one format before any crossfade or concat inside the graph.
_AUDIO_NORM = f"aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"


def _segment_filters(
    spec: ChunkSpec,
    k: int,
    seg: Segment,
    *,
    video_in: str,
    input_index: int | None,
    paths: ChunkPaths,
    fonts: FontPaths,
) -> tuple[str, str]:
    """The video and audio filter chains for segment k, labelled [v{k}] and [a{k}].

    `video_in` is the label of the segment's pictures: its clip input's video, or its
    share of the chunk's one decode of an image (see `_image_inputs`).
    """
    w, h, fps = spec.width, spec.height, spec.fps
    # Every piece ends with exactly seg.frames frames: pad (clone the last) then cut.
    exact = f"tpad=stop_mode=clone:stop=-1,trim=end_frame={seg.frames},setpts=PTS-STARTPTS"
    norm = "setsar=1,format=yuv420p"
    if seg.kind == "clip":
        # fps with start_time=0 puts output frames on the grid of the seek point (see plan.py),
        # and the pre-roll is cut before scaling so it costs a decode only.
        preroll = f"trim=start_frame={seg.preroll_frames},setpts=PTS-STARTPTS," if seg.preroll_frames else ""
        video = f"{video_in}fps={fps}:start_time=0,{preroll}{fit_filter(seg.fit, w, h)},{norm},{exact}[v{k}]"
    elif seg.kind == "image":
        # Scale the single decoded picture once, then repeat it.
        video = (
            f"{video_in}{fit_filter(seg.fit, w, h)},{norm},loop=loop=-1:size=1,"
            f"settb=1/{fps},setpts=N,fps={fps},{exact}[v{k}]"
        )
    else:
        assert seg.title is not None
        # One drawtext per line, each reading its own file: the user's text never reaches the filter parser.
        draw = (
            ",".join(
                titles.drawtext_chain(
                    seg.title,
                    animation=seg.animation,
                    frames=seg.animation_frames,
                    offset=seg.offset_frames,
                    font=fonts(seg.font_family),
                    color=ffmpeg_color(seg.color or "white"),
                    text_file=paths.title_files(k),
                    escape=filter_value,
                )
            )
            or "null"
        )
        background = ffmpeg_color(seg.background or "black")
        video = f"color=c={background}:s={w}x{h}:r={fps},trim=end_frame={seg.frames},{norm},{draw}[v{k}]"
    return video, _segment_audio(spec, k, seg, input_index=input_index)


def _sounds(spec: ChunkSpec, seg: Segment) -> bool:
    """Whether the segment's sound comes from its clip (else it is silence)."""
    return seg.kind == "clip" and seg.source is not None and spec.sources[seg.source].has_audio and not seg.muted


def _segment_audio(spec: ChunkSpec, k: int, seg: Segment, *, input_index: int | None) -> str:
    """Segment k's audio, exactly seg.samples long, labelled [a{k}]."""
    if _sounds(spec, seg):
        gain = f",volume={seg.volume:g}" if seg.volume != 1 else ""
        preroll = f",asetpts=N/SR/TB,atrim=start_sample={seg.preroll_samples}" if seg.preroll_samples else ""
        return (
            f"[{input_index}:a:0]{_AUDIO_NORM}{preroll}{gain},apad,atrim=end_sample={seg.samples},asetpts=N/SR/TB[a{k}]"
        )
    # Titles, images, muted and silent clips get silence so audio stays aligned with video.
    return f"{_silence(seg.samples)},{_AUDIO_NORM}[a{k}]"


@dataclass(frozen=True)
class PixelBounds:
    """The largest picture a chunk's decoders may produce (`-max_pixels` on each input).

    Planning has refused larger sources already; this keeps a decoder from allocating for
    a picture the probe never saw (a frame that changes size mid-stream).
    """

    image: int = Settings.model_fields["max_image_pixels"].default
    video: int = Settings.model_fields["max_video_pixels"].default

    @classmethod
    def of(cls, settings: Settings) -> PixelBounds:
        return cls(image=settings.max_image_pixels, video=settings.max_video_pixels)


def _image_inputs(spec: ChunkSpec, first_input: int) -> tuple[dict[int, int], dict[int, list[str]], list[str]]:
    """One input per distinct image of the chunk, decoded once and scaled down at once.

    Returns the input index of each image source, the labels its segments read (in
    segment order), and the filter chains that make them: the decoded picture is scaled
    down (never up) to the smallest size that still covers the output frame, so every
    fit can be cut from it, and the full-size picture is released before anything else
    runs; `split` then shares that one small picture between the segments.
    """
    uses: dict[int, int] = {}
    for seg in spec.segments:
        if seg.kind == "image" and seg.source is not None:
            uses[seg.source] = uses.get(seg.source, 0) + 1
    inputs = {source: first_input + n for n, source in enumerate(uses)}
    labels: dict[int, list[str]] = {}
    chains: list[str] = []
    w, h = spec.width, spec.height
    for source, count in uses.items():
        labels[source] = [f"[img{source}_{j}]" for j in range(count)]
        shrink = f"scale=w='min(iw,{w})':h='min(ih,{h})':force_original_aspect_ratio=increase"
        fan_out = f"split={count}" if count > 1 else "null"
        chains.append(f"[{inputs[source]}:v:0]{shrink},{fan_out}{''.join(labels[source])}")
    return inputs, labels, chains


def chunk_argv(
    spec: ChunkSpec,
    paths: ChunkPaths,
    *,
    ffmpeg: str,
    fonts: FontPaths,
    pixels: PixelBounds | None = None,
    final_audio_bitrate: str | None = None,
    stills: StillFrames | None = None,
) -> list[str]:
    """The single ffmpeg run that renders one chunk: H.264 video + 48 kHz PCM audio in MP4.

    `fonts` names the font file of a family (see render_service.fonts). With
    `final_audio_bitrate`, the chunk is the whole output (a single chunk rendered inline):
    its audio is AAC at once and the file is laid out for streaming, so no join follows; with
    `stills`, the same run writes the poster and thumbnail candidates (see stills.py)."""
    bounds = pixels or PixelBounds()
    if spec.mode == "copy":
        return _copy_chunk_argv(spec, paths, ffmpeg, bounds)
    argv = _base(ffmpeg, progress=True)
    next_input = 0
    for seg in spec.segments:
        if seg.kind == "clip" and seg.source is not None:
            clip = spec.sources[seg.source]
            # Input seeking: fast, and frame-accurate because we decode (not copy) here.
            read = (seg.preroll_frames + seg.frames) / spec.fps + READ_MARGIN_SECONDS
            argv += ["-ss", f"{seg.start_seconds:.6f}", "-t", f"{read:.6f}", "-max_pixels", str(bounds.video)]
            argv += safe_input(paths.source(spec, seg.source), clip.demuxer, VIDEO_FORMATS)
            next_input += 1
    image_inputs, image_labels, graph = _image_inputs(spec, next_input)
    for image, _ in sorted(image_inputs.items(), key=lambda item: item[1]):
        argv += ["-max_pixels", str(bounds.image)]
        argv += safe_input(paths.source(spec, image), spec.sources[image].demuxer, IMAGE_FORMATS)
    clip_input = 0
    taken: dict[int, int] = {}
    for k, seg in enumerate(spec.segments):
        input_index, video_in = None, ""
        if seg.kind == "clip" and seg.source is not None:
            input_index, video_in = clip_input, f"[{clip_input}:v:0]"
            clip_input += 1
        elif seg.kind == "image" and seg.source is not None:
            j = taken.get(seg.source, 0)
            taken[seg.source] = j + 1
            video_in = image_labels[seg.source][j]
        video, audio = _segment_filters(
            spec, k, seg, video_in=video_in, input_index=input_index, paths=paths, fonts=fonts
        )
        graph += [video] if spec.video_only else [video, audio]
    graph += _join_segments(spec, audio=not spec.video_only)
    video_out = "[vout]"
    if stills is not None:
        video_out = "[venc]"
        graph += stills.chains("[vout]", video_out)
    argv += ["-filter_complex", ";".join(graph), "-map", video_out]
    argv += [] if spec.video_only else ["-map", "[aout]"]
    argv += ["-frames:v", str(spec.frames)]
    argv += _video_encoder(spec.encoding)
    if spec.video_only:
        argv += ["-an"]
    elif final_audio_bitrate is None:
        argv += _chunk_audio()
    else:
        argv += ["-c:a", "aac", "-b:a", final_audio_bitrate, "-ar", str(SAMPLE_RATE), "-ac", "2"]
        argv += ["-movflags", "+faststart"]
    argv += ["-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", str(paths.output)]
    return argv + (stills.outputs() if stills is not None else [])


@dataclass(frozen=True)
class StillFrames:
    """Poster and thumbnail candidates taken from the frames a run renders anyway: each frame's
    64x36 grey measure (raw, one after another), its poster and its thumbnail (JPEGs numbered from 1)."""

    frames: tuple[int, ...]
    thumb: tuple[int, int]
    out_dir: Path
    measure: tuple[int, int] = (64, 36)

    def chains(self, video: str, passed_on: str) -> list[str]:
        picked = "+".join(f"eq(n,{n})" for n in self.frames)
        w, h = self.measure
        return [
            f"{video}split=2{passed_on}[stills]",
            # Renumbered: the candidates' own timestamps need not be strictly increasing (a frame
            # a segment's guard cloned shares its neighbour's), and each output wants them so.
            f"[stills]select='{picked}',setpts=N,split=3[still_m][still_p][still_t]",
            f"[still_m]scale={w}:{h},format=gray[still_measure]",
            f"[still_t]scale={self.thumb[0]}:{self.thumb[1]}:flags=lanczos[still_thumb]",
        ]

    def outputs(self) -> list[str]:
        each = ["-fps_mode", "passthrough", "-map_metadata", "-1"]
        return [
            *["-map", "[still_measure]", *each, "-f", "rawvideo", str(self.out_dir / "measure.gray")],
            *["-map", "[still_p]", *each, "-q:v", "2", "-f", "image2", str(self.out_dir / "poster-%d.jpg")],
            *["-map", "[still_thumb]", *each, "-q:v", "4", "-f", "image2", str(self.out_dir / "thumbnail-%d.jpg")],
        ]


def _join_segments(spec: ChunkSpec, *, video: bool = True, audio: bool = True) -> list[str]:
    """Chain the segments' [v{k}] and/or [a{k}] into [vout]/[aout]: xfade/acrossfade where a
    transition joins them, concat elsewhere."""
    fps = spec.fps
    chains: list[str] = []
    acc_v, acc_a, acc_frames = "[v0]", "[a0]", spec.segments[0].frames
    for k, seg in enumerate(spec.segments[1:], start=1):
        out_v, out_a = f"[vj{k}]", f"[aj{k}]"
        t = seg.transition_in
        if t is not None:
            offset = (acc_frames - t.frames) / fps
            if video:
                chains.append(
                    f"{acc_v}[v{k}]xfade=transition={t.type}:duration={t.frames / fps:.6f}:offset={offset:.6f}{out_v}"
                )
            if audio:
                chains.append(f"{acc_a}[a{k}]acrossfade=ns={t.samples}{out_a}")
            acc_frames += seg.frames - t.frames
        else:
            # concat outputs in microseconds; xfade further on needs both inputs at 1/fps.
            if video and audio:
                chains.append(f"{acc_v}{acc_a}[v{k}][a{k}]concat=n=2:v=1:a=1[vc{k}]{out_a}")
            elif video:
                chains.append(f"{acc_v}[v{k}]concat=n=2:v=1:a=0[vc{k}]")
            else:
                chains.append(f"{acc_a}[a{k}]concat=n=2:v=0:a=1{out_a}")
            if video:
                chains.append(f"[vc{k}]settb=1/{fps}{out_v}")
            acc_frames += seg.frames
        acc_v, acc_a = out_v, out_a
    # Guards: whatever rounding happened inside, the chunk has exactly its frames and samples.
    if video:
        chains.append(
            f"{acc_v}tpad=stop_mode=clone:stop=-1,trim=end_frame={spec.frames},setpts=PTS-STARTPTS,{COLOR_TAGS}[vout]"
        )
    if audio:
        chains.append(f"{acc_a}apad,atrim=end_sample={spec.samples},asetpts=N/SR/TB[aout]")
    return chains


def _video_encoder(enc: Encoding) -> list[str]:
    return [
        "-c:v",
        "libx264",
        "-preset",
        enc.preset,
        "-crf",
        str(enc.crf),
        "-profile:v",
        enc.profile,
        "-pix_fmt",
        "yuv420p",
        # Closed GOPs of a fixed maximum length: every chunk starts on an IDR frame that
        # needs nothing from the previous chunk.
        "-g",
        str(enc.gop),
        "-flags",
        "+cgop",
    ]


def encoder_config_argv(ffmpeg: str, width: int, height: int, fps: int, encoding: Encoding, out: Path) -> list[str]:
    """One black frame through the chunks' encoder settings: the parameter sets every chunk gets."""
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    argv += ["-f", "lavfi", "-i", f"color=c=black:s={width}x{height}:r={fps}"]
    argv += ["-vf", f"setsar=1,format=yuv420p,{COLOR_TAGS}", "-frames:v", "1", *_video_encoder(encoding)]
    return [*argv, "-an", "-f", "mp4", str(out)]


def _chunk_audio() -> list[str]:
    # PCM, not AAC: chunks are joined sample-exactly and AAC is encoded once, at the join.
    return ["-c:a", "pcm_s16le", "-ar", str(SAMPLE_RATE), "-ac", "2"]


def _copy_chunk_argv(spec: ChunkSpec, paths: ChunkPaths, ffmpeg: str, bounds: PixelBounds) -> list[str]:
    """Smart copy: the clip's H.264 packets are copied from keyframe to keyframe; only audio (if
    the chunk carries any) is decoded."""
    (seg,) = spec.segments
    assert seg.source is not None
    source = spec.sources[seg.source]
    argv = _base(ffmpeg, progress=True)
    argv += ["-ss", f"{seg.start_seconds:.6f}", "-max_pixels", str(bounds.video)]
    argv += safe_input(paths.source(spec, seg.source), source.demuxer, VIDEO_FORMATS)
    if spec.video_only:
        argv += ["-map", "0:v:0", "-c:v", "copy", "-frames:v", str(spec.frames), "-an"]
        return [*argv, "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", str(paths.output)]
    if source.has_audio and not seg.muted:
        gain = f",volume={seg.volume:g}" if seg.volume != 1 else ""
        audio = f"[0:a:0]{_AUDIO_NORM}{gain},apad,atrim=end_sample={spec.samples},asetpts=N/SR/TB[aout]"
    else:
        audio = f"{_silence(spec.samples)},{_AUDIO_NORM}[aout]"
    argv += ["-filter_complex", audio]
    argv += ["-map", "0:v:0", "-c:v", "copy", "-frames:v", str(spec.frames)]
    argv += ["-map", "[aout]", *_chunk_audio()]
    argv += ["-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", str(paths.output)]
    return argv


# --- join -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinPaths:
    root: Path

    @classmethod
    def for_plan(cls, work_dir: Path, plan: RenderPlan, attempt: str = "") -> JoinPaths:
        return cls(work_dir / plan.render_id / f"join{attempt and '-' + attempt}")

    def chunk(self, index: int) -> Path:
        return self.root / f"chunk-{index:04d}.mp4"

    @property
    def concat_list(self) -> Path:
        return self.root / "chunks.ffconcat"

    def soundtrack(self, plan: RenderPlan) -> Path:
        assert plan.soundtrack is not None
        return self.root / f"soundtrack{plan.soundtrack.source.ext}"

    @property
    def output(self) -> Path:
        return self.root / "output.mp4"

    def source(self, spec: ChunkSpec) -> Path:
        """A remux plan's staged source for the copy chunk `spec` (one local file per object)."""
        (seg,) = spec.segments
        assert seg.source is not None
        ref = spec.sources[seg.source]
        return self.root / f"source-{hashlib.sha256(ref.key.encode()).hexdigest()[:16]}{ref.ext}"

    def adts(self, source: Path) -> Path:
        """A remux source's audio packets, as ADTS (audio_copy.py)."""
        return source.with_suffix(".aac")

    @property
    def spliced_audio(self) -> Path:
        return self.root / "audio.aac"

    @property
    def audio_track(self) -> Path:
        """The audio track StartRender encoded (RenderPlan.audio)."""
        return self.root / "audio.m4a"


MAX_SOUNDTRACK_LOOPS = 10_000


def soundtrack_loops(plan: RenderPlan) -> int:
    """How many extra times the soundtrack plays so that it spans the whole video (`-stream_loop`)."""
    assert plan.soundtrack is not None
    seconds = plan.soundtrack.duration_seconds
    if not seconds or seconds <= 0:
        return MAX_SOUNDTRACK_LOOPS  # a plan from before durations were recorded: bounded all the same
    return min(MAX_SOUNDTRACK_LOOPS, math.ceil(plan.duration_seconds / seconds))


def join_argv(plan: RenderPlan, paths: JoinPaths, *, ffmpeg: str) -> list[str]:
    """Concat the chunks with a video stream copy; the audio track StartRender encoded copied
    beside it (`plan.audio`), or else the chunks' PCM mixed and encoded once, as AAC."""
    argv = _base(ffmpeg, progress=True)
    # -safe 0: the list holds absolute paths, and we wrote every line of it.
    argv += ["-protocol_whitelist", "file,pipe", "-format_whitelist", "concat,mov"]
    argv += ["-f", "concat", "-safe", "0", "-i", str(paths.concat_list)]
    if plan.audio is not None:
        argv += safe_input(paths.audio_track, "mov", ("mov",))
        argv += ["-map", "0:v:0", "-c:v", "copy", "-frames:v", str(plan.total_frames), "-map", "1:a:0", "-c:a", "copy"]
    else:
        inputs, graph = _final_audio(plan, "[0:a:0]", 1, paths.soundtrack(plan) if plan.soundtrack else None)
        argv += [*inputs, "-filter_complex", ";".join(graph)]
        argv += ["-map", "0:v:0", "-c:v", "copy", "-frames:v", str(plan.total_frames)]
        argv += ["-map", "[aout]", *_aac(plan)]
    # +faststart: moov before mdat so browsers start playing before the download ends.
    argv += ["-movflags", "+faststart", "-map_metadata", "-1", "-f", "mp4", str(paths.output)]
    return argv


def audio_track_argv(
    plan: RenderPlan, sources: Mapping[str, Path], soundtrack: Path | None, out: Path, *, ffmpeg: str
) -> list[str]:
    """`plan.audio` (the whole timeline, for its sound) in one ffmpeg: each sounding clip's audio
    decoded from its trim (`sources`: the local files, by key), silence elsewhere, crossfades, the
    soundtrack mixed in, AAC in MP4."""
    spec = plan.audio
    assert spec is not None
    argv = _base(ffmpeg, progress=False)
    graph: list[str] = []
    inputs = 0
    for k, seg in enumerate(spec.segments):
        input_index = None
        if _sounds(spec, seg):
            assert seg.source is not None
            ref = spec.sources[seg.source]
            read = (seg.preroll_frames + seg.frames) / spec.fps + READ_MARGIN_SECONDS
            # -vn on the input: its pictures are never decoded.
            argv += ["-ss", f"{seg.start_seconds:.6f}", "-t", f"{read:.6f}", "-vn"]
            argv += safe_input(sources[ref.key], ref.demuxer, VIDEO_FORMATS)
            input_index, inputs = inputs, inputs + 1
        graph.append(_segment_audio(spec, k, seg, input_index=input_index))
    graph += [c.replace("[aout]", "[timeline]") for c in _join_segments(spec, video=False)]
    more, final = _final_audio(plan, "[timeline]", inputs, soundtrack)
    argv += [*more, "-filter_complex", ";".join(graph + final), "-map", "[aout]", *_aac(plan)]
    return [*argv, "-map_metadata", "-1", "-f", "mp4", str(out)]


def _aac(plan: RenderPlan) -> list[str]:
    return ["-c:a", "aac", "-b:a", plan.encoding.audio_bitrate, "-ar", str(SAMPLE_RATE), "-ac", "2"]


def _final_audio(plan: RenderPlan, clips: str, next_input: int, soundtrack: Path | None) -> tuple[list[str], list[str]]:
    """The inputs and chains that make [aout]: the timeline's sound (`clips`) exactly the plan's
    length, with the soundtrack (input `next_input`, when there is one) mixed in."""
    total = plan.total_samples
    graph = [f"{clips}{_AUDIO_NORM},apad,atrim=end_sample={total}[clips]"]
    if plan.soundtrack is None:
        return [], [graph[0].replace("[clips]", "[aout]")]
    assert soundtrack is not None, "a plan with a soundtrack needs its file"
    st = plan.soundtrack
    # Loop the soundtrack as often as the video needs (atrim cuts it to length), never
    # forever: an input with no samples would loop at full CPU until the timeout.
    inputs = ["-stream_loop", str(soundtrack_loops(plan)), *safe_input(soundtrack, st.source.demuxer, AUDIO_FORMATS)]
    chain = f"[{next_input}:a:0]{_AUDIO_NORM},volume={st.volume:g},atrim=end_sample={total},asetpts=N/SR/TB"
    fade = min(st.fade_out_seconds, plan.duration_seconds)
    if fade > 0:
        chain += f",afade=t=out:st={plan.duration_seconds - fade:.6f}:d={fade:.6f}"
    graph.append(chain + "[music]")
    # normalize=0: amix must not halve the clips' level just because music is present.
    graph.append("[clips][music]amix=inputs=2:duration=first:normalize=0[mixed]")
    graph.append(f"[mixed]apad,atrim=end_sample={total}[aout]")
    return inputs, graph


def remux_concat_list(plan: RenderPlan, paths: JoinPaths) -> str:
    """The staged sources as an ffconcat script; `duration` places each file at its exact
    frame count, so an audio track a little longer than its video never pushes the next
    clip's video later (the demuxer would otherwise use the longest stream)."""
    lines = ["ffconcat version 1.0"]
    for spec in plan.chunks:
        lines.append("file '" + str(paths.source(spec)).replace("'", "'\\''") + "'")
        # inpoint 0: each file starts where its picture does, not at its audio's priming.
        lines.append("inpoint 0")
        lines.append(f"duration {spec.frames / spec.fps:.6f}")
    return "\n".join(lines) + "\n"


def adts_argv(ffmpeg: str, sources: Sequence[tuple[Path, str]], paths: JoinPaths) -> list[str]:
    """Every remux source's first audio stream as ADTS, its packets copied, in one ffmpeg."""
    argv = _base(ffmpeg, progress=False)
    for path, demuxer in sources:
        argv += safe_input(path, demuxer, VIDEO_FORMATS)
    for n, (path, _) in enumerate(sources):
        argv += _adts_copy(str(n), paths.adts(path))
    return argv


def remux_argv(plan: RenderPlan, paths: JoinPaths, *, ffmpeg: str) -> list[str]:
    """A remux plan in one ffmpeg: the sources' H.264 packets concatenated by stream copy, and
    the audio either copied (`plan.audio_copy`: the spliced ADTS track, see audio_copy.py) or
    each clip's decoded samples cut or padded to exactly its length, AAC once.

    Concatenating the files' AAC as they are would carry each file's encoder priming and
    last-frame padding into the middle of the track and put every later clip's sound up to a
    frame (21 ms) later per boundary, accumulating; both ways here keep every boundary in place.
    """
    assert plan.remux
    # -copyts: the sources' own timestamps, where each picture starts at zero. Otherwise ffmpeg
    # starts the concat input at its earliest packet, the first clip's audio priming (21 ms before
    # zero for AAC), and every picture would play that much later than its sound.
    argv = [*_base(ffmpeg, progress=True), "-copyts"]
    # -safe 0: the list holds absolute paths, and we wrote every line of it.
    argv += ["-protocol_whitelist", "file,pipe", "-format_whitelist", "concat,mov"]
    argv += ["-f", "concat", "-safe", "0", "-i", str(paths.concat_list)]
    if plan.audio_copy is not None:
        argv += ["-protocol_whitelist", "file,pipe", "-format_whitelist", "aac", "-f", "aac"]
        argv += ["-i", str(paths.spliced_audio)]
        argv += ["-map", "0:v:0", "-c:v", "copy", "-frames:v", str(plan.total_frames), "-map", "1:a:0", "-c:a", "copy"]
        return [*argv, "-movflags", "+faststart", "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4",
                str(paths.output)]  # fmt: skip
    graph: list[str] = []
    inputs = 1
    for k, spec in enumerate(plan.chunks):
        (seg,) = spec.segments
        assert seg.source is not None
        source = spec.sources[seg.source]
        if source.has_audio and not seg.muted:
            # Only the audio of this input is decoded; its video is never mapped.
            argv += ["-vn", *safe_input(paths.source(spec), source.demuxer, VIDEO_FORMATS)]
            gain = f",volume={seg.volume:g}" if seg.volume != 1 else ""
            graph.append(
                f"[{inputs}:a:0]{_AUDIO_NORM}{gain},apad,atrim=end_sample={spec.samples},asetpts=N/SR/TB[a{k}]"
            )
            inputs += 1
        else:
            graph.append(f"{_silence(spec.samples)},{_AUDIO_NORM}[a{k}]")
    pieces = "".join(f"[a{k}]" for k in range(len(plan.chunks)))
    graph.append(f"{pieces}concat=n={len(plan.chunks)}:v=0:a=1[timeline]")
    more, final = _final_audio(plan, "[timeline]", inputs, paths.soundtrack(plan) if plan.soundtrack else None)
    argv += [*more, "-filter_complex", ";".join(graph + final)]
    argv += ["-map", "0:v:0", "-c:v", "copy", "-frames:v", str(plan.total_frames)]
    argv += ["-map", "[aout]", *_aac(plan)]
    argv += ["-movflags", "+faststart", "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", str(paths.output)]
    return argv


def planned_commands(plan: RenderPlan, settings: Settings) -> list[list[str]]:
    """Every ffmpeg argv the plan implies, in order: one per chunk, the audio track (run beside
    them), then the join (a remux plan: the remux, after the audio's extraction when it is copied)."""
    if plan.remux:
        paths = JoinPaths.for_plan(settings.work_dir, plan)
        remux = remux_argv(plan, paths, ffmpeg=settings.ffmpeg)
        if plan.audio_copy is None:
            return [remux]
        files = {paths.source(spec): spec.sources[0].demuxer for spec in plan.chunks}
        return [adts_argv(settings.ffmpeg, list(files.items()), paths), remux]
    argvs = [
        chunk_argv(
            spec,
            ChunkPaths.for_chunk(settings.work_dir, spec),
            ffmpeg=settings.ffmpeg,
            fonts=settings.font,
            pixels=PixelBounds.of(settings),
        )
        for spec in plan.chunks
    ]
    join = JoinPaths.for_plan(settings.work_dir, plan)
    if plan.audio is not None:
        soundtrack = join.soundtrack(plan) if plan.soundtrack else None
        staged = ChunkPaths.for_chunk(settings.work_dir, plan.audio)
        sources = {ref.key: staged.source(plan.audio, n) for n, ref in enumerate(plan.audio.sources)}
        argvs.append(audio_track_argv(plan, sources, soundtrack, join.audio_track, ffmpeg=settings.ffmpeg))
    argvs.append(join_argv(plan, join, ffmpeg=settings.ffmpeg))
    return argvs
