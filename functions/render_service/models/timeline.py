"""The render request: what the frontend asks for.

These models are the API contract (they generate the OpenAPI document) and the
engine's input. They check shape and bounds only; checks that need the world
(allowed buckets, DNS, probing the media) happen in the logic that owns them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from render_service.fonts import DEFAULT_FAMILY, FontFamily
from render_service.models.notifications import DESTINATION_NAME, Notify, Webhook

MAX_SCENES = 20
MAX_SCENE_SECONDS = 600.0
MAX_TITLE_CHARS = 200
MAX_SRC_CHARS = 2048
# The largest source a render reads, and so the largest upload a ticket is issued for. Per source:
# StartRender's /tmp (infra/constructs/functions.py) is sized to hold one at a time.
MAX_SOURCE_BYTES = 1 << 30

_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")
# The names ffmpeg's colour parser knows (`ffmpeg -colors`), so a typo is a 422, not a failed render.
COLOR_NAMES = frozenset(
    """
    aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet
    brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan
    darkblue darkcyan darkgoldenrod darkgray darkgreen darkkhaki darkmagenta darkolivegreen
    darkorange darkorchid darkred darksalmon darkseagreen darkslateblue darkslategray darkturquoise
    darkviolet deeppink deepskyblue dimgray dodgerblue firebrick floralwhite forestgreen fuchsia
    gainsboro ghostwhite gold goldenrod gray green greenyellow honeydew hotpink indianred indigo
    ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan
    lightgoldenrodyellow lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue
    lightslategray lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine
    mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue mediumspringgreen
    mediumturquoise mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite navy
    oldlace olive olivedrab orange orangered orchid palegoldenrod palegreen paleturquoise
    palevioletred papayawhip peachpuff peru pink plum powderblue purple red rosybrown royalblue
    saddlebrown salmon sandybrown seagreen seashell sienna silver skyblue slateblue slategray snow
    springgreen steelblue tan teal thistle tomato turquoise violet wheat white whitesmoke yellow
    yellowgreen
    """.split()
)


class ApiModel(BaseModel):
    """Unknown fields are refused, so a typo is a 422 and not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid")


class Fit(StrEnum):
    cover = "cover"
    contain = "contain"
    stretch = "stretch"


class Position(StrEnum):
    center = "center"  # type: ignore[assignment]  # shadows str.center; the wire value is what matters
    top = "top"
    bottom = "bottom"


# The text animations the ffmpeg engine draws (engines/ffmpeg/titles.py), as Remotion's TextAnimation names them.
TextAnimation = Literal["none", "fade-in", "typewriter", "slide-up", "scale"]

# A subset of ffmpeg's xfade transitions that read well in product UIs.
TransitionType = Literal[
    "none", "fade", "fadeblack", "fadewhite", "dissolve", "wipeleft", "wiperight",
    "wipeup", "wipedown", "slideleft", "slideright", "slideup", "slidedown",
    "circleopen", "circleclose", "radial", "smoothleft", "smoothright", "zoomin",
]  # fmt: skip


# The shape of a source, as the document states it (the same regex checks it here). Which buckets
# and hosts may be read is policy, checked at submit (logic/pricing.py, urls.py).
SRC_PATTERN = r"^(s3://[^/]+/[\s\S]+|https://[\s\S]+)$"


def _check_src(value: str) -> str:
    if len(value) > MAX_SRC_CHARS:
        raise ValueError(f"must be at most {MAX_SRC_CHARS} characters")
    if re.search(SRC_PATTERN, value):
        return value
    if value.startswith("s3://"):
        raise ValueError("must be s3://<bucket>/<key>")
    raise ValueError("must be an s3:// or https:// URL")


Src = Annotated[
    str,
    AfterValidator(_check_src),
    Field(
        description="`s3://bucket/key` in an allowed bucket, or a public `https://` URL.",
        json_schema_extra={"pattern": SRC_PATTERN, "maxLength": MAX_SRC_CHARS},
    ),
]


def _check_color(value: str) -> str:
    if _HEX_COLOR.match(value) or value.lower() in COLOR_NAMES:
        return value
    raise ValueError("must be #rrggbb, #rrggbbaa or a colour name such as white or navy")


Color = Annotated[
    str,
    AfterValidator(_check_color),
    # The document lists the names (as ffmpeg spells them), so generated clients know what is accepted;
    # the API also takes them in any case (`Navy`), as ffmpeg does.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _HEX_COLOR.pattern},
                {"type": "string", "enum": sorted(COLOR_NAMES)},
            ],
            "description": "`#rrggbb`, `#rrggbbaa` or a colour name.",
        }
    ),
]


class Transition(ApiModel):
    type: TransitionType = "fade"
    duration: float = Field(0.5, gt=0, le=5, description="Seconds of overlap with the previous scene.")


class SceneBase(ApiModel):
    transition: Transition | None = Field(
        None, description="How this scene enters from the previous one; ignored on the first scene."
    )


class ClipScene(SceneBase):
    type: Literal["clip"]
    src: Src
    trimStart: float = Field(0.0, ge=0, le=86400, description="Seconds skipped at the start of the source.")
    duration: float | None = Field(
        None, gt=0, le=MAX_SCENE_SECONDS, description="Seconds used; absent means to the end of the source."
    )
    volume: float = Field(1.0, ge=0, le=2)
    muted: bool = Field(False, description="Drop the clip's own audio (silence keeps audio and video aligned).")
    fit: Fit = Fit.cover


class TitleScene(SceneBase):
    type: Literal["title"]
    text: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    duration: float = Field(3.0, gt=0, le=60)
    color: Color = "white"
    background: Color = "black"
    fontSize: int = Field(72, ge=8, le=400, description="Pixels on a 1080-pixel short side; long text shrinks to fit.")
    fontFamily: FontFamily = Field(DEFAULT_FAMILY, description="One of the bundled open fonts.")
    position: Position = Position.center
    animation: TextAnimation = Field("none", description="How the text enters; the rest of the scene it stays put.")


class ImageScene(SceneBase):
    type: Literal["image"]
    src: Src
    duration: float = Field(3.0, gt=0, le=60)
    fit: Fit = Fit.cover


Scene = Annotated[ClipScene | TitleScene | ImageScene, Field(discriminator="type")]


class Soundtrack(ApiModel):
    src: Src
    volume: float = Field(1.0, ge=0, le=2)
    fadeOut: float = Field(0.0, ge=0, le=30, description="Seconds of fade at the end of the video.")


class Timeline(ApiModel):
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)
    soundtrack: Soundtrack | None = None

    @model_validator(mode="after")
    def _transitions_fit(self) -> Timeline:
        for index, scene in enumerate(self.scenes):
            t = scene.transition
            if index == 0 or t is None or t.type == "none":
                continue
            declared = [s.duration for s in (self.scenes[index - 1], scene)]
            if any(d is not None and t.duration >= d for d in declared):
                raise ValueError(f"scenes[{index}].transition.duration must be shorter than both scenes it joins")
        return self


class Resolution(StrEnum):
    r720p = "720p"
    r1080p = "1080p"
    r1440p = "1440p"
    r4k = "4k"


class AspectRatio(StrEnum):
    landscape = "16:9"
    portrait = "9:16"
    square = "1:1"
    vertical = "4:5"


class Quality(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


# Short side in pixels; the long side follows from the aspect ratio.
SHORT_SIDE = {Resolution.r720p: 720, Resolution.r1080p: 1080, Resolution.r1440p: 1440, Resolution.r4k: 2160}
HIGH_RESOLUTIONS = frozenset({Resolution.r1440p, Resolution.r4k})


class Output(ApiModel):
    resolution: Resolution = Resolution.r1080p
    aspectRatio: AspectRatio = AspectRatio.landscape
    fps: int = Field(30, ge=24, le=60)
    quality: Quality = Quality.medium

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), both even, as H.264 yuv420p requires."""
        short = SHORT_SIDE[self.resolution]
        w_ratio, h_ratio = (int(x) for x in self.aspectRatio.value.split(":"))
        if w_ratio >= h_ratio:
            return _even(short * w_ratio / h_ratio), short
        return short, _even(short * h_ratio / w_ratio)


def _even(x: float) -> int:
    return round(x / 2) * 2


class SubjectType(StrEnum):
    movie = "movie"
    generation = "generation"
    clip = "clip"


class Subject(ApiModel):
    type: SubjectType
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")

    @property
    def key(self) -> str:
        return f"{self.type.value}#{self.id}"


class RenderRequest(ApiModel):
    engine: Literal["ffmpeg"] = "ffmpeg"
    subject: Subject | None = None
    webhook: Webhook | None = None
    notify: Notify | None = None
    deliverTo: str | None = Field(
        None, pattern=DESTINATION_NAME, description="Copy the output to this destination of the deployment."
    )
    timeline: Timeline
    output: Output = Field(default_factory=Output)
