"""The remotion branch of the render request: a composition on the app team's own Remotion Lambda.

The fields map onto Remotion's renderMediaOnLambda() options (composition, inputProps, codec,
crf, framesPerLambda, concurrency; forceWidth/forceHeight/forceFps/forceDurationInFrames pin the
output to what was priced). Shape and bounds are checked here; the per-kind limits of the
product plans are checked at submission (`logic/pricing.py`), so each refusal names its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from render_service.models.notifications import DESTINATION_NAME, Notify, Webhook
from render_service.models.timeline import ApiModel, Subject

MAX_LONG_SIDE, MAX_SHORT_SIDE = 1920, 1080
# Remotion: framesPerLambda must be at least 4, and concurrency at most 200.
MIN_FRAMES_PER_LAMBDA, MAX_CONCURRENCY = 4, 200


class RemotionKind(StrEnum):
    clip = "clip"
    movie = "movie"


@dataclass(frozen=True)
class KindLimits:
    """From the product plans: what one render of a kind may ask for, and how it is watched."""

    max_seconds: float
    max_scenes: int | None  # entries of inputProps.scenes
    render_timeout_seconds: int  # from Remotion's own start of the render
    poll_seconds: int


KIND_LIMITS = {
    RemotionKind.clip: KindLimits(max_seconds=20, max_scenes=None, render_timeout_seconds=60, poll_seconds=2),
    RemotionKind.movie: KindLimits(max_seconds=120, max_scenes=20, render_timeout_seconds=240, poll_seconds=3),
}


class RemotionOutput(ApiModel):
    # The rule across width and height, in the document too (JSON Schema has no "min of two
    # fields"): one side of at most 1080, where an absent width is 1920 and an absent height 1080.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["width"], "properties": {"width": {"maximum": MAX_SHORT_SIDE}}},
                {"properties": {"height": {"maximum": MAX_SHORT_SIDE}}},
            ]
        }
    )

    codec: Literal["h264"] = Field("h264", description="Remotion's `codec`; the output is an MP4.")
    crf: int | None = Field(None, ge=1, le=51, description="Remotion's `crf` for h264 (1-51); absent: its default.")
    # Even, as H.264 4:2:0 needs.
    width: int = Field(
        1920, ge=16, le=MAX_LONG_SIDE, multiple_of=2, description="Even; the long side at most 1920, the short 1080."
    )
    height: int = Field(1080, ge=16, le=MAX_LONG_SIDE, multiple_of=2, description="Even; see width.")

    @model_validator(mode="after")
    def _fits(self) -> RemotionOutput:
        if min(self.width, self.height) > MAX_SHORT_SIDE:
            raise ValueError(f"output: {self.width}x{self.height} is larger than 1920x1080 (or 1080x1920)")
        return self


class RemotionRequest(ApiModel):
    # framesPerLambda and concurrency exclude each other; the document says so as well.
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["framesPerLambda", "concurrency"],
                "properties": {"framesPerLambda": {"type": "integer"}, "concurrency": {"type": "integer"}},
            }
        }
    )

    engine: Literal["remotion"]
    subject: Subject | None = None
    webhook: Webhook | None = None
    notify: Notify | None = None
    deliverTo: str | None = Field(
        None, pattern=DESTINATION_NAME, description="Copy the output to this destination of the deployment."
    )
    kind: RemotionKind = Field(description="`clip`: at most 20 s. `movie`: at most 120 s and 20 inputProps.scenes.")
    composition: str = Field(
        min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$", description="The composition id in your site."
    )
    inputProps: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the composition as is; large props travel through S3."
    )
    durationInFrames: int = Field(ge=1, le=7200, description="Frames rendered (Remotion's forceDurationInFrames).")
    fps: int = Field(30, ge=1, le=60)
    output: RemotionOutput = Field(default_factory=RemotionOutput)
    framesPerLambda: int | None = Field(None, ge=MIN_FRAMES_PER_LAMBDA, le=7200)
    concurrency: int | None = Field(None, ge=1, le=MAX_CONCURRENCY, description="Instead of framesPerLambda.")

    @model_validator(mode="after")
    def _one_split(self) -> RemotionRequest:
        if self.framesPerLambda is not None and self.concurrency is not None:
            raise ValueError("framesPerLambda and concurrency: give at most one (Remotion refuses both)")
        return self

    @property
    def limits(self) -> KindLimits:
        return KIND_LIMITS[self.kind]

    @property
    def seconds(self) -> float:
        return self.durationInFrames / self.fps
