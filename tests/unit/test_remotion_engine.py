"""The remotion engine's decisions: progress mapping, fatal errors, Remotion's timeout rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from render_service import errors
from render_service.engines import remotion
from render_service.engines.remotion.protocol import RenderProgress
from render_service.models.remotion import RemotionRequest

START = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def _request(kind: str = "clip", **fields: Any) -> RemotionRequest:
    body = {"engine": "remotion", "kind": kind, "composition": "TextAnimation", "durationInFrames": 300, **fields}
    return RemotionRequest.model_validate(body)


def _progress(**fields: Any) -> RenderProgress:
    return RenderProgress.model_validate({"renderMetadata": {"startedDate": START.timestamp() * 1000}, **fields})


def test_progress_maps_into_the_rendering_band_and_never_reaches_done_early() -> None:
    seen = [
        remotion.watch(_progress(overallProgress=p), _request(), started=START, now=START + timedelta(seconds=5))
        for p in (0, 0.1, 0.5, 0.9, 0.999, 1.0)
    ]
    values = [w.progress for w in seen]
    assert values == sorted(values)
    assert values[0] == 5
    assert values[-1] < 90
    assert not any(w.done for w in seen)
    combining = remotion.watch(
        _progress(overallProgress=0.95, encodingStatus={"framesEncoded": 10}), _request(), started=START, now=START
    )
    assert combining.phase == "finalizing"


def test_done_is_the_end_of_the_band_with_the_cost_report(load_event: Callable[..., Any]) -> None:
    done = remotion.watch(
        RenderProgress.model_validate(load_event("remotion_progress")), _request(), started=START, now=START
    )
    assert (done.done, done.progress, done.phase) == (True, 90, "finalizing")
    assert done.costs.displayCost == "$0.0021"


def test_a_fatal_error_fails_with_remotions_message_not_its_stack() -> None:
    progress = _progress(
        fatalErrorEncountered=True,
        errors=[
            {"message": "flaky", "isFatal": False, "willRetry": True},
            {"name": "TypeError", "message": "props.text is undefined", "stack": "at Comp (x.js:1)", "isFatal": True},
        ],
    )
    with pytest.raises(errors.RemotionRenderFailed) as failed:
        remotion.watch(progress, _request(), started=START, now=START)
    assert failed.value.message == "Remotion: TypeError: props.text is undefined"
    assert "x.js" not in failed.value.message


@pytest.mark.parametrize(("kind", "limit"), [("clip", 60), ("movie", 240)])
def test_a_render_past_its_kinds_timeout_from_remotions_start_fails(kind: str, limit: int) -> None:
    request = _request(kind)
    just_in_time = START + timedelta(seconds=limit - 1)
    assert not remotion.watch(_progress(overallProgress=0.5), request, started=just_in_time, now=just_in_time).done
    with pytest.raises(errors.RemotionTimedOut, match=f"{limit} s"):
        # Remotion's startedDate counts, not when we first asked.
        remotion.watch(
            _progress(overallProgress=0.5), request, started=just_in_time, now=START + timedelta(seconds=limit + 1)
        )
