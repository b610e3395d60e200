"""The request model's shape and bounds."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from render_service.models.timeline import MAX_SCENES, Output, RenderRequest, Soundtrack


@pytest.mark.parametrize(
    ("resolution", "aspect", "size"),
    [
        ("1080p", "16:9", (1920, 1080)),
        ("1080p", "9:16", (1080, 1920)),
        ("1080p", "1:1", (1080, 1080)),
        ("1080p", "4:5", (1080, 1350)),
        ("720p", "16:9", (1280, 720)),
        ("1440p", "16:9", (2560, 1440)),
        ("4k", "16:9", (3840, 2160)),
        ("4k", "9:16", (2160, 3840)),
    ],
)
def test_presets_give_even_sizes(resolution: str, aspect: str, size: tuple[int, int]) -> None:
    output = Output.model_validate({"resolution": resolution, "aspectRatio": aspect})
    assert output.size == size
    assert all(side % 2 == 0 for side in output.size)


def scenes(*items: dict[str, Any]) -> dict[str, Any]:
    return {"timeline": {"scenes": list(items)}}


CLIP = {"type": "clip", "src": "s3://b/k.mp4"}


@pytest.mark.parametrize(
    "src",
    [
        "http://example.com/a.mp4",
        "file:///etc/passwd",
        "concat:a|b",
        "s3://bucket-only",
        "s3:///key",
        "subfile:,,start,0,end,0,,:/etc/passwd",
        "https://" + "a" * 2100,
    ],
)
def test_sources_must_be_s3_or_https(src: str) -> None:
    with pytest.raises(ValidationError):
        RenderRequest.model_validate(scenes({**CLIP, "src": src}))


def test_bounds_on_scenes_text_and_numbers() -> None:
    with pytest.raises(ValidationError):
        RenderRequest.model_validate(scenes(*[CLIP] * (MAX_SCENES + 1)))
    with pytest.raises(ValidationError):
        RenderRequest.model_validate(scenes({"type": "title", "text": "x" * 201}))
    with pytest.raises(ValidationError):
        RenderRequest.model_validate(scenes({"type": "title", "text": "hi", "color": "red;drawtext=x"}))
    with pytest.raises(ValidationError):
        RenderRequest.model_validate(scenes({**CLIP, "trimStart": -1}))
    with pytest.raises(ValidationError):
        RenderRequest.model_validate({**scenes(CLIP), "output": {"fps": 61}})


def test_a_transition_must_be_shorter_than_the_scenes_it_joins() -> None:
    title = {"type": "title", "text": "a", "duration": 1}
    RenderRequest.model_validate(scenes(title, {**title, "transition": {"type": "fade", "duration": 0.5}}))
    with pytest.raises(ValidationError, match=r"transition\.duration"):
        RenderRequest.model_validate(scenes(title, {**title, "transition": {"type": "fade", "duration": 1}}))


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="resolutoin"):
        RenderRequest.model_validate({**scenes(CLIP), "output": {"resolutoin": "720p"}})


@pytest.mark.parametrize("color", ["white", "Navy", "#ff8800", "#FF880080", "cornflowerblue"])
def test_colours_ffmpeg_knows_are_accepted(color: str) -> None:
    RenderRequest.model_validate(scenes({"type": "title", "text": "hi", "color": color}))


@pytest.mark.parametrize("color", ["notacolour", "#ff88", "red;x", "rgb(1,2,3)", ""])
def test_unknown_colours_are_refused_at_submission(color: str) -> None:
    with pytest.raises(ValidationError, match="colour name"):
        RenderRequest.model_validate(scenes({"type": "title", "text": "hi", "background": color}))


@pytest.mark.parametrize(
    "src",
    ["s3://b/k", "s3://b/a/b.mp4", "https://x", "https://example.com/a.mp4", "s3://b/", "s3:///k", "s3://b", "https://",
     "http://example.com/a", "file:///etc/passwd", "S3://b/k", "", "s3://b/k\n"],
)  # fmt: skip
def test_the_documented_src_pattern_is_the_rule(src: str) -> None:
    """Clients (and the contract run) read the rule from the document: it must be the one applied."""
    schema = RenderRequest.model_json_schema()["$defs"]["Soundtrack"]["properties"]["src"]
    documented = re.search(schema["pattern"], src) is not None and len(src) <= schema["maxLength"]
    try:
        Soundtrack(src=src)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is documented, src
