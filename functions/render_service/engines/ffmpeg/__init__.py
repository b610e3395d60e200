"""The built-in ffmpeg engine: plan a timeline, render chunks in parallel, join them by stream copy.

The workflow calls these, one per step:

- `prepare_render` (StartRender): fetch and probe each source once, refuse what is not
  allowed, lay the timeline out in frames and cut it into `ChunkSpec`s; `Prepared.stage`
  puts the sources where chunk workers read them.
- `render_inline` (StartRender, for a plan that needs no worker: a remux or a single chunk):
  the output straight from the sources just fetched.
- `render_chunk` (chunk worker): one ffmpeg run per chunk, progress in frames.
- `join_chunks` (FinalizeRender): concat the chunks' video by stream copy, mix and
  encode the audio once, upload the MP4 and probe it, and make its poster and thumbnail
  (`stills.py`, engine-agnostic: it reads any local MP4).
- `planned_commands`: every ffmpeg argv a plan implies (tests, benchmarks, ops).

Audio strategy: chunks carry H.264 video plus *PCM* audio, exactly `samples`
long (48 kHz stereo, derived from frame positions). The join copies the video
and encodes the whole audio track to AAC in one pass, mixing the soundtrack in.
AAC in every chunk would put encoder priming and 1024-sample frame padding at
every boundary: clicks, and a drift of up to ~21 ms per chunk that the concat
demuxer cannot remove. PCM concatenates sample-exactly, audio encoding is about
a hundred times faster than realtime, and the soundtrack (which spans chunk
boundaries) is mixed where the whole timeline is visible anyway.

Quality ladder, smart copy and input hardening: see `commands.py` and `plan.py`.
"""

from __future__ import annotations

from render_service.engines.ffmpeg.chunk import chunk_key, render_chunk
from render_service.engines.ffmpeg.commands import planned_commands
from render_service.engines.ffmpeg.join import join_chunks, render_inline
from render_service.engines.ffmpeg.models import (
    ChunkSpec,
    Encoding,
    JoinedOutput,
    MediaInfo,
    RenderPlan,
    Segment,
    SoundtrackSpec,
    SourceRef,
    StillKeys,
)
from render_service.engines.ffmpeg.plan import DEFAULT_CHUNK_SECONDS
from render_service.engines.ffmpeg.prepare import Prepared, plan_render, prepare_render
from render_service.engines.ffmpeg.probe import probe

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "ChunkSpec",
    "Encoding",
    "JoinedOutput",
    "MediaInfo",
    "Prepared",
    "RenderPlan",
    "Segment",
    "SoundtrackSpec",
    "SourceRef",
    "StillKeys",
    "chunk_key",
    "join_chunks",
    "plan_render",
    "planned_commands",
    "prepare_render",
    "probe",
    "render_chunk",
    "render_inline",
]
