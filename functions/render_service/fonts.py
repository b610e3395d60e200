"""The bundled open fonts: which families a title may use, where their files are, how wide text is.

Deployed, the ffmpeg layer ships each file in /opt/fonts/ (`layers/build.py` copies them from
the same PyPI packages, with their licences). Locally the files are read from those packages.
Widths come from the font's own tables (fontTools): advance widths without kerning, which
drawtext's shaping only ever narrows, so text wrapped with them always fits.
"""

from __future__ import annotations

import importlib
import os
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, get_args

FontFamily = Literal["Roboto", "Lato", "Source Sans Pro", "Source Serif Pro"]
DEFAULT_FAMILY: FontFamily = "Roboto"
LAYER_FONT_DIR = Path("/opt/fonts")


@dataclass(frozen=True)
class BundledFont:
    file: str
    package: str  # the PyPI package's import name; it keeps the file under files/
    licence: str  # the licence file's name in that package


FONTS: dict[FontFamily, BundledFont] = {
    "Roboto": BundledFont("Roboto-Regular.ttf", "font_roboto", "LICENSE"),  # Apache-2.0
    "Lato": BundledFont("Lato-Regular.ttf", "font_lato", "OFL.txt"),  # SIL OFL 1.1
    "Source Sans Pro": BundledFont("SourceSansPro-Regular.ttf", "font_source_sans_pro", "LICENSE.txt"),  # OFL 1.1
    "Source Serif Pro": BundledFont("SourceSerifPro-Regular.ttf", "font_source_serif_pro", "LICENSE.txt"),  # OFL 1.1
}
assert set(FONTS) == set(get_args(FontFamily)), "every family has a bundled file"


def package_file(name: str, package: str) -> Path:
    """A file of a font package (build time and local runs; Lambda has the layer instead)."""
    module = importlib.import_module(package)
    assert module.__file__ is not None
    return Path(module.__file__).parent / "files" / name


def font_file(family: FontFamily, font_dir: str | Path | None = None) -> Path:
    """The family's file: in `font_dir` (FONT_DIR), else the layer's /opt/fonts, else its package."""
    font = FONTS[family]
    for directory in (font_dir or os.environ.get("FONT_DIR"), LAYER_FONT_DIR):
        if directory and (Path(directory) / font.file).is_file():
            return Path(directory) / font.file
    return package_file(font.file, font.package)


@dataclass(frozen=True)
class FontMetrics:
    """Horizontal advances and vertical extents, in font units (`units_per_em` to the em)."""

    units_per_em: int
    ascent: int
    descent: int  # negative, below the baseline
    line_gap: int
    advances: dict[int, int]  # code point -> advance width
    fallback_advance: int  # for characters the font lacks (drawtext draws .notdef)

    def width(self, text: str, px: float) -> float:
        """Pixels `text` takes at `px` pixels to the em, without kerning."""
        units = sum(self.advances.get(ord(c), self.fallback_advance) for c in text if not _is_mark(c))
        return units * px / self.units_per_em

    def line_height(self, px: float) -> float:
        return (self.ascent - self.descent + self.line_gap) * px / self.units_per_em

    def ascent_px(self, px: float) -> float:
        return self.ascent * px / self.units_per_em


def _is_mark(c: str) -> bool:
    return unicodedata.category(c) in ("Mn", "Me", "Cf")


@cache
def metrics(family: FontFamily, font_dir: str | None = None) -> FontMetrics:
    from fontTools.ttLib import TTFont  # noqa: PLC0415 (only the title planner needs it)

    with TTFont(str(font_file(family, font_dir)), lazy=True) as font:
        hmtx = font["hmtx"].metrics
        cmap = font.getBestCmap() or {}
        hhea = font["hhea"]
        advances = {code: hmtx[glyph][0] for code, glyph in cmap.items() if glyph in hmtx}
        return FontMetrics(
            units_per_em=int(font["head"].unitsPerEm),
            ascent=int(hhea.ascent),
            descent=int(hhea.descent),
            line_gap=int(hhea.lineGap),
            advances=advances,
            fallback_advance=int(hmtx[".notdef"][0]) if ".notdef" in hmtx else int(font["head"].unitsPerEm) // 2,
        )
