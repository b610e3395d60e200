"""Title layout (wrapping, fitting) and the drawtext chains the animations become."""

from __future__ import annotations

import itertools
import re

import pytest
from pydantic import ValidationError

from render_service import fonts
from render_service.engines.ffmpeg import titles
from render_service.models.timeline import TitleScene

ROBOTO = fonts.metrics("Roboto")


def test_every_family_has_metrics_from_its_own_file() -> None:
    widths = {family: fonts.metrics(family).width("Typography", 100) for family in fonts.FONTS}
    assert len(set(widths.values())) == len(widths)
    assert all(200 < w < 700 for w in widths.values())


def test_long_text_wraps_at_word_boundaries_inside_the_frame() -> None:
    text = "the quick brown fox jumps over the lazy dog " * 3
    layout = titles.layout(text, ROBOTO, font_px=72, width=1280, height=720)

    assert len(layout.lines) > 1
    assert " ".join(layout.lines) == " ".join(text.split())
    assert all(w <= 1280 * titles.WRAP_WIDTH for w in layout.widths)
    assert layout.font_px == 72


def test_a_word_wider_than_the_frame_is_broken_and_newlines_are_kept() -> None:
    layout = titles.layout("A\n" + "W" * 40, ROBOTO, font_px=72, width=640, height=720)

    assert layout.lines[0] == "A"
    assert "".join(layout.lines[1:]) == "W" * 40
    assert len(layout.lines) > 2


def test_text_that_cannot_fit_shrinks_until_it_does() -> None:
    layout = titles.layout("word " * 120, ROBOTO, font_px=400, width=1280, height=720)

    assert layout.font_px < 400
    block = len(layout.lines) * ROBOTO.line_height(layout.font_px)
    assert block <= 720 * titles.FIT_HEIGHT
    assert 0 < layout.baselines[0] < layout.baselines[-1] < 720


def test_positions_place_the_block() -> None:
    top, centre, bottom = (
        titles.layout("Hi", ROBOTO, font_px=72, width=1280, height=720, position=p).baselines[0]
        for p in ("top", "center", "bottom")
    )
    assert top < centre < bottom


def test_typewriter_reveals_every_character_once_in_order() -> None:
    layout = titles.layout("Hello there\nworld", ROBOTO, font_px=72, width=1280, height=720)
    steps = titles.typewriter_steps(layout, frames=20)

    per_line: dict[int, list[int]] = {}
    for line, shown, first, end in steps:
        per_line.setdefault(line, []).append(shown)
        assert end is None or end > first
    assert per_line[0][-1] == len("Hello there")
    assert per_line[1][-1] == len("world")
    assert all(a < b for shown in per_line.values() for a, b in itertools.pairwise(shown))
    assert titles.revealed(19, 16, 20) == 16
    assert titles.revealed(0, 16, 20) < titles.revealed(10, 16, 20) < 16


def test_every_text_file_the_chain_reads_is_one_it_writes() -> None:
    layout = titles.layout("One two three four", ROBOTO, font_px=72, width=640, height=360)
    for animation in ("none", "fade-in", "typewriter", "slide-up", "scale"):
        files = {f"/w/{line}-{chars}" for line, chars, _ in titles.text_files(layout, animation, 12)}
        chain = titles.drawtext_chain(
            layout,
            animation=animation,
            frames=12,
            offset=3,
            font="/f.ttf",
            color="white",
            text_file=lambda line, chars: f"/w/{line}-{chars}",
            escape=lambda v: v,
        )
        read = {m for f in chain for m in re.findall(r"textfile=([^:]+)", f)}
        assert read == files, animation
        if animation != "none":
            assert all("n+3" in f for f in chain)  # the scene's clock, not the chunk's


def test_animation_lengths_fit_the_scene() -> None:
    assert titles.animation_frames("none", 10, 90, 30) == 0
    assert titles.animation_frames("fade-in", 10, 90, 30) == 30
    assert titles.animation_frames("fade-in", 10, 20, 30) == 10  # at most half the scene
    assert titles.animation_frames("typewriter", 30, 300, 30) == 60  # 15 characters a second
    assert titles.animation_frames("typewriter", 300, 90, 30) == 63  # done by 70% of the scene


def test_the_api_knows_the_animations_and_bundled_families() -> None:
    scene = TitleScene(type="title", text="x", animation="typewriter", fontFamily="Lato")
    assert (scene.animation, scene.fontFamily) == ("typewriter", "Lato")
    with pytest.raises(ValidationError, match="fontFamily"):
        TitleScene.model_validate({"text": "x", "fontFamily": "Comic Sans"})
    with pytest.raises(ValidationError, match="animation"):
        TitleScene.model_validate({"text": "x", "animation": "spin"})
