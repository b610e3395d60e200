"""What the API returns, and the small request bodies besides `RenderRequest` (unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from render_service.models.timeline import MAX_SOURCE_BYTES, ApiModel, Subject

# The Cognito group whose members may call the /admin routes: the CDK creates it, and the local
# gateway puts its configured admin users in it.
ADMIN_GROUP = "admins"


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `RATE_LIMITED`.")
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class RenderCreated(BaseModel):
    renderId: str
    status: str
    cost: int = Field(description="Credits reserved; anything not used is refunded when the render ends.")


class OutputView(BaseModel):
    url: str | None = Field(None, description="Presigned GET URL, fresh on every read; absent once deleted.")
    expiresAt: datetime | None = None
    posterUrl: str | None = Field(
        None, description="A JPEG of a representative frame at the output's size, signed as `url` is."
    )
    thumbnailUrl: str | None = Field(None, description="The same frame as a JPEG of 320 px on its long side.")
    sizeBytes: int
    durationSeconds: float
    width: int | None = None
    height: int | None = None
    deleted: bool = Field(False, description="Removed by `DELETE /renders/{id}`.")
    retainedUntil: datetime | None = Field(
        None, description="When the output (MP4 and stills) expires and is deleted; no link outlives it."
    )
    expired: bool = Field(False, description="Past `retainedUntil`: the record stays, links are refused (410).")


class ErrorView(BaseModel):
    code: str
    message: str


class EngineCostView(BaseModel):
    """What the renderer reported the render cost in money (Remotion's `costs`); credits are `cost`."""

    accrued: float = Field(description="So far, or in all once the render ended.")
    currency: str
    display: str = Field(description="As Remotion formats it, e.g. `$0.0021`.")
    disclaimer: str = ""


class DeliveryView(BaseModel):
    destination: str
    key: str
    status: str = Field(description="pending, delivered or failed; a failed delivery never fails the render.")
    error: str | None = None


class RenderView(BaseModel):
    renderId: str
    status: str = Field(description="queued, rendering, complete, failed or cancelled; it only moves forward.")
    phase: str = Field(
        description="queued, preparing, rendering, finalizing, retrying (waiting for the next attempt) or done."
    )
    progress: int = Field(ge=0, le=100, description="0 to 100, never decreasing.")
    estimatedSecondsRemaining: int | None = Field(
        None, description="Seconds until done, once progress allows an honest estimate; null before."
    )
    engine: str
    subject: Subject | None = None
    queuePosition: int | None = Field(None, description="1 = next to start, while waiting for a free slot.")
    cost: int
    attempts: int = Field(description="Attempts started so far; a transient failure is retried as a whole.")
    maxAttempts: int
    nextAttemptAt: datetime | None = Field(None, description="While retrying: when the next attempt starts.")
    lastError: ErrorView | None = Field(None, description="Why the last attempt failed, while retrying.")
    safeMode: bool = Field(
        False, description="The render is retried with safer settings (no smart copy, lower quality)."
    )
    createdAt: datetime
    updatedAt: datetime
    startedAt: datetime | None = None
    completedAt: datetime | None = None
    output: OutputView | None = None
    error: ErrorView | None = None
    engineCost: EngineCostView | None = Field(None, description="Remotion renders: its own cost report.")
    deliveries: list[DeliveryView] = Field(
        default_factory=list, description="Copies of the output to the destination named by `deliverTo`."
    )


class RenderPage(BaseModel):
    renders: list[RenderView]
    nextCursor: str | None = Field(None, description="Pass as `cursor` for the next page; absent on the last.")


class AdminRenderView(RenderView):
    """A render as an operator sees it: whose it is, how old, and where its workflow runs."""

    userId: str = Field(description="The owner (their Cognito `sub`).")
    ageSeconds: int = Field(ge=0, description="Seconds since the render was submitted.")
    executionArn: str = Field(description="The render's Step Functions execution (named by the render id).")
    consoleUrl: str = Field(description="That execution in the AWS console.")


class AdminRenderPage(BaseModel):
    renders: list[AdminRenderView]
    nextCursor: str | None = Field(None, description="Pass as `cursor` for the next page; absent on the last.")


class DownloadUrlRequest(ApiModel):
    expiresInSeconds: int = Field(3600, ge=60, le=604800)


class DownloadUrl(BaseModel):
    url: str
    expiresAt: datetime


class CancelBySubject(ApiModel):
    subject: Subject


class CancelledRenders(BaseModel):
    cancelled: list[str]


class Estimate(BaseModel):
    durationSeconds: float = Field(
        description="Upper bound of the output length; clips without `duration` count fully."
    )
    credits: int
    estimatedRenderSeconds: int


class UploadContentType(StrEnum):
    mp4 = "video/mp4"
    mov = "video/quicktime"
    webm = "video/webm"
    png = "image/png"
    jpeg = "image/jpeg"
    mp3 = "audio/mpeg"
    m4a = "audio/mp4"
    wav = "audio/wav"


class UploadRequest(ApiModel):
    filename: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")
    contentType: UploadContentType
    sizeBytes: int = Field(gt=0, le=MAX_SOURCE_BYTES, description="At most what a render reads from one source.")


class UploadTicket(BaseModel):
    url: str
    method: str = "PUT"
    headers: dict[str, str]
    src: str = Field(description="Use this as a scene's `src` once the upload has finished.")
    expiresAt: datetime


class RateWindowQuota(BaseModel):
    limit: int = Field(description="Renders admitted per window.")
    seconds: int = Field(description="Window length; windows are fixed and aligned to the epoch (86400 = a UTC day).")
    used: int
    remaining: int
    resetAt: datetime


class RenderQuota(BaseModel):
    limit: int = Field(description="The limit of the window that admits the fewest more renders.")
    remaining: int = Field(description="Renders that may be submitted now: the least left in any window.")
    resetAt: datetime = Field(description="When that window resets.")
    windows: list[RateWindowQuota] = Field(description="Every window of the rate policy, shortest first.")


class SlotQuota(BaseModel):
    limit: int
    count: int


class CreditQuota(BaseModel):
    balance: int
    enabled: bool


class QuotaView(BaseModel):
    renders: RenderQuota
    active: SlotQuota
    queued: SlotQuota
    credits: CreditQuota


class Health(BaseModel):
    status: str = "ok"
