"""Choosing the still frame and sizing the thumbnail (pure; the images themselves: integration tier)."""

from __future__ import annotations

from pathlib import Path

import pytest

from render_service.engines.ffmpeg.stills import (
    candidate_times,
    candidates_argv,
    keys_for,
    luma_variance,
    pick,
    thumbnail_size,
)


def test_candidates_skip_the_opening_and_the_closing() -> None:
    times = candidate_times(10.0)
    assert times == sorted(times)
    assert times[0] >= 1.0
    assert times[-1] <= 9.0


def test_a_uniform_frame_has_no_variance_and_content_has_some() -> None:
    assert luma_variance(bytes([16] * 2304)) == 0
    assert luma_variance(bytes([16, 235] * 1152)) == pytest.approx(((235 - 16) / 2) ** 2)


def test_the_most_varied_candidate_wins_and_ties_go_to_the_earliest() -> None:
    assert pick([0.0, 12.0, 3000.0, 2999.0]) == 2
    assert pick([0.0, 50.0, 50.0]) == 1
    assert pick([0.0, 0.0]) == 0


@pytest.mark.parametrize(
    ("size", "thumb"),
    [((1920, 1080), (320, 180)), ((1080, 1920), (180, 320)), ((1080, 1080), (320, 320)), ((240, 136), (240, 136))],
)
def test_thumbnails_are_320_on_the_long_side_never_enlarged(size: tuple[int, int], thumb: tuple[int, int]) -> None:
    assert thumbnail_size(*size) == thumb


def test_every_run_opens_only_a_local_mp4_seeking_before_the_input() -> None:
    video = Path("/tmp/out.mp4")
    out = Path("/tmp/stills")
    for argv in (
        candidates_argv("ffmpeg", video, [1.0, 2.0], accurate=False, thumb=(320, 180), out_dir=out),
        candidates_argv("ffmpeg", video, [1.0, 2.0], accurate=True, thumb=(320, 180), out_dir=out),
    ):
        inputs = [i for i, arg in enumerate(argv) if arg == "-i"]
        for at in inputs:
            assert argv[at + 1] == str(video)
            window = argv[max(0, at - 9) : at]
            assert "-ss" in window  # input seeking: nothing before the timestamp is decoded or demuxed for nothing
            assert window[window.index("-protocol_whitelist") + 1] == "file,pipe"
    one = candidates_argv("ffmpeg", video, [1.0], accurate=False, thumb=(320, 180), out_dir=out)
    assert one.count("-noaccurate_seek") == 1


def test_stills_live_beside_the_output() -> None:
    keys = keys_for("u1", "r1")
    assert (keys.poster, keys.thumbnail) == ("renders/u1/r1.poster.jpg", "renders/u1/r1.thumb.jpg")
