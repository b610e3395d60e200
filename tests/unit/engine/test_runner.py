"""Running a process: progress from `-progress pipe:1`, a timeout, short error messages.

A small Python script stands in for ffmpeg so these tests are fast and exact.
"""

from __future__ import annotations

import itertools
import sys
import time

import pytest

from render_service import errors
from render_service.engines.ffmpeg.limits import Budget
from render_service.engines.ffmpeg.runner import last_error_line, run_ffmpeg

BUDGET = Budget(memory_bytes=2 << 30, cpu_seconds=120)

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
    run_ffmpeg(
        fake_ffmpeg(40, 0.03), timeout=30, budget=BUDGET, on_progress=lambda f: calls.append((time.monotonic(), f))
    )

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
        run_ffmpeg(fake_ffmpeg(1, 0, stderr, 1), timeout=30, budget=BUDGET, what="chunk 3")

    assert str(failure.value) == "chunk 3 failed: First input link main timebase (1/1000000) do not match"


def test_a_run_past_its_timeout_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(errors.EncodeTimedOut, match="within 1 s"):
        run_ffmpeg(fake_ffmpeg(1000, 0.05), timeout=1, budget=BUDGET, on_progress=lambda _: None)
    assert time.monotonic() - started < 5


def test_error_line_falls_back_to_the_last_line() -> None:
    assert last_error_line(["Conversion failed!"]) == "Conversion failed!"
    assert last_error_line([]) == "ffmpeg failed without a message"


SILENT = "import time\nwhile True: time.sleep(1)\n"
SPIN = "while True: pass\n"


def test_a_silent_run_is_stopped_once_the_render_has_ended() -> None:
    """No progress line is needed: the watchdog asks on its own, and the child is killed and reaped."""
    asks: list[int] = []

    def ended() -> bool:
        asks.append(1)
        return len(asks) >= 2

    # Without the stop this would run until its timeout, two minutes later (EncodeTimedOut).
    with pytest.raises(errors.RenderCancelled, match="join was stopped: the render has ended"):
        run_ffmpeg([sys.executable, "-c", SILENT], timeout=120, budget=BUDGET, cancelled=ended, what="join")
    assert len(asks) == 2


def test_a_failing_status_read_does_not_stop_the_run() -> None:
    def flaky() -> bool:
        raise RuntimeError("DynamoDB throttled")

    stats = run_ffmpeg(fake_ffmpeg(5, 0.5), timeout=60, budget=BUDGET, cancelled=flaky)
    assert stats.returncode == 0


def test_a_run_past_its_cpu_budget_fails_with_a_reason() -> None:
    budget = Budget(memory_bytes=2 << 30, cpu_seconds=1)
    with pytest.raises(errors.ResourceLimitExceeded, match=r"^chunk 2 used more than its 1 s of CPU$") as failure:
        run_ffmpeg([sys.executable, "-c", SPIN], timeout=120, budget=budget, what="chunk 2")
    assert failure.value.code == "RESOURCE_LIMIT_EXCEEDED"


def test_a_run_past_its_memory_budget_fails_with_a_reason() -> None:
    """A child that cannot allocate (here Python, saying so the way ffmpeg does) is over budget, not broken."""
    grab = "import sys\ntry:\n    b = bytearray(1 << 30)\nexcept MemoryError:\n    sys.exit('Cannot allocate memory')\n"
    budget = Budget(memory_bytes=256 << 20, cpu_seconds=60)
    with pytest.raises(errors.ResourceLimitExceeded, match=r"needed more than its 256 MiB of memory"):
        run_ffmpeg([sys.executable, "-c", grab], timeout=60, budget=budget, what="chunk 0")


def test_each_run_reports_its_own_peak_memory() -> None:
    hold = "b = bytearray(200 << 20)\nb[::4096] = b'x' * len(b[::4096])\n"
    stats = run_ffmpeg([sys.executable, "-c", hold], timeout=60, budget=BUDGET)
    assert 200 << 20 <= stats.max_rss_bytes < 1 << 30
