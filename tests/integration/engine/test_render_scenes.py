"""Titles, images, transitions and the soundtrack, rendered for real and checked with PyAV."""

from __future__ import annotations

from typing import Any

OUT = {"resolution": "720p", "fps": 30, "quality": "low"}


def _close(rgb: Any, expected: tuple[float, float, float], tol: float = 40) -> bool:
    return all(abs(float(c) - e) <= tol for c, e in zip(rgb, expected, strict=True))


def test_title_card_shows_text_on_its_background(render: Any, media: Any, upload: Any, media_check: Any) -> None:
    red = upload(media.clip("red", color="red"))
    request = {
        "timeline": {
            "scenes": [
                {"type": "title", "text": "Hello, world", "duration": 1.0, "background": "#000080", "fontSize": 120},
                {"type": "clip", "src": red},
            ]
        },
        "output": OUT,
    }
    result = render(request)
    check = media_check.decode(result.path)

    assert check.frames == 60
    assert media_check.frame_spread(result.path, 15) > 100  # white glyphs on navy
    assert _close(media_check.frame_rgb(result.path, 15), (0, 0, 128), tol=60)
    assert media_check.frame_spread(result.path, 45) < 30  # the red clip is uniform
    assert abs(check.audio_seconds - check.video_seconds) <= 1 / 30


def test_title_text_cannot_inject_filters(render: Any, media_check: Any) -> None:
    nasty = "a:b'c;[x]d,e\\f %{pts} [out];drawbox=c=red\nline two"
    request = {
        "timeline": {"scenes": [{"type": "title", "text": nasty, "duration": 0.5, "position": "bottom"}]},
        "output": OUT,
    }
    result = render(request)

    assert media_check.decode(result.path).frames == 15
    assert media_check.frame_spread(result.path, 7) > 100


def test_image_scene_is_held_for_its_duration_with_fit(render: Any, media: Any, upload: Any, media_check: Any) -> None:
    square = upload(media.image("yellow-square", color="yellow", size="200x200"))
    request = {
        "timeline": {
            "scenes": [
                {"type": "image", "src": square, "duration": 0.5, "fit": "cover"},
                {"type": "image", "src": square, "duration": 0.5, "fit": "contain"},
            ]
        },
        "output": OUT,
    }
    result = render(request)

    assert media_check.decode(result.path).frames == 30
    assert _close(media_check.frame_rgb(result.path, 5), (255, 255, 0))
    # contain: a centred square between black bars, so the mean is well below full yellow.
    contained = media_check.frame_rgb(result.path, 20)
    assert 60 < contained[0] < 200
    assert media_check.frame_spread(result.path, 20) > 200


def test_crossfade_overlaps_scenes_and_shortens_the_timeline(
    render: Any, media: Any, upload: Any, media_check: Any
) -> None:
    red, lime = upload(media.clip("red", color="red")), upload(media.clip("lime", color="lime"))
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": red},
                {"type": "clip", "src": lime, "transition": {"type": "fade", "duration": 0.5}},
            ]
        },
        "output": OUT,
    }
    result = render(request)
    check = media_check.decode(result.path)

    assert result.plan.total_frames == 45
    assert check.frames == 45
    assert abs(check.audio_seconds - check.video_seconds) <= 1 / 30
    assert _close(media_check.frame_rgb(result.path, 5), (255, 0, 0))
    middle = media_check.frame_rgb(result.path, 22)
    assert 60 < middle[0] < 200
    assert 60 < middle[1] < 200
    assert _close(media_check.frame_rgb(result.path, 40), (0, 255, 0))


def test_transitions_survive_small_chunks(render: Any, media: Any, upload: Any, media_check: Any) -> None:
    red, lime, blue = (upload(media.clip(c, color=c)) for c in ("red", "lime", "blue"))
    fade = {"type": "wipeleft", "duration": 0.4}
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": red},
                {"type": "clip", "src": lime, "transition": fade},
                {"type": "title", "text": "end", "duration": 1.0, "transition": {"type": "dissolve", "duration": 0.3}},
                {"type": "clip", "src": blue},
            ]
        },
        "output": OUT,
    }
    chunked = render(request, render_id="r-chunked", chunk_seconds=0.6)
    single = render(request, render_id="r-single", chunk_seconds=60)
    a, b = media_check.decode(chunked.path), media_check.decode(single.path)

    assert len(chunked.plan.chunks) > 3
    assert len(single.plan.chunks) == 1
    assert a.frames == b.frames == chunked.plan.total_frames == 120 - 12 - 9
    assert abs(a.audio_seconds - a.video_seconds) <= 1 / 30
    assert abs(b.audio_seconds - b.video_seconds) <= 1 / 30
    assert abs(chunked.info.duration_seconds - single.info.duration_seconds) <= 1 / 30
    pairs = zip(media_check.frame_means(chunked.path), media_check.frame_means(single.path), strict=True)
    for index, (x, y) in enumerate(pairs):
        assert _close(x, y, tol=12), index


def test_soundtrack_loops_under_silent_scenes_and_fades_out(
    render: Any, media: Any, upload: Any, media_check: Any
) -> None:
    music = upload(media.tone("music", seconds=1.0))
    request = {
        "timeline": {
            "scenes": [
                {"type": "title", "text": "one", "duration": 1.5},
                {"type": "title", "text": "two", "duration": 1.5},
            ],
            "soundtrack": {"src": music, "volume": 1.0, "fadeOut": 1.0},
        },
        "output": OUT,
    }
    result = render(request)
    check = media_check.decode(result.path)

    assert check.frames == 90
    assert abs(check.audio_seconds - check.video_seconds) <= 1 / 30
    early = media_check.audio_rms(result.path, 0.2, 0.8)
    looped = media_check.audio_rms(result.path, 1.2, 1.8)  # past the 1 s source: looped
    fading = media_check.audio_rms(result.path, 2.8, 2.95)
    assert early > 0.05  # lavfi sine: amplitude 1/8, RMS about 0.088
    assert looped > 0.05
    assert fading < early / 3


def test_muted_and_silent_clips_get_silence_of_the_right_length(
    render: Any, media: Any, upload: Any, media_check: Any
) -> None:
    loud = upload(media.clip("loud", color="red", tone=1000))
    silent = upload(media.clip("silent", color="blue", audio=False))
    request = {
        "timeline": {
            "scenes": [
                {"type": "clip", "src": loud, "muted": True},
                {"type": "clip", "src": silent},
                {"type": "clip", "src": loud, "volume": 0.5},
            ]
        },
        "output": OUT,
    }
    result = render(request)
    check = media_check.decode(result.path)

    assert check.frames == 90
    assert abs(check.audio_seconds - check.video_seconds) <= 1 / 30
    assert media_check.audio_rms(result.path, 0.1, 1.9) < 0.01
    assert 0.03 < media_check.audio_rms(result.path, 2.1, 2.9) < 0.06  # volume 0.5 of RMS 0.088
