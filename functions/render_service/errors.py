"""Domain errors.

The API maps each class to one status code (see `api/errors.py`). Step Functions
Retry and Catch match on these class names, because Lambda reports the raised
class name as the error type, so renaming a class is a workflow change too.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base for every error the service expects and explains."""

    code = "INTERNAL"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# --- refusals at the API --------------------------------------------------------------


class Unauthorized(ServiceError):
    code = "UNAUTHORIZED"


class Forbidden(ServiceError):
    """Authenticated, but not allowed: an operator route called by someone outside the admins group."""

    code = "FORBIDDEN"


class RenderNotFound(ServiceError):
    code = "NOT_FOUND"


class InvalidRequest(ServiceError):
    code = "INVALID_REQUEST"


class PayloadTooLarge(ServiceError):
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(ServiceError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class TooManyQueued(RateLimited):
    code = "TOO_MANY_QUEUED"


class InsufficientCredits(ServiceError):
    code = "INSUFFICIENT_CREDITS"


class RenderAlreadyFinished(ServiceError):
    """A transition was refused because the render already reached a terminal state."""

    code = "RENDER_ALREADY_FINISHED"


class RenderNotComplete(ServiceError):
    code = "RENDER_NOT_COMPLETE"


class OutputGone(ServiceError):
    code = "OUTPUT_GONE"


class IdempotencyConflict(ServiceError):
    code = "IDEMPOTENCY_CONFLICT"


class ServiceBusy(ServiceError):
    """Too many concurrent writes to the same items (DynamoDB transaction conflicts); retry shortly."""

    code = "BUSY"

    def __init__(self, message: str, *, retry_after: int = 1, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class EngineNotConfigured(ServiceError):
    """The request names an engine this deployment has not been configured for (remotion without a function)."""

    code = "ENGINE_NOT_CONFIGURED"


class SubmissionFailed(ServiceError):
    """The workflow could not be started; the admission was rolled back."""

    code = "SUBMISSION_FAILED"
    retry_after = 1  # nothing was charged: a retry (with the same Idempotency-Key) is safe


# --- failures inside a render (they become the job's `error.code`) --------------------


class RenderFailure(ServiceError):
    """A render's attempt failed, for the reason its code names.

    `transient`: another attempt of the whole render may succeed (the workflow retries it, see
    `lifecycle.classify`); otherwise retrying the same input would fail the same way.
    `safer`: ffmpeg itself failed, so the next attempt uses safer settings (no smart copy, the
    next lower quality).
    """

    code = "RENDER_FAILED"
    transient = False
    safer = False


class SourceNotAllowed(RenderFailure):
    code = "SOURCE_NOT_ALLOWED"


class SourceUnavailable(RenderFailure):
    code = "SOURCE_UNAVAILABLE"


class SourceTemporarilyUnavailable(SourceUnavailable):
    """The source timed out, was cut off, or its server answered 5xx/408/429: it may work later."""

    transient = True


class SourceInvalid(RenderFailure):
    code = "SOURCE_INVALID"


class SourceTooLarge(RenderFailure):
    code = "SOURCE_TOO_LARGE"


class MediaTooLarge(RenderFailure):
    """A source is beyond a media bound (pixels, duration, packets); permanent, the message names the scene."""

    code = "MEDIA_TOO_LARGE"


class RenderTooLong(RenderFailure):
    code = "RENDER_TOO_LONG"


class EncodeFailed(RenderFailure):
    code = "ENCODE_FAILED"
    transient = True
    safer = True


class EncodeTimedOut(RenderFailure):
    code = "ENCODE_TIMED_OUT"
    transient = True
    safer = True


class ResourceLimitExceeded(RenderFailure):
    """An ffmpeg run hit its OS memory or CPU budget (`engines/ffmpeg/limits.py`).

    Permanent: the budget is sized for any input within the media bounds, so the same input
    would hit it again.
    """

    code = "RESOURCE_LIMIT_EXCEEDED"


class ChunkFailed(RenderFailure):
    """A chunk used up its own attempts (crashed, stalled or never picked up)."""

    code = "CHUNK_FAILED"
    transient = True
    safer = True


class RemotionRefused(RenderFailure):
    """The Remotion function answered with an error (wrong version, unknown composition, bad payload)."""

    code = "REMOTION_REFUSED"


class RemotionRenderFailed(RenderFailure):
    """Remotion reported a fatal error; the message is Remotion's, its stack is logged for ops."""

    code = "REMOTION_FAILED"


class RemotionTimedOut(RenderFailure):
    code = "RENDER_TIMED_OUT"


class RemotionUnavailable(Exception):
    """Transient: the Remotion function could not be reached (throttled, timed out); retried."""


class RenderCancelled(Exception):
    """The render ended (cancelled) while a step ran ffmpeg for it; the run was stopped.

    Not a failure: the render already has its ending, so whatever handles this only drops
    the work (its execution is stopped, or the next step finds the render ended).
    """


class RenderNotReady(Exception):
    """Transient: the state the step needs is not there yet; Step Functions retries it."""


def permanent_failure(code: str, message: str) -> RenderFailure | None:
    """The permanent RenderFailure whose code this is, to raise again where a chunk worker's
    failure is read back from its item; None for a code that another attempt may get past."""
    pending: list[type[RenderFailure]] = [RenderFailure]
    while pending:
        kind = pending.pop(0)
        if kind.code == code and not kind.transient:
            return kind(message)
        pending += kind.__subclasses__()
    return None
