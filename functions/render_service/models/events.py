"""The events the service publishes on its EventBridge bus: the `detail` of each, as a model.

`Source` and `DetailType` are a public contract: apps write rules against them, and the webhook
deliverer forwards these documents as they are. `events/schemas/*.schema.json` is generated from
these models (`python -m render_service.models.events events/schemas`); a test keeps it current.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from render_service.models.timeline import Subject

SOURCE = "render-service"
# Event ids are uuid5 in this namespace: the same ending of the same render always has the same id.
_EVENT_NAMESPACE = uuid.UUID("5d4e8a3c-6f1b-4c2e-9a7d-3b8f0e1c2a94")


class DetailType(StrEnum):
    started = "Render Started"
    succeeded = "Render Succeeded"
    failed = "Render Failed"
    cancelled = "Render Cancelled"
    expiring = "Render Expiring"  # a while before the output expires (see reminders.py)
    delivery_failed = "Render Delivery Failed"


class EventModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventOutput(EventModel):
    bucket: str
    key: str
    url: str = Field(description="A download link, valid until `expiresAt`.")
    expiresAt: datetime
    sizeBytes: int
    durationSeconds: float
    posterKey: str | None = Field(None, description="The poster JPEG beside the output, at its size.")
    thumbnailKey: str | None = Field(None, description="The thumbnail JPEG, 320 px on the long side.")
    retainedUntil: datetime | None = Field(None, description="When the output (and its stills) is deleted.")


class EventError(EventModel):
    code: str = Field(description="Stable machine-readable reason, e.g. SOURCE_INVALID, CANCELLED.")
    message: str


class EventDelivery(EventModel):
    destination: str = Field(description="The deployment's destination name (`deliverTo`).")
    key: str
    error: str


class RenderEvent(EventModel):
    """The `detail` of every render event."""

    eventId: str = Field(
        description="Stable per render and event type: a retried delivery carries the same id, so receivers "
        "can drop duplicates."
    )
    renderId: str
    userId: str
    status: str
    engine: str
    subject: Subject | None = None
    attempts: int = Field(0, description="Attempts made so far (whole-render retries included).")
    output: EventOutput | None = None
    error: EventError | None = None
    delivery: EventDelivery | None = Field(None, description="Render Delivery Failed: which copy, and why.")

    @staticmethod
    def event_id(render_id: str, detail_type: DetailType) -> str:
        return str(uuid.uuid5(_EVENT_NAMESPACE, f"{render_id}/{detail_type.value}"))

    def detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# What each detail type carries beyond the common fields, for the schemas and their tests.
REQUIRED: dict[DetailType, tuple[str, ...]] = {
    DetailType.started: (),
    DetailType.succeeded: ("output",),
    DetailType.failed: ("error",),
    DetailType.cancelled: ("error",),
    DetailType.expiring: ("output",),
    DetailType.delivery_failed: ("delivery",),
}


def schema(detail_type: DetailType) -> dict[str, Any]:
    """The JSON Schema of one event type's whole envelope, as EventBridge delivers it."""
    detail = RenderEvent.model_json_schema(ref_template="#/$defs/{model}")
    defs = detail.pop("$defs", {})
    detail["required"] = sorted({*detail.get("required", []), *REQUIRED[detail_type]})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"render-service/{detail_type.name}.schema.json",
        "title": detail_type.value,
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "source": {"const": SOURCE},
            "detail-type": {"const": detail_type.value},
            "detail": detail,
        },
        "$defs": defs,
    }


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for detail_type in DetailType:
        path = directory / f"{detail_type.name}.schema.json"
        path.write_text(json.dumps(schema(detail_type), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "events/schemas")):
        print(path)
