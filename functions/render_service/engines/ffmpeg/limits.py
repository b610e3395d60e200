"""What one ffmpeg run may cost: the OS budget every child gets, and the bounds on what it reads.

Media can be small and expensive: a 1.5 MB PNG of 14000x14000 decodes to about 600 MB, a 30 MB
MP4 of tiny frames holds a million packets. The bounds in `Settings` (`MAX_IMAGE_PIXELS`,
`MAX_VIDEO_PIXELS`, `MAX_SOURCE_SECONDS`, `MAX_SOURCE_PACKETS`) refuse such sources while
planning, with a reason that names the scene; the budget here is the backstop for whatever a
bound did not foresee. Each ffmpeg child runs under

- `RLIMIT_AS`: the function's memory less what the Python process needs, so no input can take
  the worker past Lambda's memory (Lambda would kill the whole invocation, with no reason given);
- `RLIMIT_CPU`: the CPU seconds the run could use at full speed on every core within its wall
  timeout, plus a margin. The wall timeout normally fires first; this one still holds if the
  parent's timer thread never gets to run.

A run that hits its budget fails with `ResourceLimitExceeded` (permanent: the same input would
hit it again).
"""

from __future__ import annotations

import math
import os
import resource
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from render_service import errors
from render_service.settings import Settings

# What the Python process around ffmpeg needs for itself (runtime, boto3, the plan).
PYTHON_HEADROOM_MB = 256
MIN_BUDGET_MB = 512
# The deployed ffmpeg functions' memory (infra/constructs/functions.py); used where Lambda does
# not say (locally), so that a local run has the budget it would have deployed.
DEFAULT_FUNCTION_MEMORY_MB = 3008
CPU_MARGIN_SECONDS = 30
MAX_WINDOW_PACKETS = 250_000
"""Video packets planning lists for one cut: ten minutes at over 400 fps."""
MAX_SIDE = 16384
"""No source side may be longer (x264 and swscale refuse more; nobody shoots it)."""

# RLIMIT_AS counts reserved address space, not memory in use, and glibc reserves 64 MiB per
# malloc arena, up to 8 per core: x264's threads would spend hundreds of MB of the budget on
# address space they never touch. Two arenas cost nothing measurable in speed.
_CHILD_ENV = {"MALLOC_ARENA_MAX": "2"}
# How ffmpeg says an allocation failed (ENOMEM from a decoder, a thread it could not start).
_OUT_OF_MEMORY = ("Cannot allocate memory", "Out of memory", "pthread_create() failed", "std::bad_alloc")
_CRASHES = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT)


@dataclass(frozen=True)
class Budget:
    memory_bytes: int
    cpu_seconds: int

    @property
    def memory_mb(self) -> int:
        return self.memory_bytes >> 20

    def apply(self) -> None:
        """Runs in the child between fork and exec (`preexec_fn`): only async-signal-safe calls."""
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        # The soft limit sends SIGXCPU (the run ends with a reason), the hard one SIGKILL.
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))

    @staticmethod
    def child_env() -> Mapping[str, str]:
        return os.environ | _CHILD_ENV

    def exceeded(
        self, returncode: int, stderr_lines: Sequence[str], cpu_used: float, what: str
    ) -> errors.ResourceLimitExceeded | None:
        """The error for a run that ended by hitting this budget, or None if it ended otherwise.

        Not for a run the runner killed itself (timeout, cancel): that one has its own reason.
        """
        # ffmpeg exits on SIGXCPU as on SIGTERM (others die of it); SIGKILL follows at the hard
        # limit. The kernel's CPU accounting is coarse, so "at the limit" allows a second.
        if returncode == -signal.SIGXCPU or (returncode != 0 and cpu_used >= self.cpu_seconds - 1):
            return errors.ResourceLimitExceeded(f"{what} used more than its {self.cpu_seconds} s of CPU")
        if returncode != 0 and any(marker in line for line in stderr_lines for marker in _OUT_OF_MEMORY):
            return errors.ResourceLimitExceeded(f"{what} needed more than its {self.memory_mb} MiB of memory")
        if returncode in [-s for s in _CRASHES]:
            # Under an address-space limit a failed allocation often ends in a crash, not a message.
            return errors.ResourceLimitExceeded(
                f"{what} crashed (signal {-returncode}), most likely beyond its {self.memory_mb} MiB of memory"
            )
        return None


def function_memory_mb(settings: Settings | None) -> int:
    return (settings.lambda_memory_mb if settings else 0) or DEFAULT_FUNCTION_MEMORY_MB


def budget(settings: Settings | None, *, timeout: float) -> Budget:
    """The budget of one ffmpeg run that may take `timeout` seconds of wall time.

    Without settings (a helper called outside a function), the deployed functions' budget.
    """
    override = settings.ffmpeg_memory_mb if settings else 0
    memory_mb = override or max(MIN_BUDGET_MB, function_memory_mb(settings) - PYTHON_HEADROOM_MB)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Budget(memory_bytes=memory_mb << 20, cpu_seconds=math.ceil(timeout * cores) + CPU_MARGIN_SECONDS)
