"""The engine's data: what planning hands to chunk workers and to the join.

Everything here is JSON-serialisable (a `ChunkSpec` is stored as a JSON string in
DynamoDB and read back by another Lambda container), so it holds S3 locations,
never local paths, and integer frame and sample counts, never float seconds
that would drift when summed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from render_service.engines.ffmpeg.titles import TitleLayout
from render_service.fonts import DEFAULT_FAMILY, FontFamily
from render_service.models.timeline import Fit, Position, TextAnimation

SAMPLE_RATE = 48_000
"""Every chunk's audio and the final AAC track use this rate, stereo."""


class EngineModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRef(EngineModel):
    """A probed input, as a chunk worker finds it in S3."""

    bucket: str
    key: str
    etag: str | None = Field(None, description="Pins the object version read at planning time.")
    size_bytes: int
    ext: str = Field(description="File suffix for the local copy, e.g. '.mp4'.")
    demuxer: str = Field(description="ffmpeg demuxer found by probing; forced with -f at render time.")
    has_audio: bool


class Encoding(EngineModel):
    """Encoder settings shared by every chunk of one render, so their streams concatenate cleanly."""

    crf: int
    preset: str
    profile: str = "high"
    gop: int = Field(description="Maximum keyframe interval in frames.")
    audio_bitrate: str


class TransitionIn(EngineModel):
    type: str
    frames: int = Field(gt=0, description="Overlap with the previous segment in the same chunk.")
    samples: int = Field(gt=0)


class Segment(EngineModel):
    """One scene's share of one chunk."""

    scene: int
    kind: Literal["clip", "title", "image"]
    frames: int = Field(gt=0)
    samples: int = Field(gt=0)
    transition_in: TransitionIn | None = None
    source: int | None = Field(None, description="Index into ChunkSpec.sources.")
    start_seconds: float = Field(0.0, description="Clip: input seek position in the source.")
    preroll_frames: int = Field(0, ge=0, description="Clip: frames decoded after the seek and dropped.")
    preroll_samples: int = Field(0, ge=0, description="Clip: audio samples after the seek that are dropped.")
    fit: Fit = Fit.cover
    volume: float = 1.0
    muted: bool = False
    text: str | None = None
    color: str | None = None
    background: str | None = None
    font_size: int | None = Field(None, description="The request's fontSize: pixels on a 1080-pixel short side.")
    position: Position = Position.center
    font_family: FontFamily = DEFAULT_FAMILY
    title: TitleLayout | None = Field(None, description="Title: the lines as laid out once for the whole scene.")
    animation: TextAnimation = "none"
    animation_frames: int = Field(0, ge=0, description="Title: frames of the scene the entrance takes.")
    offset_frames: int = Field(0, ge=0, description="Frames of the scene before this piece (a split title).")


class ChunkSpec(EngineModel):
    render_id: str
    render_attempt: int = Field(1, ge=1, description="The render's attempt this chunk belongs to.")
    index: int
    frames: int = Field(gt=0, description="Exact number of video frames this chunk produces.")
    start_frame: int = Field(ge=0, description="Position of the chunk's first frame in the output.")
    samples: int = Field(gt=0, description="Exact number of audio samples (48 kHz) this chunk produces.")
    mode: Literal["copy", "encode"]
    width: int
    height: int
    fps: int
    encoding: Encoding
    segments: list[Segment]
    sources: list[SourceRef]
    video_only: bool = Field(False, description="No audio: the plan's audio track is encoded apart (RenderPlan.audio).")


class AudioPiece(EngineModel):
    """The AAC packets a remux copies from one clip (audio_copy.py)."""

    first: int = Field(ge=0, description="Index of the clip's first packet taken (0 is its encoder priming).")
    count: int = Field(gt=0)
    offset_samples: int = Field(description="How late the clip's sound plays against its picture (48 kHz samples).")


class SoundtrackSpec(EngineModel):
    source: SourceRef
    volume: float
    fade_out_seconds: float
    duration_seconds: float | None = Field(None, gt=0, description="The soundtrack's own length: how often to loop it.")


class RenderPlan(EngineModel):
    render_id: str
    chunks: list[ChunkSpec]
    duration_seconds: float
    total_frames: int
    total_samples: int
    width: int
    height: int
    fps: int
    encoding: Encoding
    soundtrack: SoundtrackSpec | None = None
    staged_keys: list[str] = Field(
        default_factory=list, description="Objects written under work/<renderId>/ by planning (https sources)."
    )
    remux: bool = Field(
        False,
        description="Every scene is a whole source copied as it is: StartRender remuxes straight from the "
        "sources it fetched and no chunk worker runs (plan.py).",
    )
    audio_copy: list[AudioPiece] | None = Field(
        None, description="A remux whose clips share one AAC format: the packets copied from each (audio_copy.py)."
    )
    audio: ChunkSpec | None = Field(
        None,
        description="The whole timeline as one piece, for its sound only: StartRender encodes it to AAC once, "
        "while the video-only chunks render, and the join copies it (audio_track.py).",
    )

    @property
    def inline(self) -> bool:
        """Rendered inside StartRender from the sources it fetched: a remux, or a single chunk, where
        chunk workers would add S3 round trips and a poll wait and no parallelism."""
        return self.remux or len(self.chunks) == 1

    @property
    def encode_chunks(self) -> int:
        return sum(1 for c in self.chunks if c.mode == "encode")


class MediaInfo(BaseModel):
    duration_seconds: float
    size_bytes: int
    width: int
    height: int
    fps: float
    video_codec: str
    audio_codec: str | None


class StillKeys(BaseModel):
    """Where a render's poster and thumbnail live (beside its MP4, see `storage.py`)."""

    poster: str
    thumbnail: str


class JoinedOutput(MediaInfo):
    """The joined output's probe, and its stills (None when not asked for, or they could not be made)."""

    stills: StillKeys | None = None
