"""Runs ffmpeg: a timeout on every run, progress from `-progress pipe:1`, short errors.

Every argv this module runs comes from `commands.py`; callers never hand it user
text. A run that exceeds its timeout is killed and raises `EncodeTimedOut`; a
non-zero exit raises `EncodeFailed` carrying ffmpeg's last meaningful stderr
line, never a traceback or the whole log.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from render_service import errors

PROGRESS_INTERVAL_SECONDS = 0.5
"""At most this often (plus one final call) `on_progress` hears about new frames."""

# ffmpeg prefixes log lines with the component that wrote them: "[vost#0:0/libx264 @ 0x55d0] ".
_COMPONENT = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")
# Lines that only report that something earlier went wrong; the first other line is the cause.
_CONSEQUENCES = (
    "Conversion failed!",
    "Error opening output file",
    "Error opening input file",
    "Error reinitializing filters",
    "Failed to configure output pad",
    "Could not open encoder before EOF",
    "Terminating thread",
    "Task finished with error code",
    "Nothing was written",
    "Error while filtering",
    "Error sending frames to consumers",
)


def last_error_line(stderr_lines: Sequence[str]) -> str:
    """The line of ffmpeg's error output that names the cause, without the component prefix.

    ffmpeg reports the cause first and its consequences after it ("Could not open
    encoder before EOF", "Conversion failed!"), so the first line that is not a known
    consequence wins; failing that, the last line.
    """
    cleaned = [_COMPONENT.sub("", _COMPONENT.sub("", line)).strip() for line in stderr_lines]
    cleaned = [line for line in cleaned if line]
    for line in cleaned:
        if not line.startswith(_CONSEQUENCES):
            return line[:300]
    return cleaned[-1][:300] if cleaned else "ffmpeg failed without a message"


def run_ffmpeg(
    argv: Sequence[str],
    *,
    timeout: float,
    on_progress: Callable[[int], None] | None = None,
    what: str = "ffmpeg",
) -> None:
    """Run one ffmpeg process to completion.

    `argv` must contain `-progress pipe:1` for `on_progress` to hear anything; stdout
    carries only that key=value stream, stderr is drained on a thread so neither
    pipe can fill up and stall the encoder.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    tail: deque[str] = deque(maxlen=40)
    stderr = proc.stderr
    drain = threading.Thread(target=lambda: tail.extend(line.rstrip("\n") for line in stderr), daemon=True)
    drain.start()
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, _kill)
    timer.daemon = True
    timer.start()
    reported, frames, last_call = 0, 0, 0.0
    try:
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if key == "frame" and value.isdigit():
                frames = int(value)
            elif key == "progress" and on_progress is not None and frames > reported:
                now = time.monotonic()
                if value == "end" or now - last_call >= PROGRESS_INTERVAL_SECONDS:
                    on_progress(frames)
                    reported, last_call = frames, now
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
    if timed_out.is_set():
        raise errors.EncodeTimedOut(f"{what} did not finish within {timeout:.0f} s")
    if proc.returncode != 0:
        raise errors.EncodeFailed(f"{what} failed: {last_error_line(list(tail))}")


def run_capture(argv: Sequence[str], *, timeout: float) -> tuple[int, str, str]:
    """Run a short ffmpeg (probe, packet scan) and return (exit code, stdout, stderr).

    Raises `subprocess.TimeoutExpired` after killing the process; the caller decides
    which domain error that is.
    """
    done = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr
