"""Probing media with the ffmpeg binary alone (the Lambda layer has no ffprobe).

Two reads per source:
- `ffmpeg -i` prints the container and its streams on stderr; `parse_probe` reads it.
- `ffmpeg -map 0:v:0 -c copy -f framecrc` lists every video packet (pts, duration,
  key flag) without decoding anything; `parse_packets` reads it. That gives the exact
  frame count, the exact video end (the container's Duration line is the longest
  stream, often the audio) and the keyframe times smart copy needs.

Untrusted files are opened with `-protocol_whitelist file,pipe` and a demuxer
allow list (`-format_whitelist`), so a "video" that is really an HLS playlist or a
concat script is refused at probe time instead of reading other local files.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from render_service import errors
from render_service.engines.ffmpeg import commands
from render_service.engines.ffmpeg.models import MediaInfo
from render_service.engines.ffmpeg.runner import last_error_line, run_capture
from render_service.settings import Settings

PROBE_TIMEOUT_SECONDS = 60.0
SCAN_TIMEOUT_SECONDS = 120.0


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


@dataclass(frozen=True)
class Probe:
    demuxer: str
    duration_seconds: float | None
    start_seconds: float
    video: VideoStream | None
    audio: AudioStream | None


@dataclass(frozen=True)
class Packet:
    pts: int
    dts: int
    duration: int
    key: bool


@dataclass(frozen=True)
class VideoPackets:
    """The first video stream's packets in decode order, in its own time base."""

    time_base: Fraction
    packets: list[Packet] = field(repr=False)

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


_INPUT = re.compile(r"^Input #0, (?P<demuxer>.+?), from ", re.M)
_DURATION = re.compile(r"Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)|N/A)(?:, start: (?P<start>-?[\d.]+))?")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (?P<kind>Video|Audio): (?P<rest>.*)$")
_SIZE = re.compile(r"\b(\d{1,5})x(\d{1,5})\b")
_SAR = re.compile(r"SAR (\d+):(\d+)")
_RATE = re.compile(r"([\d.]+)(k?) (fps|tbr)\b")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_HZ = re.compile(r"(\d+) Hz")


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
            audio = AudioStream(codec=codec, sample_rate=hz, channels=channels)
    return Probe(demuxer=found["demuxer"], duration_seconds=duration, start_seconds=start, video=video, audio=audio)


def _rotation_below(lines: list[str]) -> float:
    """The displaymatrix rotation printed under a stream line, before the next stream."""
    for line in lines:
        if _STREAM.match(line) or line.startswith(("Input #", "Output #", "Stream mapping")):
            break
        if m := _ROTATION.search(line):
            return float(m.group(1))
    return 0.0


def parse_packets(stdout: str) -> VideoPackets:
    """Read `-f framecrc` output: `stream, dts, pts, duration, size, crc[, F=0x..]`.

    framecrc prints `F=` only when the flags differ from "keyframe", so a line
    without it is a keyframe.
    """
    time_base = Fraction(1, 1)
    packets: list[Packet] = []
    for line in stdout.splitlines():
        if line.startswith("#tb 0:"):
            time_base = Fraction(line.split(":", 1)[1].strip())
            continue
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6 or fields[0] != "0":
            continue
        try:
            dts, pts, duration = int(fields[1]), int(fields[2]), int(fields[3])
        except ValueError:
            continue  # NOPTS: such a packet cannot anchor a copy cut
        flags = next((int(f[2:], 16) for f in fields[6:] if f.startswith("F=")), 1)
        packets.append(Packet(pts=pts, dts=dts, duration=duration, key=bool(flags & 1)))
    return VideoPackets(time_base=time_base, packets=packets)


def inspect(path: Path, *, settings: Settings, formats: tuple[str, ...] = commands.ALL_FORMATS) -> Probe:
    """Probe a local file, allowing only the given demuxers. Raises ProbeError."""
    try:
        _, _, stderr = run_capture(commands.probe_argv(settings.ffmpeg, path, formats), timeout=PROBE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise ProbeError("probing took too long") from exc
    return parse_probe(stderr)


def scan_packets(path: Path, *, settings: Settings, demuxer: str) -> VideoPackets:
    """List the first video stream's packets (no decoding). Raises ProbeError."""
    try:
        code, stdout, stderr = run_capture(
            commands.packet_scan_argv(settings.ffmpeg, path, demuxer), timeout=SCAN_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError("reading the video packets took too long") from exc
    if code != 0:
        raise ProbeError(last_error_line(stderr.splitlines()))
    packets = parse_packets(stdout)
    if not packets.packets:
        raise ProbeError("no video frames")
    return packets


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
