"""Probing media with the ffmpeg binary alone (the Lambda layer has no ffprobe).

Two reads per source:
- `ffmpeg -i` prints the container and its streams on stderr; `parse_probe` reads it.
  It runs with `-max_pixels`, so a huge picture is refused by the decoder ("Picture size
  14000x14000 exceeds specified max pixel count") instead of being decoded to find its
  pixel format: the probe of a hostile PNG stays at tens of MB instead of GB.
- `ffmpeg -ss -t -copyts -map 0:v:0 -c copy -f framecrc` lists the video packets (pts,
  duration, key flag) of one window of the source without decoding anything; a
  `PacketReader` reads them as they come and stops the run past a packet bound. Planning
  scans only the windows its cuts need (the container's index makes the seek free), so a
  source with millions of tiny packets costs what the cut costs. The listing gives the
  exact frame count, the exact video end when the window reaches it (the container's
  Duration line is the longest stream, often the audio), the keyframe times smart copy
  needs, and whether the window has any audio at all. `-copyts` keeps the file's own
  timestamps, so packets from any window compare with the probe's start time.

Untrusted files are opened with `-protocol_whitelist file,pipe` and a demuxer
allow list (`-format_whitelist`), so a "video" that is really an HLS playlist or a
concat script is refused at probe time instead of reading other local files.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from render_service import errors
from render_service.engines.ffmpeg import commands, h264, limits
from render_service.engines.ffmpeg.models import MediaInfo
from render_service.engines.ffmpeg.runner import last_error_line, run_capture
from render_service.settings import Settings

PROBE_TIMEOUT_SECONDS = 60.0
SCAN_TIMEOUT_SECONDS = 120.0
MAX_TIMED_AUDIO_PACKETS = 100_000


@dataclass(frozen=True)
class VideoStream:
    codec: str
    profile: str | None
    pix_fmt: str | None
    width: int
    height: int
    sar: Fraction | None
    fps: float
    rotation: float = 0.0


@dataclass(frozen=True)
class AudioStream:
    codec: str
    sample_rate: int
    channels: str
    profile: str | None = None


@dataclass(frozen=True)
class Probe:
    demuxer: str
    duration_seconds: float | None
    start_seconds: float
    video: VideoStream | None
    audio: AudioStream | None


@dataclass(frozen=True, slots=True)
class Packet:
    pts: int
    dts: int
    duration: int
    key: bool


@dataclass(frozen=True)
class AudioPackets:
    """The first audio stream's packets in a listing from the file's start: what copying them needs.

    Timestamps are in `time_base` (1/sample rate for AAC in MP4). An AAC track in MP4 starts
    with its encoder priming before zero (`first_pts` is -1024 for ffmpeg's encoder, -2112 for
    Apple's), and its last packet is shortened to the samples that are real (`end_pts`).
    """

    time_base: Fraction
    first_pts: int
    end_pts: int
    count: int
    frame_ticks: int | None
    """The duration every packet but the last shares, None when they differ."""
    contiguous: bool
    """Each packet starts where the one before it ended."""


@dataclass(frozen=True)
class VideoPackets:
    """The first video stream's packets in decode order, in its own time base."""

    time_base: Fraction
    packets: list[Packet] = field(repr=False)
    audio_packets: int = 0
    """Non-empty packets of the first audio stream in the same window (when asked for)."""
    complete: bool = True
    """The listing reaches the end of the video (a window that ends before it does not)."""
    video_config: str | None = None
    """The H.264 decoder configuration (`h264.decoder_key`, set by planning): two streams with the
    same value share their parameter sets, so one decoder setup fits both."""
    audio_extradata: str | None = None
    """The audio's decoder configuration as framecrc sums it (`size, adler32`)."""
    audio: AudioPackets | None = None
    """The audio stream's timing, for a listing that started at the file's start (when asked for)."""

    @property
    def frame_count(self) -> int:
        return len(self.packets)

    def seconds(self, ticks: int) -> float:
        return float(ticks * self.time_base)

    @property
    def end_pts(self) -> int:
        return max((p.pts + p.duration for p in self.packets), default=0)


class ProbeError(Exception):
    """The file is not media ffmpeg can read with our allow lists; the message says why."""


class PixelsExceeded(ProbeError):
    """The decoder refused a picture larger than the probe's `-max_pixels`."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(f"a picture of {width}x{height}")
        self.width = width
        self.height = height


class TooManyPackets(ProbeError):
    """A packet listing went past its bound; the run was stopped there."""


_INPUT = re.compile(r"^Input #0, (?P<demuxer>.+?), from ", re.M)
_DURATION = re.compile(r"Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)|N/A)(?:, start: (?P<start>-?[\d.]+))?")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (?P<kind>Video|Audio): (?P<rest>.*)$")
_SIZE = re.compile(r"\b(\d{1,5})x(\d{1,5})\b")
_SAR = re.compile(r"SAR (\d+):(\d+)")
_RATE = re.compile(r"([\d.]+)(k?) (fps|tbr)\b")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_HZ = re.compile(r"(\d+) Hz")
_MAX_PIXELS = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count")


def _split_top(text: str) -> list[str]:
    """Split ffmpeg's stream description on ', ' outside parentheses and brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _rate(parts: list[str]) -> float:
    rates = {unit: float(num) * (1000 if k else 1) for part in parts for num, k, unit in _RATE.findall(part)}
    return rates.get("fps") or rates.get("tbr") or 0.0


def parse_probe(stderr: str) -> Probe:
    """Read `ffmpeg -i` output. Raises ProbeError when no input was recognised."""
    found = _INPUT.search(stderr)
    if not found:
        raise ProbeError(last_error_line(stderr.splitlines()))
    duration, start = None, 0.0
    if d := _DURATION.search(stderr):
        if d["h"] is not None:
            duration = int(d["h"]) * 3600 + int(d["m"]) * 60 + float(d["s"])
        start = float(d["start"] or 0.0)
    video: VideoStream | None = None
    audio: AudioStream | None = None
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        match = _STREAM.match(line)
        if not match:
            continue
        parts = _split_top(match["rest"])
        head = parts[0].split()
        codec = head[0]
        if match["kind"] == "Video" and video is None and "(attached pic)" not in match["rest"]:
            size = next((m for p in parts if (m := _SIZE.search(p))), None)
            if size is None:
                continue
            sar = next((Fraction(int(a), int(b)) for p in parts for a, b in _SAR.findall(p) if int(b)), None)
            pix_fmt = parts[1].split("(")[0].strip() if len(parts) > 1 and not _SIZE.search(parts[1]) else None
            profile = head[1].strip("()") if len(head) > 1 and head[1].startswith("(") else None
            video = VideoStream(
                codec=codec,
                profile=profile,
                pix_fmt=pix_fmt,
                width=int(size.group(1)),
                height=int(size.group(2)),
                sar=sar,
                fps=_rate(parts),
                rotation=_rotation_below(lines[index + 1 :]),
            )
        elif match["kind"] == "Audio" and audio is None:
            hz = next((int(m.group(1)) for p in parts if (m := _HZ.search(p))), 0)
            channels = parts[2] if len(parts) > 2 else ""
            profile = head[1].strip("()") if len(head) > 1 and head[1].startswith("(") else None
            audio = AudioStream(codec=codec, sample_rate=hz, channels=channels, profile=profile)
    return Probe(demuxer=found["demuxer"], duration_seconds=duration, start_seconds=start, video=video, audio=audio)


def _rotation_below(lines: list[str]) -> float:
    """The displaymatrix rotation printed under a stream line, before the next stream."""
    for line in lines:
        if _STREAM.match(line) or line.startswith(("Input #", "Output #", "Stream mapping")):
            break
        if m := _ROTATION.search(line):
            return float(m.group(1))
    return 0.0


class PacketReader:
    """Reads `-f framecrc` lines as they come: `stream, dts, pts, duration, size, crc[, F=0x..]`.

    framecrc prints `F=` only when the flags differ from "keyframe", so a line without it
    is a keyframe. Stream 0 is the video; stream 1, when mapped, the audio, whose packets are
    counted and timed (`AudioPackets`). Past `max_packets` video packets it raises
    `TooManyPackets`, which stops the run.
    """

    def __init__(self, max_packets: int | None = None) -> None:
        self.max_packets = max_packets
        self.time_base = Fraction(1, 1)
        self.packets: list[Packet] = []
        self.audio_packets = 0
        self.extradata: dict[str, str] = {}
        self.audio_time_base = Fraction(1, 1)
        self._audio: list[tuple[int, int]] = []  # (pts, duration) of non-empty audio packets
        self._audio_timed = True

    def feed(self, line: str) -> None:
        if line.startswith("#tb 0:"):
            self.time_base = Fraction(line.split(":", 1)[1].strip())
            return
        if line.startswith("#tb 1:"):
            self.audio_time_base = Fraction(line.split(":", 1)[1].strip())
            return
        if line.startswith("#extradata "):
            stream, _, value = line[len("#extradata ") :].partition(":")
            self.extradata[stream.strip()] = " ".join(value.split())
            return
        if not line or line.startswith("#"):
            return
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6:
            return
        if fields[0] == "1":
            if fields[4].isdigit() and int(fields[4]) > 0:
                self.audio_packets += 1
                if not self._audio_timed:
                    return
                if len(self._audio) >= MAX_TIMED_AUDIO_PACKETS:
                    self._audio_timed = False  # far more than 10 minutes of AAC: not worth copying
                    self._audio = []
                    return
                try:
                    self._audio.append((int(fields[2]), int(fields[3])))
                except ValueError:
                    self._audio_timed = False
            return
        if fields[0] != "0":
            return
        try:
            dts, pts, duration = int(fields[1]), int(fields[2]), int(fields[3])
        except ValueError:
            return  # NOPTS: such a packet cannot anchor a copy cut
        flags = next((int(f[2:], 16) for f in fields[6:] if f.startswith("F=")), 1)
        self.packets.append(Packet(pts=pts, dts=dts, duration=duration, key=bool(flags & 1)))
        if self.max_packets is not None and len(self.packets) > self.max_packets:
            raise TooManyPackets(f"more than {self.max_packets} video packets")

    def feed_audio(self, line: str) -> None:
        """A listing of the audio stream alone (it is stream 0 there): count its non-empty packets."""
        fields = [f.strip() for f in line.split(",")] if line and not line.startswith("#") else []
        if len(fields) >= 6 and fields[0] == "0" and fields[4].isdigit() and int(fields[4]) > 0:
            self.audio_packets += 1

    def audio_track(self) -> AudioPackets | None:
        if not self._audio or not self._audio_timed:
            return None
        durations = {d for _, d in self._audio[:-1]}
        pts, duration = self._audio[-1]
        return AudioPackets(
            time_base=self.audio_time_base,
            first_pts=self._audio[0][0],
            end_pts=pts + duration,
            count=len(self._audio),
            frame_ticks=durations.pop() if len(durations) == 1 else (duration if not durations else None),
            contiguous=all(a + d == b for (a, d), (b, _) in itertools.pairwise(self._audio)),
        )

    def result(self) -> VideoPackets:
        return VideoPackets(
            time_base=self.time_base,
            packets=self.packets,
            audio_packets=self.audio_packets,
            audio_extradata=self.extradata.get("1"),
            audio=self.audio_track(),
        )


def parse_packets(stdout: str) -> VideoPackets:
    """Read a whole `-f framecrc` listing (see `PacketReader`)."""
    reader = PacketReader()
    for line in stdout.splitlines():
        reader.feed(line)
    return reader.result()


def inspect(
    path: Path, *, settings: Settings, formats: tuple[str, ...] = commands.ALL_FORMATS, max_pixels: int | None = None
) -> Probe:
    """Probe a local file, allowing only the given demuxers. Raises ProbeError.

    `max_pixels` (default: the video bound) is the largest picture the probe may decode;
    a larger one raises `PixelsExceeded`.
    """
    bound = max_pixels or settings.max_video_pixels
    try:
        captured = run_capture(
            commands.probe_argv(settings.ffmpeg, path, formats, max_pixels=bound),
            timeout=PROBE_TIMEOUT_SECONDS,
            budget=limits.budget(settings, timeout=PROBE_TIMEOUT_SECONDS),
            what="probing",
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError("probing took too long") from exc
    if found := _MAX_PIXELS.search(captured.stderr):
        raise PixelsExceeded(int(found.group(1)), int(found.group(2)))
    return parse_probe(captured.stderr)


def scan_packets(
    path: Path,
    *,
    settings: Settings,
    demuxer: str,
    start: float | None = None,
    duration: float | None = None,
    audio: bool = False,
    max_packets: int | None = None,
    h264_config: bool = False,
    adts: bool = False,
) -> VideoPackets:
    """List the first video stream's packets (no decoding) of a window. Raises ProbeError.

    The window starts at the keyframe at or before `start` (seconds from the file's
    start) and lasts `duration`; without them, the whole file. `audio` also counts the
    first audio stream's packets. More than `max_packets` video packets raise
    `TooManyPackets` (the run is stopped there, not read to the end). `h264_config` reads the
    stream's decoder configuration in the same run (`VideoPackets.video_config`); `adts` copies
    the first audio stream (which must be AAC) to `adts_beside(path)`.
    """
    reader = PacketReader(max_packets)
    heads = path.with_name(path.name + ".sps.h264") if h264_config else None
    adts_out = adts_beside(path) if adts else None
    try:
        captured = run_capture(
            commands.packet_scan_argv(
                settings.ffmpeg,
                path,
                demuxer,
                start=start,
                duration=duration,
                audio=audio,
                parameter_sets=heads,
                adts=adts_out,
            ),
            timeout=SCAN_TIMEOUT_SECONDS,
            budget=limits.budget(settings, timeout=SCAN_TIMEOUT_SECONDS),
            on_line=reader.feed,
            what="reading the video packets",
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError("reading the video packets took too long") from exc
    finally:
        config = _config_from(heads) if heads is not None else None
    if captured.returncode != 0 and adts_out is not None:
        # The audio copy is an extra, never a reason to refuse a source: list it again without.
        adts_out.unlink(missing_ok=True)
        return scan_packets(
            path, settings=settings, demuxer=demuxer, start=start, duration=duration, audio=audio,
            max_packets=max_packets, h264_config=h264_config,
        )  # fmt: skip
    if captured.returncode != 0:
        raise ProbeError(last_error_line(captured.stderr.splitlines()))
    packets = reader.result()
    if not packets.packets:
        raise ProbeError("no video frames")
    return replace(packets, video_config=config) if config is not None else packets


def inspect_and_scan(
    path: Path,
    *,
    settings: Settings,
    formats: tuple[str, ...],
    max_pixels: int,
    start: float | None,
    duration: float | None,
    max_packets: int | None,
    adts: bool,
) -> tuple[Probe, VideoPackets] | None:
    """`inspect` and the first window of `scan_packets(audio=True, h264_config=True)` in one
    ffmpeg run, for a clip: a process less per source. The file is opened as `inspect` opens it
    (the allowed demuxers, `-max_pixels`) and described from the same run's log.

    None whenever that run does not simply succeed (a picture over the bound, no video or no
    ADTS-able audio, a read error, too many packets): the caller then takes the two steps one
    by one, whose errors say what is wrong, exactly as they would have.
    """
    reader = PacketReader(max_packets)
    heads = path.with_name(path.name + ".sps.h264")
    adts_out = adts_beside(path) if adts else None
    argv = commands.packet_scan_argv(
        settings.ffmpeg, path, "", start=start, duration=duration, audio=True, parameter_sets=heads,
        adts=adts_out, probing=(formats, max_pixels),
    )  # fmt: skip
    try:
        captured = run_capture(
            argv,
            timeout=SCAN_TIMEOUT_SECONDS,
            budget=limits.budget(settings, timeout=SCAN_TIMEOUT_SECONDS),
            on_line=reader.feed,
            what="reading the video packets",
        )
        config = _config_from(heads)
        if captured.returncode != 0 or _MAX_PIXELS.search(captured.stderr):
            raise ProbeError("not as simple as one run")
        info = parse_probe(captured.stderr)
        packets = reader.result()
        if not packets.packets:
            raise ProbeError("no video frames")
    except (ProbeError, subprocess.TimeoutExpired, errors.ResourceLimitExceeded):
        heads.unlink(missing_ok=True)
        if adts_out is not None:
            adts_out.unlink(missing_ok=True)
        return None
    return info, (replace(packets, video_config=config) if config is not None else packets)


def adts_beside(path: Path) -> Path:
    """Where `scan_packets(adts=True)` copies a source's AAC packets as ADTS."""
    return path.with_name(path.name + ".adts")


def _config_from(heads: Path) -> str | None:
    try:
        # SPS and PPS come first; the keyframe's slices after them are not needed.
        with heads.open("rb") as fh:
            return h264.decoder_key(h264.nal_units(fh.read(1 << 20)))
    except OSError:
        return None
    finally:
        heads.unlink(missing_ok=True)


def video_config(path: Path, *, settings: Settings, demuxer: str) -> str | None:
    """The H.264 stream's decoder configuration (`h264.decoder_key`), None if it cannot be read."""
    out = path.with_name(path.name + ".sps.h264")
    try:
        captured = run_capture(
            commands.parameter_sets_argv(settings.ffmpeg, path, demuxer, out),
            timeout=PROBE_TIMEOUT_SECONDS,
            budget=limits.budget(settings, timeout=PROBE_TIMEOUT_SECONDS),
            what="reading the parameter sets",
        )
    except (subprocess.TimeoutExpired, errors.ServiceError):
        out.unlink(missing_ok=True)
        return None
    config = _config_from(out)  # removes the file
    return config if captured.returncode == 0 else None


def count_audio_packets(path: Path, *, settings: Settings, demuxer: str, seconds: float) -> int:
    """Non-empty packets of the first audio stream within `seconds` of the start. Raises ProbeError."""
    reader = PacketReader()
    try:
        captured = run_capture(
            commands.audio_scan_argv(settings.ffmpeg, path, demuxer, seconds=seconds),
            timeout=SCAN_TIMEOUT_SECONDS,
            budget=limits.budget(settings, timeout=SCAN_TIMEOUT_SECONDS),
            on_line=reader.feed_audio,
            what="reading the audio packets",
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError("reading the audio packets took too long") from exc
    if captured.returncode != 0:
        raise ProbeError(last_error_line(captured.stderr.splitlines()))
    return reader.audio_packets


def probe(path: Path, *, settings: Settings) -> MediaInfo:
    """Describe a local media file (used on the final output). Raises errors.SourceInvalid."""
    try:
        info = inspect(path, settings=settings)
    except ProbeError as exc:
        raise errors.SourceInvalid(f"{path.name}: {exc}") from None
    if info.video is None:
        raise errors.SourceInvalid(f"{path.name}: no video stream")
    return MediaInfo(
        duration_seconds=info.duration_seconds or 0.0,
        size_bytes=path.stat().st_size,
        width=info.video.width,
        height=info.video.height,
        fps=info.video.fps,
        video_codec=info.video.codec,
        audio_codec=info.audio.codec if info.audio else None,
    )
