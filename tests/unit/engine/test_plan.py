"""Pure planning: frame layout, chunk windows, audio sample bookkeeping, smart-copy eligibility, limits."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest

from render_service import errors
from render_service.engines.ffmpeg.models import RenderPlan
from render_service.engines.ffmpeg.plan import build_plan, sample_at
from render_service.engines.ffmpeg.probe import AudioPackets, AudioStream


def plan_of(*args: Any, **kwargs: Any) -> RenderPlan:
    """The planner, our encoder's video configuration being the fake clips' (see fake_clip)."""
    return build_plan(*args, encoder_config=lambda: "ours", **kwargs)


def _scenes_with_transitions() -> list[dict[str, Any]]:
    return [
        {"type": "clip", "src": "s3://media/a.mp4"},
        {"type": "clip", "src": "s3://media/b.mp4", "transition": {"type": "fade", "duration": 0.5}},
        {"type": "title", "text": "hi", "duration": 2.0},
        {
            "type": "image",
            "src": "s3://media/c.png",
            "duration": 1.5,
            "transition": {"type": "wipeleft", "duration": 1},
        },
        {"type": "clip", "src": "s3://media/a.mp4", "trimStart": 0.2, "duration": 1.3},
    ]


@pytest.fixture
def sources(clip: Any, image: Any) -> dict[str, Any]:
    return {
        "s3://media/a.mp4": clip(seconds=3.0, size=(320, 180), key="a.mp4"),
        "s3://media/b.mp4": clip(seconds=2.0, size=(320, 180), key="b.mp4"),
        "s3://media/c.png": image(),
    }


def _check_invariants(plan: RenderPlan) -> None:
    assert sum(c.frames for c in plan.chunks) == plan.total_frames
    assert sum(c.samples for c in plan.chunks) == plan.total_samples == sample_at(plan.total_frames, plan.fps)
    position = 0
    for chunk in plan.chunks:
        assert chunk.start_frame == position
        position += chunk.frames
        overlap_frames = sum(s.transition_in.frames for s in chunk.segments if s.transition_in)
        overlap_samples = sum(s.transition_in.samples for s in chunk.segments if s.transition_in)
        assert sum(s.frames for s in chunk.segments) - overlap_frames == chunk.frames
        assert sum(s.samples for s in chunk.segments) - overlap_samples == chunk.samples
        assert chunk.segments[0].transition_in is None
        for seg in chunk.segments:
            if seg.transition_in:
                assert seg.transition_in.frames <= seg.frames


def test_layout_subtracts_transition_overlaps(request_of: Any, sources: dict[str, Any]) -> None:
    plan = plan_of("r1", request_of(_scenes_with_transitions()), sources)

    # 3 s + 2 s - 0.5 s + 2 s + 1.5 s - 1 s + 1.3 s
    assert plan.total_frames == 90 + 60 - 15 + 60 + 45 - 30 + 39
    assert plan.duration_seconds == pytest.approx(plan.total_frames / 30)
    assert (plan.width, plan.height, plan.fps) == (1280, 720, 30)
    _check_invariants(plan)


@pytest.mark.parametrize("chunk_seconds", [0.001, 0.04, 0.05, 0.3, 0.5, 1.0, 2.0, 3.3, 5.0, 60.0])
def test_any_chunk_size_keeps_frames_samples_and_crossfades_whole(
    request_of: Any, sources: dict[str, Any], chunk_seconds: float
) -> None:
    plan = plan_of("r1", request_of(_scenes_with_transitions()), sources, chunk_seconds=chunk_seconds)

    _check_invariants(plan)
    # Where a crossfade starts, its chunk also holds the previous scene's tail.
    for chunk in plan.chunks:
        for before, seg in zip(chunk.segments, chunk.segments[1:], strict=False):
            if seg.transition_in:
                assert before.scene == seg.scene - 1
                assert before.frames >= seg.transition_in.frames


def test_fps_that_does_not_divide_48000_has_no_audio_drift(request_of: Any, sources: dict[str, Any]) -> None:
    plan = plan_of("r1", request_of(_scenes_with_transitions(), fps=29), sources, chunk_seconds=0.7)

    _check_invariants(plan)
    assert plan.total_samples == round(plan.total_frames * 48000 / 29)


def test_chunks_prefer_scene_boundaries(request_of: Any, clip: Any) -> None:
    sources = {f"s3://media/{n}.mp4": clip(seconds=10.0, size=(320, 180)) for n in range(4)}
    scenes = [{"type": "clip", "src": src} for src in sources]
    plan = plan_of("r1", request_of(scenes), sources, chunk_seconds=15)

    assert {c.start_frame for c in plan.chunks} <= {0, 300, 600, 900}
    assert len(plan.chunks) >= 2


def test_a_long_scene_is_split_and_each_piece_seeks_into_the_source(request_of: Any, clip: Any) -> None:
    sources = {"s3://media/long.mp4": clip(seconds=70.0, size=(320, 180))}
    scenes = [{"type": "clip", "src": "s3://media/long.mp4", "trimStart": 4.0, "duration": 60.0}]
    plan = plan_of("r1", request_of(scenes), sources, chunk_seconds=15)

    assert [c.frames for c in plan.chunks] == [450, 450, 450, 450]
    pieces = [c.segments[0] for c in plan.chunks]
    # Each piece seeks half a second early (pre-roll it decodes and drops), on the scene's frame grid.
    assert [p.start_seconds + p.preroll_frames / 30 for p in pieces] == pytest.approx([4.0, 19.0, 34.0, 49.0])
    assert [p.preroll_frames for p in pieces] == [0, 15, 15, 15]
    assert [p.preroll_samples for p in pieces] == [0, 24000, 24000, 24000]
    assert all(c.mode == "encode" for c in plan.chunks)


def test_matching_keyframe_aligned_clips_are_copied(request_of: Any, clip: Any) -> None:
    sources = {"s3://media/hd.mp4": clip(seconds=4.0)}
    scenes = [
        {"type": "clip", "src": "s3://media/hd.mp4"},
        {"type": "clip", "src": "s3://media/hd.mp4", "trimStart": 1.0, "duration": 2.0},
        {"type": "clip", "src": "s3://media/hd.mp4", "trimStart": 3.0},
    ]
    plan = plan_of("r1", request_of(scenes), sources)

    assert [c.mode for c in plan.chunks] == ["copy", "copy", "copy"]
    assert [c.frames for c in plan.chunks] == [120, 60, 30]
    assert [c.segments[0].start_seconds for c in plan.chunks] == pytest.approx([0.0, 1.0, 3.0], abs=2e-6)
    _check_invariants(plan)


@pytest.mark.parametrize(
    ("source", "scene"),
    [
        ({}, {"trimStart": 0.5}),  # starts between keyframes
        ({}, {"duration": 1.5}),  # ends between keyframes
        ({"fps": 25}, {}),  # other frame rate
        ({"size": (1920, 1080)}, {}),  # other size
        ({"codec": "hevc"}, {}),
        ({"pix_fmt": "yuv422p"}, {}),
        ({"open_gop": True}, {"trimStart": 1.0}),  # the cut would need the previous GOP
    ],
)
def test_clips_that_do_not_match_are_encoded(
    request_of: Any, clip: Any, source: dict[str, Any], scene: dict[str, Any]
) -> None:
    sources = {"s3://media/x.mp4": clip(seconds=4.0, **source)}
    plan = plan_of("r1", request_of([{"type": "clip", "src": "s3://media/x.mp4", **scene}]), sources)

    assert [c.mode for c in plan.chunks] == ["encode"] * len(plan.chunks)


def test_a_transition_on_either_side_prevents_copy(request_of: Any, clip: Any) -> None:
    sources = {"s3://media/hd.mp4": clip(seconds=2.0)}
    fade = {"type": "fade", "duration": 0.5}
    scenes = [
        {"type": "clip", "src": "s3://media/hd.mp4"},
        {"type": "clip", "src": "s3://media/hd.mp4", "transition": fade},
        {"type": "clip", "src": "s3://media/hd.mp4"},
    ]
    plan = plan_of("r1", request_of(scenes), sources, chunk_seconds=100)

    assert [c.mode for c in plan.chunks] == ["encode", "copy"]


def test_timeline_longer_than_ten_minutes_is_refused(request_of: Any) -> None:
    scenes = [{"type": "title", "text": str(n), "duration": 60} for n in range(11)]
    with pytest.raises(errors.RenderTooLong, match="660"):
        plan_of("r1", request_of(scenes), {})


def test_exactly_ten_minutes_is_allowed(request_of: Any) -> None:
    scenes = [{"type": "title", "text": str(n), "duration": 60} for n in range(10)]
    assert plan_of("r1", request_of(scenes), {}, chunk_seconds=60).duration_seconds == 600


def test_clip_subjects_are_limited_to_twenty_seconds(request_of: Any) -> None:
    req = request_of([{"type": "title", "text": "x", "duration": 25}], subject={"type": "clip", "id": "c1"})
    with pytest.raises(errors.RenderTooLong, match="20 s"):
        plan_of("r1", req, {})


def test_trim_past_the_end_names_the_scene(request_of: Any, clip: Any) -> None:
    sources = {"s3://media/x.mp4": clip(seconds=2.0)}
    scenes = [{"type": "title", "text": "x"}, {"type": "clip", "src": "s3://media/x.mp4", "trimStart": 5}]
    with pytest.raises(errors.SourceInvalid, match=r"scenes\[1\]\.trimStart"):
        plan_of("r1", request_of(scenes), sources)


def test_duration_past_the_end_is_cut_at_the_end(request_of: Any, clip: Any) -> None:
    sources = {"s3://media/x.mp4": clip(seconds=2.0, size=(320, 180))}
    plan = plan_of(
        "r1", request_of([{"type": "clip", "src": "s3://media/x.mp4", "trimStart": 1, "duration": 9}]), sources
    )

    assert plan.total_frames == 30


def test_transition_longer_than_a_to_the_end_clip_is_refused(request_of: Any, clip: Any) -> None:
    sources = {"s3://media/x.mp4": clip(seconds=2.0)}
    scenes = [
        {"type": "title", "text": "x", "duration": 3},
        {"type": "clip", "src": "s3://media/x.mp4", "trimStart": 1.5, "transition": {"type": "fade", "duration": 1}},
    ]
    with pytest.raises(errors.RenderFailure, match=r"scenes\[1\]\.transition"):
        plan_of("r1", request_of(scenes), sources)


def test_plan_survives_a_json_round_trip(request_of: Any, sources: dict[str, Any]) -> None:
    plan = plan_of("r1", request_of(_scenes_with_transitions()), sources, chunk_seconds=1)

    assert RenderPlan.model_validate_json(plan.model_dump_json()) == plan
    for chunk in plan.chunks:
        assert type(chunk).model_validate_json(chunk.model_dump_json()) == chunk


def test_smart_copy_can_be_switched_off(request_of: Any, clip: Any) -> None:
    sources = {"s3://media/hd.mp4": clip(seconds=2.0)}
    scenes = [{"type": "clip", "src": "s3://media/hd.mp4"}]

    assert plan_of("r1", request_of(scenes), sources).chunks[0].mode == "copy"
    assert plan_of("r1", request_of(scenes), sources, smart_copy=False).chunks[0].mode == "encode"


def test_packets_are_listed_only_around_each_cut_and_windows_that_meet_merge() -> None:
    from render_service.engines.ffmpeg.plan import MAX_OUTPUT_SECONDS
    from render_service.engines.ffmpeg.prepare import cut_windows

    assert cut_windows([(5000.0, 1.0)]) == [(4998.0, 5003.0)]
    assert cut_windows([(0.0, 2.0), (3.0, 1.0), (100.0, 1.0)]) == [(0.0, 6.0), (98.0, 103.0)]
    assert cut_windows([(10.0, None)]) == [(8.0, 10.0 + MAX_OUTPUT_SECONDS + 2.0)]


def test_whole_clips_sharing_one_configuration_remux_whatever_their_profile(request_of: Any, clip: Any) -> None:
    sources = {
        "s3://media/a.mp4": clip(seconds=2.0, profile="Constrained Baseline", config="baseline", key="a.mp4"),
        "s3://media/b.mp4": clip(seconds=3.0, profile="Constrained Baseline", config="baseline", key="b.mp4"),
    }
    scenes = [{"type": "clip", "src": "s3://media/a.mp4"}, {"type": "clip", "src": "s3://media/b.mp4"}]

    plan = plan_of("r1", request_of(scenes), sources)

    assert plan.remux
    assert plan.inline
    assert [c.mode for c in plan.chunks] == ["copy", "copy"]


def test_clips_with_different_configurations_are_never_joined_by_copy(request_of: Any, clip: Any) -> None:
    # One decoder setup (the first picture's parameter sets) would decode both: a copy of either
    # next to the other would play wrong, so only the one that is ours stays a copy.
    sources = {
        "s3://media/a.mp4": clip(seconds=2.0, config="ours", key="a.mp4"),
        "s3://media/b.mp4": clip(seconds=2.0, config="a phone's", key="b.mp4"),
    }
    scenes = [{"type": "clip", "src": "s3://media/a.mp4"}, {"type": "clip", "src": "s3://media/b.mp4"}]

    plan = plan_of("r1", request_of(scenes), sources, chunk_seconds=100)

    assert not plan.remux
    assert [c.mode for c in plan.chunks] == ["copy", "encode"]
    # Next to a title, the phone's clip is encoded even when cut on its keyframes.
    titled = [{"type": "title", "text": "Hi", "duration": 1}, {**scenes[1], "trimStart": 1.0}]
    assert [c.mode for c in plan_of("r1", request_of(titled), sources, chunk_seconds=100).chunks] == ["encode"]
    # Without knowing our encoder's configuration, nothing is copied next to encoded scenes.
    assert [c.mode for c in build_plan("r1", request_of(scenes), sources).chunks] == ["encode"]


def test_a_remux_copies_audio_only_when_every_clip_shares_one_aac_format(request_of: Any, clip: Any) -> None:
    def track(first: int = -1024, seconds: float = 2.0) -> AudioPackets:
        count = round(seconds * 48000 / 1024) + 2
        return AudioPackets(Fraction(1, 48000), first, round(seconds * 48000), count, 1024, True)

    def with_audio(info: Any, audio: AudioPackets | None, config: str = "aac-lc-48k") -> Any:
        packets = replace(info.packets, audio=audio, audio_extradata=config)
        stream = AudioStream(codec="aac", sample_rate=48000, channels="stereo", profile="LC")
        return replace(info, packets=packets, probe=replace(info.probe, audio=stream))

    a, b = clip(seconds=2.0, key="a.mp4"), clip(seconds=2.5, key="b.mp4")
    scenes = [{"type": "clip", "src": "s3://media/a.mp4"}, {"type": "clip", "src": "s3://media/b.mp4"}]

    def plan(second: Any, first: Any = None, muted: bool = False) -> Any:
        req = request_of([scenes[0], {**scenes[1], "muted": muted}])
        return plan_of("r1", req, {"s3://media/a.mp4": first or with_audio(a, track()), "s3://media/b.mp4": second})

    same = plan(with_audio(b, track(seconds=2.5)))
    other = plan(with_audio(b, track(seconds=2.5), "aac-44k"))
    muted = plan(with_audio(b, track(seconds=2.5)), muted=True)

    assert same.remux
    assert same.audio_copy is not None
    assert sum(p.count for p in same.audio_copy) * 1024 == pytest.approx(same.total_samples, abs=512)
    assert other.remux
    assert other.audio_copy is None
    assert muted.remux
    assert muted.audio_copy is None
