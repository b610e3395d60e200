"""Title animations, fonts and wrapping, measured from the rendered frames (PyAV decodes them)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

OUT = {"resolution": "720p", "fps": 30, "quality": "low"}
W, H = 320, 180  # frames are measured on this thumbnail
INK = 128  # luma above this is text (white on black)


@dataclass(frozen=True)
class Ink:
    """Where the white text is on one frame."""

    brightness: float  # mean luma of the frame
    pixels: int  # how many pixels are inked
    left: int
    right: int
    top: int
    bottom: int
    centre_y: float

    @property
    def width(self) -> int:
        return self.right - self.left + 1 if self.pixels else 0

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1 if self.pixels else 0


def measure(path: Path) -> list[Ink]:
    found = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            plane = frame.reformat(width=W, height=H, format="gray").planes[0]
            data = bytes(plane)
            rows = [data[y * plane.line_size : y * plane.line_size + W] for y in range(H)]
            inked = [(x, y) for y, row in enumerate(rows) for x, v in enumerate(row) if v > INK]
            xs, ys = [x for x, _ in inked], [y for _, y in inked]
            found.append(
                Ink(
                    brightness=sum(map(sum, rows)) / (W * H),
                    pixels=len(inked),
                    left=min(xs, default=0),
                    right=max(xs, default=0),
                    top=min(ys, default=0),
                    bottom=max(ys, default=0),
                    centre_y=sum(ys) / len(ys) if ys else 0.0,
                )
            )
    return found


def title(text: str = "Hello animated world", **fields: Any) -> dict[str, Any]:
    scene = {"type": "title", "text": text, "duration": 2.0, "fontSize": 120, **fields}
    return {"timeline": {"scenes": [scene]}, "output": OUT}


def test_fade_in_brightness_rises_then_holds(render: Any) -> None:
    ink = measure(render(title(animation="fade-in")).path)

    assert len(ink) == 60
    entrance = [f.brightness for f in ink[:30]]  # 1 s
    assert entrance[0] < 0.1 * ink[-1].brightness
    assert all(b >= a - 0.05 for a, b in itertools.pairwise(entrance))
    assert entrance[10] < entrance[20] < entrance[29]
    assert ink[30].brightness == pytest.approx(ink[59].brightness, rel=0.02)


def test_typewriter_inked_width_grows_character_by_character(render: Any) -> None:
    ink = measure(render(title(animation="typewriter")).path)

    widths = [f.width for f in ink]
    assert widths[0] < widths[-1] / 4
    assert all(b >= a for a, b in itertools.pairwise(widths))
    assert len(set(widths[:40])) >= 10  # many steps, not one jump
    # Letters already typed stay where they are: the left edge never moves.
    typed = [f.left for f in ink if f.pixels]
    assert max(typed) - min(typed) <= 2


def test_slide_up_text_moves_up_into_place(render: Any) -> None:
    ink = measure(render(title(animation="slide-up")).path)

    visible = [f for f in ink[:24] if f.pixels > 50]
    assert visible[0].centre_y > visible[-1].centre_y + 5  # thumbnail pixels: ~36 px at 720p
    assert all(b.centre_y <= a.centre_y + 0.5 for a, b in itertools.pairwise(visible))
    assert ink[30].centre_y == pytest.approx(ink[59].centre_y, abs=0.5)
    assert ink[59].centre_y == pytest.approx(H / 2, abs=H * 0.1)


def test_scale_text_grows_to_its_size(render: Any) -> None:
    ink = measure(render(title(animation="scale")).path)

    assert ink[0].width < 0.75 * ink[30].width
    assert ink[0].height < 0.8 * ink[30].height
    grow = [f.width for f in ink[:24]]
    assert all(b >= a - 1 for a, b in itertools.pairwise(grow))
    assert ink[30].width == ink[59].width
    # It grows around its centre.
    assert (ink[0].left + ink[0].right) / 2 == pytest.approx((ink[30].left + ink[30].right) / 2, abs=2)


def test_a_title_split_across_chunks_animates_as_one(render: Any) -> None:
    request = title(animation="slide-up")
    whole = measure(render(request, render_id="whole").path)
    split = render(request, render_id="split", chunk_seconds=0.3)

    assert len(split.plan.chunks) > 1
    pieces = measure(split.path)
    both = [(a, b) for a, b in zip(whole, pieces, strict=True) if a.pixels > 50 and b.pixels > 50]
    assert len(both) > 50
    # Encoded separately, the chunks differ only by compression noise, never by where the text is.
    assert all(abs(a.centre_y - b.centre_y) <= 1 for a, b in both)


def test_long_text_wraps_inside_the_frame(render: Any) -> None:
    words = "the quick brown fox jumps over the lazy dog " * 4
    rendered = render(title(words.strip(), fontSize=160))
    ink = measure(rendered.path)[-1]
    layout = rendered.plan.chunks[0].segments[0].title

    assert layout is not None
    assert len(layout.lines) > 2
    assert ink.left > 0
    assert ink.right < W - 1
    assert ink.top > 0
    assert ink.bottom < H - 1


def test_text_too_long_for_the_frame_shrinks_to_fit(render: Any) -> None:
    words = "a rather long title that could never fit at this size " * 3
    rendered = render(title(words.strip(), fontSize=400))
    ink = measure(rendered.path)[-1]
    layout = rendered.plan.chunks[0].segments[0].title

    assert layout is not None
    assert layout.font_px < 400 * 720 / 1080
    assert ink.top > 0
    assert ink.bottom < H - 1


def test_font_family_changes_the_glyphs(render: Any) -> None:
    text = "Typography"
    serif = measure(render(title(text, fontFamily="Source Serif Pro"), render_id="serif").path)[-1]
    sans = measure(render(title(text, fontFamily="Roboto"), render_id="sans").path)[-1]

    assert (serif.width, serif.pixels) != (sans.width, sans.pixels)
