"""The argv builders: input hardening, escaping, identical encoder settings, copy without encode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from render_service.engines.ffmpeg import planned_commands
from render_service.engines.ffmpeg.commands import LADDER, concat_list, encoding_for, filter_value
from render_service.engines.ffmpeg.models import RenderPlan
from render_service.engines.ffmpeg.plan import build_plan
from render_service.models.timeline import Quality
from render_service.settings import Settings


def plan_of(*args: Any, **kwargs: Any) -> RenderPlan:
    """The planner, our encoder's video configuration being the fake clips' (see fake_clip)."""
    return build_plan(*args, encoder_config=lambda: "ours", **kwargs)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        table_name="t", bucket_name="svc", work_dir=tmp_path, ffmpeg_path="/opt/bin/ffmpeg", font_dir="/opt/fonts"
    )


def _inputs(argv: list[str]) -> list[int]:
    return [i for i, arg in enumerate(argv) if arg == "-i"]


def test_filter_values_are_escaped_for_both_levels() -> None:
    assert filter_value("/tmp/a:b") == r"/tmp/a\\:b"
    assert filter_value("it's") == r"it\\\'s"
    assert filter_value("a,b;c[d]") == r"a\,b\;c\[d\]"


def test_concat_lists_quote_paths() -> None:
    text = concat_list([Path("/w/it's.mp4"), Path("/w/b.mp4")])
    assert text.splitlines() == ["ffconcat version 1.0", "file '/w/it'\\''s.mp4'", "file '/w/b.mp4'"]


def test_quality_ladder_is_the_documented_one() -> None:
    assert LADDER[Quality.low][:2] == (28, "veryfast")
    assert LADDER[Quality.medium][:2] == (23, "veryfast")
    assert LADDER[Quality.high][:2] == (19, "medium")
    assert encoding_for(Quality.high, 60).gop == 120


def test_every_input_is_a_local_file_behind_the_whitelists(
    request_of: Any, clip: Any, image: Any, settings: Settings
) -> None:
    sources = {"s3://m/a.mp4": clip(size=(320, 180)), "s3://m/i.png": image(), "s3://m/hd.mp4": clip()}
    req = request_of(
        [
            {"type": "clip", "src": "s3://m/a.mp4"},
            {"type": "image", "src": "s3://m/i.png", "transition": {"type": "fade", "duration": 0.5}},
            {"type": "clip", "src": "s3://m/hd.mp4"},
        ]
    )
    plan = plan_of("r1", req, sources, chunk_seconds=1)
    argvs = planned_commands(plan, settings)

    assert {c.mode for c in plan.chunks} == {"copy", "encode"}
    for argv in argvs:
        for i in _inputs(argv):
            assert Path(argv[i + 1]).is_relative_to(settings.work_dir / "r1")
            before = argv[max(0, i - 8) : i]
            assert before[before.index("-protocol_whitelist") + 1] == "file,pipe"
            assert "-f" in before
    audio, join = argvs[-2:]
    assert join[join.index("-f") + 1] == "concat"
    assert "+faststart" in join
    assert join[join.index("-c:v") + 1] == "copy"
    # The audio track was encoded once, beside the chunks (audio_track.py); the join copies it.
    assert join[join.index("-c:a") + 1] == "copy"
    assert audio[audio.index("-c:a") + 1] == "aac"
    assert "-c:v" not in audio
    assert all("-an" in argv for argv in argvs[:-2])  # the chunks: video only


def test_every_encoded_chunk_uses_identical_encoder_settings(request_of: Any, clip: Any, settings: Settings) -> None:
    sources = {"s3://m/a.mp4": clip(seconds=10, size=(320, 180))}
    plan = plan_of(
        "r1", request_of([{"type": "clip", "src": "s3://m/a.mp4"}], quality="high"), sources, chunk_seconds=2
    )
    tails = {
        tuple(argv[argv.index("-c:v") : argv.index("-map_metadata")]) for argv in planned_commands(plan, settings)[:-2]
    }

    assert len(plan.chunks) == 5
    assert len(tails) == 1
    (tail,) = tails
    assert " ".join(tail).startswith("-c:v libx264 -preset medium -crf 19 -profile:v high -pix_fmt yuv420p -g 60")
    assert tail[-1] == "-an"  # the audio track is encoded apart


def test_title_text_never_reaches_the_command_line(request_of: Any, settings: Settings) -> None:
    text = "x';drawbox=c=red[out];%{pts}"
    plan = plan_of("r1", request_of([{"type": "title", "text": text, "duration": 1}]), {})
    argv = planned_commands(plan, settings)[0]
    graph = argv[argv.index("-filter_complex") + 1]

    assert text not in " ".join(argv)
    assert "expansion=none" in graph
    assert "textfile=" in graph


def test_copy_chunks_copy_video_and_decode_only_audio(request_of: Any, clip: Any, settings: Settings) -> None:
    # Trimmed on a keyframe: a copy chunk (a whole source would be a remux, below).
    scene = {"type": "clip", "src": "s3://m/hd.mp4", "muted": True, "trimStart": 1.0}
    plan = plan_of("r1", request_of([scene]), {"s3://m/hd.mp4": clip()})
    (argv, _join) = planned_commands(plan, settings)

    assert not plan.remux
    assert plan.chunks[0].mode == "copy"
    assert "libx264" not in argv
    assert argv[argv.index("-c:v") + 1] == "copy"
    assert argv[argv.index("-frames:v") + 1] == "30"
    assert "anullsrc" in argv[argv.index("-filter_complex") + 1]  # muted: silence, not the source audio


def test_whole_matching_sources_are_one_remux_with_no_chunk_command(
    request_of: Any, clip: Any, settings: Settings
) -> None:
    sources = {"s3://m/a.mp4": clip(key="a.mp4"), "s3://m/b.mp4": clip(key="b.mp4", audio=False)}
    scenes = [
        {"type": "clip", "src": "s3://m/a.mp4"},
        {"type": "clip", "src": "s3://m/b.mp4"},
        {"type": "clip", "src": "s3://m/a.mp4", "muted": True},
        {"type": "clip", "src": "s3://m/a.mp4", "volume": 0.5},
    ]
    plan = plan_of("r1", request_of(scenes), sources)
    (argv,) = planned_commands(plan, settings)
    graph = argv[argv.index("-filter_complex") + 1]

    assert plan.remux
    assert [c.mode for c in plan.chunks] == ["copy"] * 4
    assert "libx264" not in argv
    assert argv[argv.index("-f") + 1] == "concat"
    assert argv[argv.index("-c:v") + 1] == "copy"
    assert argv[argv.index("-frames:v") + 1] == str(plan.total_frames) == "240"
    # Only the clips that sound are decoded (twice a.mp4: its audio is per scene), each cut to its samples.
    assert argv.count("-vn") == 2
    assert graph.count("anullsrc") == 2  # b.mp4 has no audio; the muted scene is silent
    assert graph.count(f"atrim=end_sample={plan.chunks[0].samples}") == 4
    assert "volume=0.5" in graph
    assert "concat=n=4:v=0:a=1" in graph


@pytest.mark.parametrize(
    "scene",
    [
        {"trimStart": 1.0},  # starts on a keyframe, but not the first frame
        {"duration": 1.0},  # ends on an inner keyframe
    ],
)
def test_a_copy_of_part_of_a_source_is_not_a_remux(
    request_of: Any, clip: Any, settings: Settings, scene: dict[str, Any]
) -> None:
    plan = plan_of("r1", request_of([{"type": "clip", "src": "s3://m/hd.mp4", **scene}]), {"s3://m/hd.mp4": clip()})

    assert [c.mode for c in plan.chunks] == ["copy"]
    assert not plan.remux
    assert len(planned_commands(plan, settings)) == 2


def test_a_timeline_with_any_encoded_scene_is_not_a_remux(request_of: Any, clip: Any, settings: Settings) -> None:
    scenes = [{"type": "clip", "src": "s3://m/hd.mp4"}, {"type": "title", "text": "end", "duration": 1}]
    plan = plan_of("r1", request_of(scenes), {"s3://m/hd.mp4": clip()})

    assert [c.mode for c in plan.chunks] == ["copy", "encode"]
    assert not plan.remux


def test_an_image_used_twice_in_a_chunk_is_decoded_once_and_shrunk_first(
    request_of: Any, image: Any, settings: Settings
) -> None:
    sources = {"s3://m/i.png": image()}
    req = request_of(
        [
            {"type": "image", "src": "s3://m/i.png", "duration": 1},
            {"type": "title", "text": "between", "duration": 1},
            {"type": "image", "src": "s3://m/i.png", "duration": 1, "fit": "contain"},
        ]
    )
    (argv, _join) = planned_commands(plan_of("r1", req, sources, chunk_seconds=15), settings)

    assert len(_inputs(argv)) == 1
    graph = argv[argv.index("-filter_complex") + 1]
    shrink = graph.split(";")[0]
    # The full-size picture is scaled down before anything else, then shared by both scenes.
    assert shrink.startswith("[0:v:0]scale=w='min(iw,")
    assert shrink.endswith("split=2[img0_0][img0_1]")


def test_every_decoded_input_has_a_pixel_bound(request_of: Any, clip: Any, image: Any, settings: Settings) -> None:
    bounded = settings.model_copy(update={"max_image_pixels": 1234, "max_video_pixels": 5678})
    sources = {"s3://m/a.mp4": clip(size=(320, 180)), "s3://m/i.png": image()}
    req = request_of([{"type": "clip", "src": "s3://m/a.mp4"}, {"type": "image", "src": "s3://m/i.png"}])
    (argv, _join) = planned_commands(plan_of("r1", req, sources, chunk_seconds=15), bounded)

    bounds = [argv[i - 7] for i in _inputs(argv)]  # -max_pixels N, then safe_input's six arguments
    assert [argv[i - 8] for i in _inputs(argv)] == ["-max_pixels", "-max_pixels"]
    assert bounds == ["5678", "1234"]


def test_the_join_loops_the_soundtrack_only_as_often_as_needed() -> None:
    from render_service.engines.ffmpeg.commands import MAX_SOUNDTRACK_LOOPS, soundtrack_loops
    from render_service.engines.ffmpeg.models import RenderPlan, SoundtrackSpec, SourceRef

    ref = SourceRef(bucket="b", key="k", size_bytes=1, ext=".mp3", demuxer="mp3", has_audio=True)
    plan = RenderPlan.model_construct(
        duration_seconds=95.0, soundtrack=SoundtrackSpec(source=ref, volume=1, fade_out_seconds=0, duration_seconds=30)
    )
    assert soundtrack_loops(plan) == 4
    unknown = plan.model_copy(update={"soundtrack": plan.soundtrack.model_copy(update={"duration_seconds": None})})  # type: ignore[union-attr]
    assert soundtrack_loops(unknown) == MAX_SOUNDTRACK_LOOPS
