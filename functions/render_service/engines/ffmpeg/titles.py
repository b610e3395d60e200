"""Title cards: wrapping text to the frame, and the four text animations as drawtext expressions.

Pure apart from the font metrics it is handed. Planning lays a title out once (`layout`), so
every chunk of a long title draws the same lines; a chunk worker turns that layout into
drawtext filters (`drawtext_chain`), one per line, each with its own text file (the user's text
never reaches the filter parser).

Animations are functions of the frame number within the *scene* (`n` plus the piece's offset),
so a title split across chunks animates as one:

| animation  | what moves                                    | over                              |
|------------|-----------------------------------------------|-----------------------------------|
| fade-in    | opacity 0 -> 1                                | 1 s (at most half the scene)      |
| slide-up   | rises 8% of the frame height, fading in       | 0.8 s (at most half the scene)    |
| scale      | grows from 60% to 100% around the block centre| 0.8 s (at most half the scene)    |
| typewriter | characters appear one by one, lines stay put  | 15 characters/s (done by 70%)     |

Eased with ease-out cubic (fast start, gentle landing), except typewriter, which is linear.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from render_service.fonts import FontMetrics
from render_service.models.timeline import TextAnimation as Animation

# Font sizes are given against a 1080-pixel short side; other frames scale them with it.
TITLE_REFERENCE_SHORT_SIDE = 1080
WRAP_WIDTH = 0.9  # of the frame width
FIT_HEIGHT = 0.84  # of the frame height
EDGE_MARGIN = 0.08  # top/bottom positions keep this much of the height free
MIN_FONT_PX = 4
SLIDE_DISTANCE = 0.08  # of the frame height
SCALE_FROM = 0.6
TYPEWRITER_CHARS_PER_SECOND = 15.0
ENTRANCE_SECONDS: dict[Animation, float] = {"fade-in": 1.0, "slide-up": 0.8, "scale": 0.8}
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


class TitleLayout(BaseModel):
    """Where a title's lines go on its frame, in pixels; stored in the chunk spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lines: list[str]
    font_px: int = Field(gt=0, description="Font size after fitting the text to the frame.")
    baselines: list[float] = Field(description="Each line's baseline, from the top of the frame.")
    widths: list[float] = Field(description="Each line's width without kerning (typewriter places lines by it).")
    center_y: float = Field(description="The vertical centre of the block; scale grows around it.")


def normalise(text: str) -> list[str]:
    """Paragraphs of the user's text: newlines kept, other control characters become spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [" ".join(_CONTROL.sub(" ", p).split()) for p in text.split("\n")]


def wrap(paragraphs: list[str], metrics: FontMetrics, px: float, max_width: float) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken between characters."""
    lines: list[str] = []
    for paragraph in paragraphs:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if metrics.width(candidate, px) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:
                if line and metrics.width(line + char, px) > max_width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return lines


def layout(
    text: str, metrics: FontMetrics, *, font_px: int, width: int, height: int, position: str = "center"
) -> TitleLayout:
    """Wraps the text to the frame and shrinks the font until the block fits its height."""
    paragraphs = normalise(text)
    px = max(MIN_FONT_PX, font_px)
    while True:
        lines = wrap(paragraphs, metrics, px, width * WRAP_WIDTH)
        block = len(lines) * metrics.line_height(px)
        if block <= height * FIT_HEIGHT or px <= MIN_FONT_PX:
            break
        px = max(MIN_FONT_PX, min(px - 1, math.floor(px * math.sqrt(height * FIT_HEIGHT / block))))
    line_height = metrics.line_height(px)
    if position == "top":
        top = height * EDGE_MARGIN
    elif position == "bottom":
        top = height * (1 - EDGE_MARGIN) - block
    else:
        top = (height - block) / 2
    # The line gap is split above and below each line, as CSS line-height does.
    first = top + metrics.line_gap * px / metrics.units_per_em / 2 + metrics.ascent_px(px)
    baselines = [round(first + i * line_height, 2) for i in range(len(lines))]
    return TitleLayout(
        lines=lines,
        font_px=px,
        baselines=baselines,
        widths=[round(metrics.width(line, px), 2) for line in lines],
        center_y=round(top + block / 2, 2),
    )


def font_px(font_size: int, width: int, height: int) -> int:
    return max(MIN_FONT_PX, round(font_size * min(width, height) / TITLE_REFERENCE_SHORT_SIDE))


def animation_frames(animation: Animation, text_chars: int, scene_frames: int, fps: int) -> int:
    """How many frames of the scene the entrance takes (0 for none)."""
    if animation == "none":
        return 0
    if animation == "typewriter":
        seconds = min(text_chars / TYPEWRITER_CHARS_PER_SECOND, 0.7 * scene_frames / fps)
    else:
        seconds = min(ENTRANCE_SECONDS[animation], 0.5 * scene_frames / fps)
    return max(1, round(seconds * fps))


def _eased(offset: int, frames: int) -> str:
    """ease-out cubic of the scene's progress through the entrance, 0 -> 1, as an ffmpeg expression."""
    return f"(1-pow(1-clip((n+{offset})/{frames},0,1),3))"


def revealed(frame: int, total_chars: int, frames: int) -> int:
    """Typewriter: characters shown on a frame of the scene (all of them once the entrance is over)."""
    if frame >= frames - 1:
        return total_chars
    return min(total_chars, total_chars * (frame + 1) // frames)


def typewriter_steps(title: TitleLayout, frames: int) -> list[tuple[int, int, int, int | None]]:
    """(line, characters shown, first frame, end frame or None) for every prefix that is ever drawn."""
    starts, total = [], 0
    for line in title.lines:
        starts.append(total)
        total += len(line)
    steps: list[tuple[int, int, int, int | None]] = []
    for i, line in enumerate(title.lines):
        shown_since: dict[int, int] = {}
        for frame in range(frames):
            shown = min(len(line), max(0, revealed(frame, total, frames) - starts[i]))
            if shown:
                shown_since.setdefault(shown, frame)
        ordered = sorted(shown_since.items())
        for j, (shown, first) in enumerate(ordered):
            end = ordered[j + 1][1] if j + 1 < len(ordered) else None
            steps.append((i, shown, first, end))
    return steps


def text_files(title: TitleLayout, animation: Animation, frames: int) -> list[tuple[int, int, str]]:
    """(line, characters, text) of every text file the drawtext chain reads."""
    if animation == "typewriter":
        return [(i, shown, title.lines[i][:shown]) for i, shown, _, _ in typewriter_steps(title, frames)]
    return [(i, len(line), line) for i, line in enumerate(title.lines) if line]


def drawtext_chain(
    title: TitleLayout,
    *,
    animation: Animation,
    frames: int,
    offset: int,
    font: str,
    color: str,
    text_file: Callable[[int, int], str],
    escape: Callable[[str], str],
) -> list[str]:
    """The drawtext filters (to be joined with commas) that draw the title on its background.

    `text_file(line, characters)` names the file holding that much of that line; `escape`
    makes a value safe inside -filter_complex.
    """
    px = title.font_px
    common = [f"fontfile={escape(font)}", "expansion=none", f"fontcolor={color}", "y_align=baseline"]
    filters: list[str] = []
    if animation == "typewriter":
        for i, shown, first, end in typewriter_steps(title, frames):
            window = f"between(n+{offset},{first},{end - 1})" if end is not None else f"gte(n+{offset},{first})"
            options = [
                *common,
                f"textfile={escape(text_file(i, shown))}",
                f"fontsize={px}",
                f"x=(w-{title.widths[i]})/2",  # where the whole line will sit, so nothing shifts as it grows
                f"y={title.baselines[i]}",
                f"enable={escape(window)}",
            ]
            filters.append("drawtext=" + ":".join(options))
        return filters
    eased = _eased(offset, frames) if animation != "none" else "1"
    for i, line in enumerate(title.lines):
        if not line:
            continue
        size, y, alpha = f"{px}", f"{title.baselines[i]}", None
        if animation == "fade-in":
            alpha = eased
        elif animation == "slide-up":
            y = f"{title.baselines[i]}+h*{SLIDE_DISTANCE}*(1-{eased})"
            alpha = eased
        elif animation == "scale":
            factor = f"({SCALE_FROM}+{1 - SCALE_FROM:.2f}*{eased})"
            size = f"{px}*{factor}"
            y = f"{title.center_y}+({title.baselines[i] - title.center_y:.2f})*{factor}"
        options = [
            *common,
            f"textfile={escape(text_file(i, len(line)))}",
            f"fontsize={escape(size)}",
            "x=(w-text_w)/2",
            f"y={escape(y)}",
        ]
        if alpha is not None:
            options.append(f"alpha={escape(alpha)}")
        filters.append("drawtext=" + ":".join(options))
    return filters
