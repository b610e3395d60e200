"""The clips' AAC copied into the output, not decoded and encoded again, when they share one format.

A remux (plan.py) copies every clip's video; encoding 10 minutes of audio would then be most of
its time (ffmpeg's AAC encoder runs about 70 times realtime on one core). When every clip's
audio is AAC-LC at 48 kHz with the same decoder configuration, its packets are copied instead.

AAC cannot be cut between packets (1024 samples each), so the track is spliced from whole
packets: each clip's audio starts with the packet whose position is nearest to where the
clip's picture starts, and ends with the packet that brings the track nearest to where the
next clip's picture starts. Every clip's sound is then within half a packet of its picture:
**at most 512 samples, 10.7 ms at 48 kHz, at every boundary, and the error never adds up**
(each boundary is placed against the video's own frame positions, not the previous clip's
audio). People notice sound that leads its picture by about 45 ms or lags by 125 ms
(ITU-R BT.1359), so this is well inside what anyone can see.

A clip's first packet is its encoder priming (MP4 edit lists hide it on playback); a splice
may keep it, as near-silence, when that places the clip better. The decoder blends the
packets on either side of each splice over one packet (21 ms), which sounds like a very short
crossfade. Everything else (other formats, mixed rates, a clip whose audio is missing or
shorter than its picture, a volume change, a soundtrack) is decoded, cut sample-exactly and
encoded once, as before.

The packets travel as ADTS, AAC's framing for raw streams: every frame carries its own length,
so splicing is cutting a byte string at frame boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from render_service.engines.ffmpeg.models import SAMPLE_RATE, AudioPiece

AAC_FRAME = 1024
TOLERANCE_SAMPLES = AAC_FRAME // 2
"""The most a copied clip's sound may sit away from its picture (10.7 ms at 48 kHz)."""


@dataclass(frozen=True)
class ClipAudio:
    """One clip's AAC packets as the listing at planning time saw them, in samples."""

    first_pts: int  # the first packet's position (negative: encoder priming)
    count: int  # packets
    end_pts: int  # where the real samples end


def _nearest(value: int, step: int) -> int:
    """value / step rounded to the nearest integer, halves up (deterministic for negatives too)."""
    return (2 * value + step) // (2 * step)


def splice(clips: Sequence[ClipAudio], starts: Sequence[int], total: int) -> list[AudioPiece] | None:
    """The packets to take from each clip, or None when some clip cannot be placed within tolerance.

    `starts[k]` is the output sample where clip k's picture starts; `total` is where the last ends.
    """
    pieces: list[AudioPiece] = []
    out = 0  # samples written so far
    for k, clip in enumerate(clips):
        end = starts[k + 1] if k + 1 < len(clips) else total
        # The clip position that should sound at `out`, and the packet that starts nearest to it.
        want = out - starts[k]
        first = max(0, _nearest(want - clip.first_pts, AAC_FRAME))
        if first >= clip.count:
            return None
        offset = out - (starts[k] + clip.first_pts + first * AAC_FRAME)  # > 0: the sound is late
        if abs(offset) > TOLERANCE_SAMPLES:
            return None
        count = max(1, _nearest(end - out, AAC_FRAME))
        available = clip.count - first
        if count > available:
            # The clip's audio runs out before its picture: fine within tolerance, else decode it.
            if end - (out + available * AAC_FRAME) > TOLERANCE_SAMPLES:
                return None
            count = available
        last_start = clip.first_pts + (first + count - 1) * AAC_FRAME
        if last_start >= clip.end_pts:
            return None  # only padding past the real samples
        pieces.append(AudioPiece(first=first, count=count, offset_samples=offset))
        out += count * AAC_FRAME
    if abs(out - total) > TOLERANCE_SAMPLES:
        return None
    return pieces


def tolerance_seconds() -> float:
    return TOLERANCE_SAMPLES / SAMPLE_RATE


# --- ADTS ---------------------------------------------------------------------------------


class AdtsError(ValueError):
    """Not a stream of single-block ADTS frames."""


def adts_frames(data: bytes) -> list[bytes]:
    """Split an ADTS stream into its frames (each one AAC packet of 1024 samples)."""
    frames: list[bytes] = []
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < 7 or data[pos] != 0xFF or data[pos + 1] & 0xF6 != 0xF0:
            raise AdtsError(f"no ADTS frame header at byte {pos}")
        length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        header = 7 if data[pos + 1] & 0x01 else 9  # protection_absent, else a CRC follows
        if length < header or pos + length > size:
            raise AdtsError(f"ADTS frame at byte {pos} claims {length} bytes")
        if data[pos + 6] & 0x03:
            raise AdtsError(f"ADTS frame at byte {pos} holds more than one AAC packet")
        frames.append(data[pos : pos + length])
        pos += length
    return frames


def spliced(tracks: Sequence[list[bytes]], pieces: Sequence[AudioPiece]) -> bytes:
    """The output's ADTS stream: each clip's chosen frames, one clip after another."""
    out = bytearray()
    for frames, piece in zip(tracks, pieces, strict=True):
        chosen = frames[piece.first : piece.first + piece.count]
        if len(chosen) != piece.count:
            raise AdtsError(f"the audio has {len(frames)} packets; the plan needs {piece.first + piece.count}")
        for frame in chosen:
            out += frame
    return bytes(out)
