"""The splice that copies AAC packets across clip boundaries: where each clip's sound lands."""

from __future__ import annotations

import random

import pytest

from render_service.engines.ffmpeg.audio_copy import (
    AAC_FRAME,
    TOLERANCE_SAMPLES,
    AdtsError,
    ClipAudio,
    adts_frames,
    splice,
    spliced,
)
from render_service.engines.ffmpeg.plan import sample_at


def _clip(samples: int, priming: int = 1024) -> ClipAudio:
    """A clip's AAC as an MP4 holds it: priming before zero, whole packets past the real end."""
    count = -(-(samples + priming) // AAC_FRAME)
    return ClipAudio(first_pts=-priming, count=count, end_pts=samples)


def _placements(clips: list[ClipAudio], starts: list[int], total: int) -> list[int]:
    """For each clip, how late its sound plays against its picture (samples), from the splice."""
    pieces = splice(clips, starts, total)
    assert pieces is not None
    out, offsets = 0, []
    for clip, start, piece in zip(clips, starts, pieces, strict=True):
        position = clip.first_pts + piece.first * AAC_FRAME  # the clip time that sounds at `out`
        offsets.append(out - (start + position))
        assert offsets[-1] == piece.offset_samples
        out += piece.count * AAC_FRAME
    assert abs(out - total) <= TOLERANCE_SAMPLES
    return offsets


@pytest.mark.parametrize("priming", [1024, 2112])  # ffmpeg's encoder, Apple's
def test_every_boundary_stays_within_half_a_packet_and_errors_do_not_add_up(priming: int) -> None:
    rng = random.Random(7)
    fps = 30
    frames = [rng.randint(20, 400) for _ in range(60)]  # 60 clips, lengths never multiples of 1024
    starts_f = [sum(frames[:k]) for k in range(len(frames))]
    starts = [sample_at(f, fps) for f in starts_f]
    total = sample_at(sum(frames), fps)
    clips = [_clip(sample_at(n, fps), priming) for n in frames]

    offsets = _placements(clips, starts, total)

    assert max(abs(o) for o in offsets) <= TOLERANCE_SAMPLES
    # Naive concatenation (every packet of every clip) drifts by up to a packet per boundary.
    naive = sum(clip.count * AAC_FRAME for clip in clips)
    assert abs(naive - total) > 20 * TOLERANCE_SAMPLES


def test_a_clip_whose_audio_stops_early_is_not_copied() -> None:
    short = ClipAudio(first_pts=-1024, count=20, end_pts=19 * 1024)  # 0.4 s of sound
    assert splice([short], [0], sample_at(30, 30)) is None  # under a 1 s picture


def test_adts_frames_are_split_on_their_own_lengths_and_garbage_is_refused() -> None:
    def frame(payload: bytes) -> bytes:
        length = 7 + len(payload)
        header = bytes(
            [0xFF, 0xF1, 0x4C, 0x80 | (length >> 11), (length >> 3) & 0xFF, ((length & 7) << 5) | 0x1F, 0xFC]
        )
        return header + payload

    frames = [frame(bytes([n]) * (10 + n)) for n in range(5)]
    data = b"".join(frames)

    assert adts_frames(data) == frames
    with pytest.raises(AdtsError):
        adts_frames(data[:-3])  # the last frame cut short
    with pytest.raises(AdtsError):
        adts_frames(b"ID3" + data)  # not a frame header
    pieces = splice([ClipAudio(-1024, 5, 3 * 1024)], [0], 3 * 1024)
    assert pieces is not None
    assert spliced([frames], pieces) == b"".join(frames[1:4])
