"""Contract: what we send and parse matches Remotion's documented shapes (events/remotion_*.json cite the docs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from render_service.engines.remotion.client import RemotionConfig, RemotionFunction
from render_service.engines.remotion.protocol import RenderProgress, StartPayload, cancel_key, progress_key
from render_service.models.remotion import RemotionRequest

CONFIG = RemotionConfig(
    "remotion-render-x", "https://example.com/sites/s/index.html", "us-east-1", "rl-bucket", "4.0.0"
)


def _request(**fields: Any) -> RemotionRequest:
    body = {"engine": "remotion", "kind": "clip", "composition": "TextAnimation", "durationInFrames": 90, **fields}
    return RemotionRequest.model_validate(body)


def test_the_start_payload_has_the_documented_fields_and_is_private(load_event: Callable[..., Any]) -> None:
    documented = load_event("remotion_start")
    documented.pop("$comment")
    request = _request(inputProps={"text": "Hello"}, concurrency=4, output={"width": 1280, "height": 720, "crf": 23})
    payload = RemotionFunction(CONFIG, lambda_client=None, s3=None).start_payload(request)  # type: ignore[arg-type]
    sent = payload.model_dump(mode="json")

    assert set(sent) == set(documented)
    assert StartPayload.model_validate(documented).type == "start"
    assert (sent["privacy"], sent["enableCancellation"], sent["codec"]) == ("private", True, "h264")
    assert (sent["forceWidth"], sent["forceHeight"], sent["forceFps"], sent["forceDurationInFrames"]) == (
        1280,
        720,
        30,
        90,
    )
    assert sent["inputProps"] == {"type": "payload", "payload": '{"text":"Hello"}'}
    assert (sent["serveUrl"], sent["version"], sent["concurrency"], sent["crf"]) == (CONFIG.serve_url, "4.0.0", 4, 23)


def test_a_finished_progress_document_parses(load_event: Callable[..., Any]) -> None:
    progress = RenderProgress.model_validate(load_event("remotion_progress"))

    assert progress.done
    assert not progress.fatalErrorEncountered
    assert not progress.cancelled
    assert (progress.outKey, progress.outputSizeInBytes) == ("renders/d7nlc2y/out.mp4", 1_000_000)
    assert progress.costs.displayCost == "$0.0021"
    assert progress.renderMetadata is not None
    assert progress.renderMetadata.totalChunks == 5


def test_a_cancelled_render_is_a_fatal_cancelled_error(load_event: Callable[..., Any]) -> None:
    progress = RenderProgress.model_validate(load_event("remotion_progress_cancelled"))

    assert progress.cancelled
    assert not progress.done
    fatal = progress.fatal_error()
    assert fatal is not None
    assert fatal.name == "CancelledError"
    assert fatal.stack


def test_progress_and_cancel_live_side_by_side_in_remotions_bucket() -> None:
    assert progress_key("abc") == "renders/abc/progress.json"
    assert cancel_key("abc") == "renders/abc/cancel.json"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"output": {"width": 3840, "height": 2160}}, "width"),
        ({"output": {"width": 1921, "height": 1080}}, "width"),
        ({"output": {"width": 1279, "height": 720}}, "multiple of 2"),  # H.264 4:2:0 needs even sides
        ({"output": {"width": 1920, "height": 1920}}, "1920x1080"),
        ({"framesPerLambda": 3}, "framesPerLambda"),
        ({"concurrency": 201}, "concurrency"),
        ({"framesPerLambda": 20, "concurrency": 2}, "at most one"),
        ({"composition": "../x"}, "composition"),
        ({"output": {"codec": "prores"}}, "codec"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_shape_bounds_are_refused_naming_the_field(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        _request(**fields)


def test_portrait_up_to_1080x1920_is_allowed() -> None:
    assert _request(output={"width": 1080, "height": 1920}).output.height == 1920
