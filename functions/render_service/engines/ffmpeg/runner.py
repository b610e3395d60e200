"""Runs ffmpeg: a budget and a timeout on every run, a stop on cancel, progress, short errors.

Every argv this module runs comes from `commands.py`; callers never hand it user
text. Each child runs under its OS budget (`limits.Budget`: RLIMIT_AS and RLIMIT_CPU,
set between fork and exec). One watchdog thread per run kills the child when its
timeout passes (`EncodeTimedOut`) or when `cancelled()`, polled every
`CANCEL_POLL_SECONDS`, says the render has ended (`RenderCancelled`), so that a
cancelled render's ffmpeg stops within seconds even if it prints nothing. A run that
hits its budget raises `ResourceLimitExceeded`; any other non-zero exit raises
`EncodeFailed` carrying ffmpeg's last meaningful stderr line, never a traceback or
the whole log. The child is reaped with `wait4`, so every run reports its own peak
memory and CPU time (`RunStats`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from render_service import errors
from render_service.engines.ffmpeg.limits import Budget

logger = Logger(child=True)

PROGRESS_INTERVAL_SECONDS = 0.5
"""At most this often (plus one final call) `on_progress` hears about new frames."""
CANCEL_POLL_SECONDS = 1.5
"""How often a run asks `cancelled()`: each ask is one (eventually consistent) DynamoDB read."""
MAX_CAPTURE_CHARS = 4 << 20
"""A probe's stderr beyond this is dropped (a crafted file can list any number of streams)."""

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


@dataclass(frozen=True)
class RunStats:
    """What one child cost, from the kernel's accounting of that process alone (wait4).

    `max_rss_bytes` is at least what the parent held when it forked the child (Linux keeps the
    pre-exec high-water mark); the budget itself is unaffected, exec starts a new address space.
    """

    max_rss_bytes: int
    cpu_seconds: float
    returncode: int


class _Child:
    """One ffmpeg process: started under its budget, killed at most once, reaped once with wait4."""

    def __init__(self, argv: Sequence[str], budget: Budget) -> None:
        self.budget = budget
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=budget.child_env(),
            # Safe with our threads: apply() only calls setrlimit (no imports, no locks, no logging).
            preexec_fn=budget.apply,  # noqa: PLW1509
        )
        self.killed_for: str | None = None
        self._lock = threading.Lock()
        self._reaped = False

    def kill(self, reason: str) -> None:
        # Under the lock with the reaped flag: never signal a pid the kernel may have reused.
        with self._lock:
            if self._reaped:
                return
            if self.killed_for is None:
                self.killed_for = reason
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)

    def reap(self) -> RunStats:
        _, status, usage = os.wait4(self.proc.pid, 0)
        with self._lock:
            self._reaped = True
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return RunStats(
            max_rss_bytes=usage.ru_maxrss * 1024,  # kilobytes on Linux
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            returncode=self.proc.returncode,
        )


def _watchdog(
    child: _Child, timeout: float, cancelled: Callable[[], bool] | None, done: threading.Event
) -> threading.Thread:
    deadline = time.monotonic() + timeout

    def watch() -> None:
        next_ask = time.monotonic() + CANCEL_POLL_SECONDS
        while True:
            now = time.monotonic()
            wake = min(deadline, next_ask) if cancelled is not None else deadline
            if done.wait(max(0.0, wake - now)):
                return
            now = time.monotonic()
            if now >= deadline:
                child.kill("timeout")
                return
            if cancelled is not None and now >= next_ask:
                try:
                    stop = cancelled()
                except Exception:  # a failed status read must not end a healthy run
                    logger.warning("could not check whether the render was cancelled", exc_info=True)
                    stop = False
                if stop:
                    child.kill("cancelled")
                    return
                next_ask = time.monotonic() + CANCEL_POLL_SECONDS

    thread = threading.Thread(target=watch, daemon=True, name="ffmpeg-watchdog")
    thread.start()
    return thread


@dataclass
class _Run:
    child: _Child
    stderr: deque[str]
    stats: RunStats | None = None


def _run(
    argv: Sequence[str],
    *,
    timeout: float,
    budget: Budget,
    cancelled: Callable[[], bool] | None,
    stderr_lines: int | None,
    on_stdout: Callable[[Iterator[str]], None],
) -> _Run:
    """Start the child, drain stderr on a thread, hand stdout to `on_stdout`, then reap.

    Whatever `on_stdout` raises (a caller giving up early) kills the child and propagates
    after it was reaped, so no run outlives its caller.
    """
    child = _Child(argv, budget)
    proc = child.proc
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr = proc.stderr
    tail: deque[str] = deque(maxlen=stderr_lines)

    def drain() -> None:
        kept = 0
        for line in stderr:
            if kept < MAX_CAPTURE_CHARS:
                tail.append(line.rstrip("\n"))
                kept += len(line)

    drainer = threading.Thread(target=drain, daemon=True, name="ffmpeg-stderr")
    drainer.start()
    done = threading.Event()
    watchdog = _watchdog(child, timeout, cancelled, done)
    run = _Run(child=child, stderr=tail)
    try:
        on_stdout(iter(proc.stdout))
    except BaseException:
        child.kill("abandoned")
        raise
    finally:
        done.set()
        run.stats = child.reap()
        watchdog.join(timeout=5)
        drainer.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
        logger.debug(
            "ffmpeg ended",
            extra={
                "returncode": run.stats.returncode,
                "max_rss_mb": run.stats.max_rss_bytes >> 20,
                "cpu_seconds": round(run.stats.cpu_seconds, 2),
                "killed_for": child.killed_for,
            },
        )
    return run


def _raise_for(run: _Run, *, what: str, timeout: float) -> RunStats:
    stats, child = run.stats, run.child
    assert stats is not None
    if child.killed_for == "timeout":
        raise errors.EncodeTimedOut(f"{what} did not finish within {timeout:.0f} s")
    if child.killed_for == "cancelled":
        raise errors.RenderCancelled(f"{what} was stopped: the render has ended")
    lines = list(run.stderr)
    if (limit := child.budget.exceeded(stats.returncode, lines, stats.cpu_seconds, what)) is not None:
        raise limit
    if stats.returncode != 0:
        raise errors.EncodeFailed(f"{what} failed: {last_error_line(lines)}")
    return stats


def run_ffmpeg(
    argv: Sequence[str],
    *,
    timeout: float,
    budget: Budget,
    on_progress: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    what: str = "ffmpeg",
) -> RunStats:
    """Run one ffmpeg process to completion under `budget`; returns what it cost.

    `argv` must contain `-progress pipe:1` for `on_progress` to hear anything; stdout
    carries only that key=value stream, stderr is drained on a thread so neither
    pipe can fill up and stall the encoder. `cancelled` is asked every
    `CANCEL_POLL_SECONDS` whether the render has ended.
    """

    def progress(lines: Iterator[str]) -> None:
        reported, frames, last_call = 0, 0, 0.0
        for line in lines:
            key, _, value = line.strip().partition("=")
            if key == "frame" and value.isdigit():
                frames = int(value)
            elif key == "progress" and on_progress is not None and frames > reported:
                now = time.monotonic()
                if value == "end" or now - last_call >= PROGRESS_INTERVAL_SECONDS:
                    on_progress(frames)
                    reported, last_call = frames, now

    run = _run(argv, timeout=timeout, budget=budget, cancelled=cancelled, stderr_lines=40, on_stdout=progress)
    return _raise_for(run, what=what, timeout=timeout)


@dataclass(frozen=True)
class Captured:
    returncode: int
    stdout: str
    stderr: str
    stats: RunStats


def run_capture(
    argv: Sequence[str],
    *,
    timeout: float,
    budget: Budget,
    on_line: Callable[[str], None] | None = None,
    what: str = "ffmpeg",
) -> Captured:
    """Run a short ffmpeg (probe, packet scan) and return its exit code, output and cost.

    With `on_line`, stdout is handed over line by line and not kept (a packet listing
    can be long); `on_line` may raise to stop the run early. Raises
    `subprocess.TimeoutExpired` after killing the process (the caller decides which
    domain error that is) and `ResourceLimitExceeded` for a run that hit its budget;
    any other exit code is the caller's to judge (`ffmpeg -i` alone exits 1).
    """
    kept: list[str] = []

    def read(lines: Iterator[str]) -> None:
        for line in lines:
            if on_line is not None:
                on_line(line)
            else:
                kept.append(line)

    run = _run(argv, timeout=timeout, budget=budget, cancelled=None, stderr_lines=None, on_stdout=read)
    stats = run.stats
    assert stats is not None
    if run.child.killed_for == "timeout":
        raise subprocess.TimeoutExpired(list(argv), timeout)
    lines = list(run.stderr)
    if (limit := run.child.budget.exceeded(stats.returncode, lines, stats.cpu_seconds, what)) is not None:
        raise limit
    return Captured(returncode=stats.returncode, stdout="".join(kept), stderr="\n".join(lines), stats=stats)
