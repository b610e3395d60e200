"""The built-in ffmpeg engine: plan a timeline, render chunks in parallel, join them by stream copy.

The workflow calls these, one per step:

- `prepare_render` (StartRender): fetch and probe each source once, refuse what is not
  allowed, lay the timeline out in frames and cut it into `ChunkSpec`s; `Prepared.stage`
  puts the sources where chunk workers read them.
- `render_inline` (StartRender, for a plan that needs no worker: a remux or a single chunk):
  the output straight from the sources just fetched.
- `render_chunk` (chunk worker): one ffmpeg run per chunk, progress in frames.
- `encode_audio_track` (StartRender, after dispatching the chunks): the timeline's sound.
- `join_chunks` (FinalizeRender): concat the chunks' video by stream copy beside the audio
  track, upload the MP4 and probe it, and make its poster and thumbnail
  (`stills.py`, engine-agnostic: it reads any local MP4).
- `planned_commands`: every ffmpeg argv a plan implies (tests, benchmarks, ops).

Audio strategy: the whole timeline's sound is one piece (`RenderPlan.audio`), which
StartRender encodes to AAC in one pass, soundtrack mixed in, while the chunks render
video only (`audio_track.py`); the join copies both. AAC in every chunk would put
encoder priming and 1024-sample frame padding at every boundary: clicks, and a drift
of up to ~21 ms per chunk that the concat demuxer cannot remove. Each scene's sound
is exactly its frames' span in samples (48 kHz stereo, derived from frame positions).
A single chunk rendered inline carries its own AAC; a plan without an audio piece (one
planned before it existed) still has chunks with PCM, encoded at the join.

Quality ladder, smart copy and input hardening: see `commands.py` and `plan.py`.
"""

from __future__ import annotations

from render_service.engines.ffmpeg.audio_track import encode_audio_track
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
    "encode_audio_track",
    "join_chunks",
    "plan_render",
    "planned_commands",
    "prepare_render",
    "probe",
    "render_chunk",
    "render_inline",
]
