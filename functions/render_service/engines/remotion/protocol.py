"""Remotion Lambda's wire protocol, as its public documentation describes it (we use no Remotion code).

A render is started and watched by invoking the team's deployed function with JSON payloads:

- `start` (renderMediaOnLambda): serveUrl, composition, inputProps, codec, crf, framesPerLambda or
  concurrency, forceWidth/forceHeight/forceFps/forceDurationInFrames, outName, privacy,
  timeoutInMilliseconds, maxRetries, enableCancellation, webhook, version. The reply carries
  `renderId` and `bucketName`.
- `status` (getRenderProgress): renderId, bucketName, version. The reply is the render's progress:
  overallProgress (0 to 1), done, fatalErrorEncountered, errors[], costs, outKey, outBucket,
  outputSizeInBytes, timeToFinish, renderMetadata, framesRendered, lambdasInvoked, ...
- cancellation (cancelRenderOnLambda): a signal object beside the render's `progress.json` in
  Remotion's bucket, honoured only when the render started with `enableCancellation: true`;
  the renderers then report a fatal `CancelledError`.
- input props too big for an invoke payload are stored in Remotion's bucket and passed as
  `{"type": "bucket-url", "hash", "bucketName"}` instead of `{"type": "payload", "payload"}`.

The models parse leniently (unknown fields are ignored): Remotion adds fields between versions,
and a new field must not fail a render.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# An invoke payload may be 256 KB (async) or 6 MB (sync); Remotion moves props to S3 well before
# its 256 KB limit, leaving room for the rest of the payload.
INLINE_PROPS_MAX_BYTES = 190_000
# delayRender() budget inside the composition (Remotion's default).
DELAY_RENDER_TIMEOUT_MS = 30_000
CANCELLED_ERROR = "CancelledError"


def render_prefix(render_id: str) -> str:
    """Where Remotion keeps one render's files in its bucket."""
    return f"renders/{render_id}/"


def progress_key(render_id: str) -> str:
    return f"{render_prefix(render_id)}progress.json"


def cancel_key(render_id: str) -> str:
    return f"{render_prefix(render_id)}cancel.json"


INPUT_PROPS_PREFIX = "input-props/"


def input_props_key(hash_: str) -> str:
    return f"{INPUT_PROPS_PREFIX}{hash_}.json"


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --- start --------------------------------------------------------------------------------


class InlineProps(Wire):
    type: Literal["payload"] = "payload"
    payload: str  # the props, serialised


class BucketProps(Wire):
    type: Literal["bucket-url"] = "bucket-url"
    hash: str
    bucketName: str


def serialized_props(props: dict[str, Any]) -> tuple[str, str]:
    """The props as Remotion reads them, and their SHA-256 (the S3 object's name when too big)."""
    text = json.dumps(props, separators=(",", ":"), ensure_ascii=False)
    return text, hashlib.sha256(text.encode()).hexdigest()


class Webhook(Wire):
    url: str
    secret: str | None
    customData: dict[str, Any] | None = None


class StartPayload(Wire):
    type: Literal["start"] = "start"
    serveUrl: str
    composition: str
    inputProps: InlineProps | BucketProps = Field(discriminator="type")
    codec: str
    crf: int | None = None
    framesPerLambda: int | None = None
    concurrency: int | None = None
    forceWidth: int
    forceHeight: int
    forceFps: int
    forceDurationInFrames: int
    outName: str | None = None
    # Remotion's default is "public": the output would be readable by anyone with its URL.
    privacy: Literal["private"] = "private"
    timeoutInMilliseconds: int = DELAY_RENDER_TIMEOUT_MS
    maxRetries: int = 1
    enableCancellation: bool = True
    webhook: Webhook | None = None
    version: str
    imageFormat: Literal["jpeg", "png"] = "jpeg"
    logLevel: Literal["info", "warn", "error", "verbose"] = "info"
    envVariables: dict[str, str] = Field(default_factory=dict)
    downloadBehavior: dict[str, Any] = Field(default_factory=lambda: {"type": "play-in-browser"})
    overwrite: bool = False


class StartResponse(Wire):
    renderId: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$")
    bucketName: str = Field(min_length=3, max_length=63)


# --- status -------------------------------------------------------------------------------


class StatusPayload(Wire):
    type: Literal["status"] = "status"
    renderId: str
    bucketName: str
    version: str
    logLevel: str = "info"


class RenderErrorInfo(Wire):
    """One entry of `errors[]`. Only `message` is always there."""

    name: str | None = None
    type: str | None = None
    message: str = ""
    stack: str | None = None
    chunk: int | None = None
    frame: int | None = None
    isFatal: bool | None = None
    attempt: int | None = None
    totalAttempts: int | None = None
    willRetry: bool | None = None


class Costs(Wire):
    accruedSoFar: float = 0.0
    currency: str = "USD"
    displayCost: str = ""
    disclaimer: str = ""


class RenderMetadata(Wire):
    startedDate: float | None = None  # milliseconds since the epoch
    totalChunks: int | None = None
    compositionId: str | None = None
    codec: str | None = None
    frameRange: tuple[int, int] | None = None


class EncodingStatus(Wire):
    framesEncoded: int = 0


class RenderProgress(Wire):
    overallProgress: float = Field(0.0, ge=0, le=1)
    chunks: int = 0
    done: bool = False
    encodingStatus: EncodingStatus | None = None
    renderId: str | None = None
    renderMetadata: RenderMetadata | None = None
    bucket: str | None = None
    outputFile: str | None = None
    outKey: str | None = None
    outBucket: str | None = None
    timeToFinish: float | None = None
    errors: list[RenderErrorInfo] = Field(default_factory=list)
    fatalErrorEncountered: bool = False
    currentTime: float | None = None
    renderSize: int | None = None
    outputSizeInBytes: int | None = None
    lambdasInvoked: int = 0
    framesRendered: int | None = None
    costs: Costs = Field(default_factory=Costs)

    @property
    def cancelled(self) -> bool:
        return any(e.name == CANCELLED_ERROR for e in self.errors)

    def fatal_error(self) -> RenderErrorInfo | None:
        """The error that ended the render: the first one marked fatal, else the last reported."""
        if not self.fatalErrorEncountered:
            return None
        fatal = [e for e in self.errors if e.isFatal]
        return fatal[0] if fatal else (self.errors[-1] if self.errors else RenderErrorInfo(message="unknown error"))


class ErrorReply(Wire):
    """What the function answers in place of a result when it refuses a payload."""

    type: Literal["error"]
    message: str = ""
    stack: str | None = None
