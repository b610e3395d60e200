"""Running a process: progress from `-progress pipe:1`, a timeout, short error messages.

A small Python script stands in for ffmpeg so these tests are fast and exact.
"""

from __future__ import annotations

import itertools
import sys
import time

import pytest

from render_service import errors
from render_service.engines.ffmpeg.runner import last_error_line, run_ffmpeg

FAKE = r"""
import sys, time
frames = int(sys.argv[1])
for f in range(1, frames + 1):
    print(f"frame={f}\nfps=0.0\nout_time_us={f * 33333}\nprogress=continue", flush=True)
    time.sleep(float(sys.argv[2]))
print(f"frame={frames}\nprogress=end", flush=True)
sys.stderr.write(sys.argv[3])
sys.exit(int(sys.argv[4]))
"""


def fake_ffmpeg(frames: int, delay: float, stderr: str = "", code: int = 0) -> list[str]:
    return [sys.executable, "-c", FAKE, str(frames), str(delay), stderr, str(code)]


def test_progress_is_reported_in_frames_at_most_twice_a_second() -> None:
    calls: list[tuple[float, int]] = []
    run_ffmpeg(fake_ffmpeg(40, 0.03), timeout=30, on_progress=lambda f: calls.append((time.monotonic(), f)))

    frames = [f for _, f in calls]
    assert frames[-1] == 40
    assert frames == sorted(set(frames))
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(calls[:-1])]  # the final call may come sooner
    assert all(gap >= 0.45 for gap in gaps)
    assert 2 <= len(calls) <= 5


def test_failures_carry_the_cause_not_the_consequences() -> None:
    stderr = (
        "[Parsed_xfade_3 @ 0x55d0ab] First input link main timebase (1/1000000) do not match\n"
        "[vost#0:0/libx264 @ 0x55d0] [enc:libx264 @ 0x55d1] Could not open encoder before EOF\n"
        "Conversion failed!\n"
    )
    with pytest.raises(errors.EncodeFailed) as failure:
        run_ffmpeg(fake_ffmpeg(1, 0, stderr, 1), timeout=30, what="chunk 3")

    assert str(failure.value) == "chunk 3 failed: First input link main timebase (1/1000000) do not match"


def test_a_run_past_its_timeout_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(errors.EncodeTimedOut, match="within 1 s"):
        run_ffmpeg(fake_ffmpeg(1000, 0.05), timeout=1, on_progress=lambda _: None)
    assert time.monotonic() - started < 5


def test_error_line_falls_back_to_the_last_line() -> None:
    assert last_error_line(["Conversion failed!"]) == "Conversion failed!"
    assert last_error_line([]) == "ffmpeg failed without a message"
