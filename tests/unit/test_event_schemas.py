"""The JSON Schemas in events/schemas/ are the event models' own, and the sample events conform."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from render_service.models.events import DetailType, RenderEvent, schema

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"


@pytest.mark.parametrize("detail_type", list(DetailType))
def test_the_committed_schema_is_generated_from_the_model(detail_type: DetailType) -> None:
    committed = json.loads((SCHEMAS / f"{detail_type.name}.schema.json").read_text())
    assert committed == schema(detail_type), "run `python -m render_service.models.events events/schemas`"


def test_the_sample_event_conforms(load_event: Callable[..., dict[str, Any]]) -> None:
    event = load_event("render_succeeded")
    jsonschema.validate(event, json.loads((SCHEMAS / "succeeded.schema.json").read_text()))


def test_a_succeeded_event_without_its_output_does_not_conform(load_event: Callable[..., dict[str, Any]]) -> None:
    event = load_event("render_succeeded")
    del event["detail"]["output"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(event, json.loads((SCHEMAS / "succeeded.schema.json").read_text()))


def test_event_ids_are_stable_per_render_and_type_and_differ_between_them() -> None:
    first = RenderEvent.event_id("r-1", DetailType.failed)
    assert first == RenderEvent.event_id("r-1", DetailType.failed)
    assert first != RenderEvent.event_id("r-1", DetailType.succeeded)
    assert first != RenderEvent.event_id("r-2", DetailType.failed)
