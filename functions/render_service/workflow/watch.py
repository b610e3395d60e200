"""The question a running ffmpeg asks every couple of seconds: has this render ended?

StopExecution stops the workflow, not a Lambda already running one of its steps: a chunk
worker or a FinalizeRender keeps its ffmpeg going unless it looks. The runner's watchdog
asks this between runs of its own (see `engines/ffmpeg/runner.py`), so a cancelled render's
ffmpeg stops within seconds, even when it prints no progress.
"""

from __future__ import annotations

from collections.abc import Callable

from render_service.data.renders import RenderRepository
from render_service.models.jobs import TERMINAL


def render_ended(renders: RenderRepository, render_id: str) -> Callable[[], bool]:
    """True once the render is terminal (or gone).

    Terminal, not "cancel requested": the cancel writes its ending right after stopping the
    execution, and a step that failed before that would race it to a failed ending.
    """

    def ended() -> bool:
        job = renders.get(render_id, consistent=False)
        return job is None or job.status in TERMINAL

    return ended
