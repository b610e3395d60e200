"""Publishing render events on the EventBridge bus (their shapes: `models/events.py`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from render_service.models.events import SOURCE, DetailType

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

_MAX_BATCH = 10  # PutEvents takes at most 10 entries


class PublishFailed(Exception):
    """EventBridge refused one or more entries."""


class EventPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, detail_type: DetailType, details: Sequence[dict[str, Any]]) -> None:
        entries: list[dict[str, Any]] = [
            {
                "EventBusName": self._bus,
                "Source": SOURCE,
                "DetailType": detail_type.value,
                "Detail": json.dumps(detail, default=str),
                "Resources": [],
            }
            for detail in details
        ]
        for start in range(0, len(entries), _MAX_BATCH):
            response = self._client.put_events(Entries=entries[start : start + _MAX_BATCH])  # type: ignore[arg-type]
            if response.get("FailedEntryCount", 0):
                failures = [e for e in response["Entries"] if "ErrorCode" in e]
                raise PublishFailed(f"{len(failures)} event(s) refused: {failures[:3]}")
