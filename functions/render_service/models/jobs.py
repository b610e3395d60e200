"""The render job as stored in DynamoDB (not the API response: see `models/api.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from render_service.models.requests import AnyRenderRequest
from render_service.models.timeline import Subject


class RenderStatus(StrEnum):
    queued = "queued"
    rendering = "rendering"
    complete = "complete"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RenderStatus.complete, RenderStatus.failed, RenderStatus.cancelled})
ACTIVE = frozenset({RenderStatus.queued, RenderStatus.rendering})


class SlotState(StrEnum):
    """Where the render stands with the user's concurrency slots; each move is a conditional write."""

    waiting = "waiting"  # counted in the user's queued renders
    held = "held"  # counted in the user's active renders
    released = "released"


class Phase(StrEnum):
    queued = "queued"
    preparing = "preparing"
    rendering = "rendering"
    finalizing = "finalizing"
    retrying = "retrying"  # an attempt failed for a transient reason; the next one starts at next_attempt_at
    done = "done"


class RenderError(BaseModel):
    code: str
    message: str


class OutputObject(BaseModel):
    key: str
    size_bytes: int
    duration_seconds: float
    width: int | None = None
    height: int | None = None
    deleted: bool = False
    # Beside the MP4 (see storage.py); None for outputs made before stills, or when making them failed.
    poster_key: str | None = None
    thumbnail_key: str | None = None
    # Set when the render completes (see retention.py); None for outputs from before retention.
    retention_days: int | None = None
    retained_until: datetime | None = None


class EngineCosts(BaseModel):
    """What the renderer itself reports the render cost (Remotion's `costs`): money, not credits."""

    accrued: float
    currency: str
    display: str
    disclaimer: str = ""


class RemotionRender(BaseModel):
    """The render at Remotion, for a job of engine remotion: set by StartRender, read by every later step."""

    render_id: str
    bucket: str
    out_bucket: str | None = None
    out_key: str | None = None
    costs: EngineCosts | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class Delivery(BaseModel):
    """A copy of the output to a deployment's destination; it never decides the render's own status."""

    destination: str
    key: str
    status: DeliveryStatus = DeliveryStatus.pending
    error: str | None = None
    attempts: int = 0


class RenderJob(BaseModel):
    render_id: str
    user_id: str
    status: RenderStatus = RenderStatus.queued
    phase: Phase = Phase.queued
    progress: int = Field(0, ge=0, le=100)
    request: AnyRenderRequest
    cost: int = 0
    attempts: int = 0
    slot: SlotState = SlotState.waiting
    refunded: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    attempt_started_at: datetime | None = None
    completed_at: datetime | None = None
    output: OutputObject | None = None
    error: RenderError | None = None
    # Whole-render retries: why the last attempt failed, when the next starts, and whether it
    # runs with safer settings (after ffmpeg itself failed).
    last_error: RenderError | None = None
    next_attempt_at: datetime | None = None
    safe_mode: bool = False
    # Set by the workflow's first step: proof that this render's execution exists.
    execution_seen: bool = False
    # Set by cancel before it stops the execution, so whoever sees the stop first ends it as cancelled.
    cancel_requested: bool = False
    remotion: RemotionRender | None = None
    # Where the ending is emailed (the `email` claim at submit), when the request or the deployment asked.
    notify_email: str | None = None
    deliveries: list[Delivery] = Field(default_factory=list)

    @property
    def subject(self) -> Subject | None:
        return self.request.subject

    @property
    def engine(self) -> str:
        return self.request.engine


class ChunkStatus(StrEnum):
    pending = "pending"
    dispatched = "dispatched"  # invoked; waiting for a worker to claim it
    running = "running"  # claimed by a worker, which heartbeats
    done = "done"
    failed = "failed"


class Chunk(BaseModel):
    render_id: str
    render_attempt: int = 1  # each attempt of a render plans its own chunks
    index: int
    frames: int
    spec: str  # the engine's ChunkSpec, as JSON
    status: ChunkStatus = ChunkStatus.pending
    attempts: int = 0
    frames_done: int = 0
    key: str | None = None
    error: str | None = None
    error_code: str | None = None  # set when the failure is permanent: the render fails with it
    heartbeat_at: datetime | None = None
    dispatched_at: datetime | None = None
