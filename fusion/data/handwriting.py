"""Handwriting beyond MNIST: digits (and letters) drawn as pen strokes or set in handwriting fonts.

Three kinds of writer, each rendered into the 112×112 ink field that ``fusion.data.photo.photograph``
photographs (the glyph's longer side 80 px, centred, as MNIST's 20/28 box):

- **stroke templates** (``TEMPLATES``): digit shapes written as pen paths, several per digit, among them
  the European 1 (flag, flag and base, long upstroke), the crossed 7 and the 7 with a tick, the open and
  the closed 4, the flat-top 3, the looped 2, the straight- and the hooked-stem 9; each drawing is a new
  writer (slant, width, wobbly control points);
- **Hershey fonts** (``fusion.data.hershey``, single-stroke vector fonts), with the same writer
  variation and, now and then, a base added to a 1 and a bar across a 7;
- **handwriting TTF/OTF fonts** packaged in Debian (``TTF_FONTS``), outlines filled by PIL.

Strokes are drawn with a pen model: ballpoint (thin, even), felt-tip or marker (wide), fountain pen
(pressure swells and thin ends) or pencil (grey, grainy); fonts get thinner or bolder strokes and the
same pencil grain. Sources are split by writer (font family, Hershey digit design) in ``HERSHEY_FONTS``
and ``TTF_FONTS``: a font's digits appear in one split only. ``optdigits_ink`` renders scikit-learn's
8×8 UCI optdigits (real handwriting of 43 writers), which only the check sets use.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from . import hershey

FIELD = 112  # the ink field's side, as the MNIST digits are rendered (28 px × 4)
BOX = 80.0  # the glyph's longer side in the field (MNIST's 20 of 28)
SUPER = 2  # strokes are drawn at this supersampling, then averaged down
FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")

# Hershey fonts by split. Many .jhf files share one digit design (the simplex digits are in futural,
# rowmans, cursive, greek ...), so the split is by digit design: the file named first for each.
HERSHEY_FONTS = {
    "train": ("futural", "timesr", "rowmant", "gothiceng"),  # simplex, complex, triplex, gothic digits
    "val": ("futuram",),  # duplex
    "test": ("timesi",),  # italic complex (also scripts, scriptc)
    "check": ("timesib",),  # italic triplex
}
# Hershey fonts whose letters (not digits) write the negatives' words: script faces too.
HERSHEY_LETTER_FONTS = {
    "train": ("futural", "scripts", "cursive", "timesr", "gothiceng"),
    "val": ("futuram", "rowmant"),
    "check": ("scriptc", "timesi", "gothicita", "timesib"),
}
# Handwriting fonts (Debian packages) by split, per family: (package, file names). A family (one
# writer, its bold and italic) stays in one split.
TTF_FONTS = {
    "train": {
        "bwht-build": ("fonts-bwht", ("BecauseWeBuild-Regular.otf",)),
        "bwht-connect": ("fonts-bwht", ("BecauseWeConnect-Regular.otf",)),
        "bwht-learn": ("fonts-bwht", ("BecauseWeLearn-Regular.otf",)),
        "bwht-organize": ("fonts-bwht", ("BecauseWeOrganize-Regular.otf",)),
        "comic-neue": ("fonts-comic-neue", ("ComicNeue-Regular.otf", "ComicNeue-Bold.otf", "ComicNeue-Italic.otf",
                                            "ComicNeue-Light.otf", "ComicNeue-LightItalic.otf")),
        "dancingscript": ("fonts-dancingscript", ("DancingScript-Regular.otf", "DancingScript-Bold.otf")),
        "lobster": ("fonts-lobster", ("lobster.otf",)),
        "breip": ("fonts-breip", ("Breip.ttf",)),
        "domestic-manners": ("fonts-dustin", ("Domestic_Manners.ttf",)),
        "dustismo": ("fonts-dustin", ("Dustismo.ttf", "dustismo_italic.ttf", "dustismo_bold.ttf")),
        "dustismo-roman": ("fonts-dustin", ("Dustismo_Roman.ttf", "Dustismo_Roman_Italic.ttf")),
        "junkyard": ("fonts-dustin", ("Junkyard.ttf",)),
        "dkg": ("fonts-dkg-handwriting", ("dkg.ttf", "dkgBd.ttf", "dkgIt.ttf", "dkgBI.ttf")),
        "kristi": ("fonts-kristi", ("Kristi.ttf",)),
        "okolaks": ("fonts-okolaks", ("okolaksRegular.ttf", "okolaksRegularItalic.ttf")),
        "staypuft": ("fonts-staypuft", ("StayPuft.ttf",)),
        "tomsontalks": ("fonts-tomsontalks", ("TomsonTalks.ttf",)),
    },
    "val": {
        "bwht-mentor": ("fonts-bwht", ("BecauseWeMentor-Regular.otf",)),
        "penguinattack": ("fonts-dustin", ("PenguinAttack.ttf",)),
        "leckerli": ("fonts-leckerli-one", ("LeckerliOne-Regular.ttf",)),
    },
    "test": {
        "bwht-create": ("fonts-bwht", ("BecauseWeCreate-Regular.otf",)),
        "humor-sans": ("fonts-humor-sans", ("Humor-Sans.ttf",)),
        "purisa": ("fonts-tlwg-purisa-ttf", ("Purisa.ttf", "Purisa-Oblique.ttf", "Purisa-Bold.ttf")),
        "rufscript": ("fonts-rufscript", ("Rufscript010.ttf",)),
    },
    "check": {
        "sjfonts-stevehand": ("fonts-sjfonts", ("SteveHand.ttf",)),
        "sjfonts-delphine": ("fonts-sjfonts", ("Delphine.ttf",)),
        "kaushanscript": ("fonts-kaushanscript", ("KaushanScript-Regular.otf",)),
        "el-abogado-loco": ("fonts-dustin", ("El_Abogado_Loco.ttf",)),
        "ecolier": ("fonts-ecolier-court", ("Ecolier-court.ttf",)),
    },
}
DEBIAN_FONT_PACKAGES = sorted({"hershey-fonts-data"} | {package for split in TTF_FONTS.values()
                                                        for package, _ in split.values()})
PENS = ("ballpoint", "felt-tip", "marker", "fountain", "pencil")
PEN_WEIGHTS = (0.35, 0.2, 0.1, 0.15, 0.2)


# ---------------------------------------------------------------- stroke templates


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 9) -> list:
    """Points on an ellipse from angle ``start`` to ``stop`` (degrees; 0 = right, 90 = down, y down)."""
    t = np.deg2rad(np.linspace(start, stop, n))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in t]


def _s(*parts) -> list:
    """A smooth stroke through control points (lists of (x, y), joined)."""
    return ["smooth", [p for part in parts for p in (part if isinstance(part, list) else [part])]]


def _p(*points) -> list:
    """A straight-segment stroke (corners kept)."""
    return ["poly", list(points)]


# Each template: a list of strokes in a box about 0.6 wide and 1 high (x right, y down).
TEMPLATES: dict[int, dict[str, list]] = {
    0: {"oval": [_s(_arc(0.3, 0.5, 0.28, 0.48, -80, -445, 13))],
        "narrow": [_s(_arc(0.3, 0.5, 0.19, 0.49, -95, -450, 13))],
        "tilted": [_s(_arc(0.32, 0.5, 0.26, 0.47, -60, -420, 13))]},
    1: {"stick": [_p((0.33, 0.0), (0.3, 1.0))],
        "flag": [_p((0.14, 0.24), (0.36, 0.0), (0.33, 1.0))],
        "flag-base": [_p((0.14, 0.22), (0.36, 0.0), (0.34, 1.0)), _p((0.1, 1.0), (0.58, 1.0))],
        "long-flag": [_p((0.02, 0.36), (0.4, 0.0), (0.38, 1.0))],
        "serif-base": [_p((0.2, 0.12), (0.34, 0.0), (0.34, 1.0)), _p((0.16, 1.0), (0.52, 0.99))]},
    2: {"swan": [_s(_arc(0.3, 0.28, 0.27, 0.27, 200, 385, 6), (0.3, 0.7), (0.03, 1.0)), _p((0.03, 1.0), (0.62, 0.98))],
        "looped": [_s(_arc(0.3, 0.27, 0.26, 0.26, 200, 380, 6), (0.25, 0.75), (0.08, 0.95), (0.05, 0.86),
                      (0.16, 0.86), (0.3, 0.97), (0.62, 0.96))],
        "angular": [_p((0.04, 0.14), (0.28, 0.0), (0.56, 0.1), (0.56, 0.3), (0.03, 1.0), (0.62, 1.0))]},
    3: {"round": [_s(_arc(0.28, 0.25, 0.25, 0.24, 200, 440, 7), _arc(0.28, 0.74, 0.28, 0.26, 275, 520, 7))],
        "flat-top": [_p((0.05, 0.0), (0.55, 0.0), (0.24, 0.42)), _s(_arc(0.3, 0.7, 0.28, 0.29, 250, 515, 7))],
        "pointed": [_p((0.06, 0.08), (0.45, 0.02), (0.2, 0.45), (0.58, 0.72), (0.3, 1.0), (0.02, 0.86))]},
    4: {"closed": [_p((0.44, 1.0), (0.44, 0.0), (0.02, 0.68), (0.64, 0.68))],
        "closed-lift": [_p((0.42, 0.0), (0.02, 0.68), (0.64, 0.68)), _p((0.44, 0.05), (0.45, 1.0))],
        "open": [_p((0.1, 0.0), (0.04, 0.6), (0.64, 0.6)), _p((0.46, 0.2), (0.47, 1.0))],
        "open-tall": [_p((0.12, 0.0), (0.06, 0.55), (0.64, 0.55)), _p((0.44, 0.0), (0.47, 1.0))]},
    5: {"classic": [_s((0.1, 0.01), (0.07, 0.44), _arc(0.3, 0.7, 0.28, 0.29, 240, 515, 7)),
                    _p((0.1, 0.0), (0.58, 0.01))],
        "one-stroke": [_p((0.58, 0.0), (0.12, 0.0), (0.08, 0.42)), _s(_arc(0.3, 0.69, 0.28, 0.3, 235, 520, 7))],
        "flat-belly": [_p((0.12, 0.02), (0.06, 0.45), (0.45, 0.45)), _s((0.45, 0.45), (0.58, 0.72), (0.3, 1.0),
                                                                       (0.02, 0.9)), _p((0.12, 0.01), (0.6, 0.0))]},
    6: {"classic": [_s((0.5, 0.0), (0.24, 0.22), (0.07, 0.52), (0.06, 0.8), (0.24, 0.99), (0.48, 0.94),
                       (0.55, 0.74), (0.42, 0.56), (0.2, 0.56), (0.07, 0.72))],
        "straight": [_s((0.42, 0.0), (0.16, 0.4), (0.08, 0.72), (0.22, 0.98), (0.46, 0.94), (0.54, 0.74),
                        (0.4, 0.55), (0.18, 0.6), (0.1, 0.74))]},
    7: {"plain": [_p((0.02, 0.02), (0.6, 0.0), (0.24, 1.0))],
        "tick": [_p((0.03, 0.16), (0.04, 0.0), (0.6, 0.0), (0.26, 1.0))],
        "crossed": [_p((0.02, 0.02), (0.6, 0.0), (0.24, 1.0)), _p((0.2, 0.5), (0.64, 0.48))],
        "crossed-tick": [_p((0.03, 0.15), (0.05, 0.0), (0.6, 0.0), (0.26, 1.0)), _p((0.22, 0.52), (0.62, 0.5))],
        "curved": [_p((0.02, 0.02), (0.6, 0.0)), _s((0.6, 0.0), (0.44, 0.32), (0.33, 0.68), (0.3, 1.0))]},
    8: {"s-loop": [_s((0.5, 0.1), (0.3, 0.0), (0.1, 0.12), (0.15, 0.34), (0.45, 0.56), (0.56, 0.8), (0.32, 1.0),
                      (0.06, 0.82), (0.16, 0.56), (0.45, 0.34), (0.5, 0.12), (0.32, 0.0))],
        "snowman": [_s(_arc(0.3, 0.24, 0.2, 0.23, -90, 275, 11)), _s(_arc(0.3, 0.72, 0.27, 0.27, -90, 275, 11))]},
    9: {"straight": [_s(_arc(0.3, 0.27, 0.25, 0.26, 10, -350, 11)), _p((0.55, 0.24), (0.52, 1.0))],
        "hooked": [_s(_arc(0.3, 0.27, 0.25, 0.26, 10, -350, 11), (0.55, 0.6), (0.45, 0.9), (0.22, 1.0))],
        "slanted": [_s(_arc(0.34, 0.27, 0.24, 0.25, 10, -350, 11)), _p((0.58, 0.26), (0.34, 1.0))]},
}


def template_strokes(digit: int, style: str, rng: np.random.Generator) -> list[np.ndarray]:
    """A template drawn by a new writer: control points jittered, smooth strokes through them (Catmull-Rom),
    then slanted and stretched (see ``writer``)."""
    jitter = rng.uniform(0.0, 0.035)
    strokes = []
    for kind, points in TEMPLATES[digit][style]:
        p = np.array(points, np.float64) + rng.normal(0, jitter, (len(points), 2))
        strokes.append(catmull_rom(p) if kind == "smooth" else densify(p))
    return writer(strokes, rng)


def catmull_rom(points: np.ndarray, per_segment: int = 16) -> np.ndarray:
    """A smooth curve through ``points`` (centripetal ends doubled)."""
    p = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for k in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[k - 1], p[k], p[k + 1], p[k + 2]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    out.append(points[-1:])
    return np.concatenate(out)


def densify(points: np.ndarray, step: float = 0.01) -> np.ndarray:
    """A polyline resampled every ``step`` along its length (its corners kept)."""
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
        out.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
    return np.concatenate(out)


def writer(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One writer's hand: the glyph scaled to unit height, slanted (-10..+20°), narrowed or widened
    (0.75-1.3) and moved by a smooth wobble of up to 2.5 % of its height."""
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    size = max(high[1] - low[1], 1e-6)
    slant = np.tan(np.deg2rad(rng.uniform(-10, 20)))
    width = rng.uniform(0.75, 1.3)
    amplitude = rng.uniform(0, 0.025)
    waves = rng.normal(0, 1, (2, 3, 2)) * 3, rng.uniform(0, 2 * np.pi, (2, 3))
    out = []
    for stroke in strokes:
        p = (stroke - low) / size
        p = np.column_stack([p[:, 0] * width - slant * (p[:, 1] - 0.5), p[:, 1]])
        for axis in range(2):
            p[:, axis] += amplitude / 3 * np.sin(p @ waves[0][axis].T + waves[1][axis]).sum(1)
        out.append(p)
    return out


def hershey_strokes(font: str, char: str, rng: np.random.Generator) -> list[np.ndarray]:
    """A Hershey glyph, densified and written by a new writer; a 1 sometimes gets a base (30 %), a 7 a bar
    across its stem (30 %)."""
    strokes = [densify(s / 21.0) for s in hershey.glyph(font, char) if len(s)]
    strokes = [s for s in strokes if len(s) > 1] or [np.zeros((2, 2))]
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    if char == "1" and rng.random() < 0.3:
        x = points[np.argmax(points[:, 1]), 0]
        half = rng.uniform(0.12, 0.2) * (high[1] - low[1])
        strokes.append(densify(np.array([[x - half, high[1]], [x + half, high[1]]])))
    if char == "7" and rng.random() < 0.3:
        mid = low[1] + rng.uniform(0.45, 0.6) * (high[1] - low[1])
        near = points[np.argsort(np.abs(points[:, 1] - mid))[:3], 0].mean()
        half = rng.uniform(0.18, 0.28) * (high[1] - low[1])
        strokes.append(densify(np.array([[near - half, mid], [near + half, mid]])))
    return writer(strokes, rng)


def word_strokes(font: str, text: str, rng: np.random.Generator) -> list[np.ndarray]:
    """A word (or a letter) in a Hershey font, written by a new writer."""
    strokes = [densify(s / 21.0) for s in hershey.text_strokes(font, text) if len(s) > 1]
    return writer(strokes or [np.zeros((2, 2))], rng)


def draw_strokes(strokes: list[np.ndarray], rng: np.random.Generator, pen: str | None = None,
                 field: tuple[int, int] = (FIELD, FIELD), box: float = BOX) -> tuple[np.ndarray, str]:
    """Strokes (unit-height glyph coordinates) -> (ink field H×W in 0..1, the pen used).

    The glyph's longer side is ``box`` px, centred. Every point of a stroke has a width from the pen
    model; the ink is the distance to the nearest stroke point against its half-width (anti-aliased), drawn
    at ``SUPER``× and averaged down.
    """
    pen = pen or str(rng.choice(PENS, p=PEN_WEIGHTS))
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    extent = np.maximum(high - low, 1e-6)
    scale = box * SUPER / max(extent)
    h, w = field[0] * SUPER, field[1] * SUPER
    base = {"ballpoint": rng.uniform(2.5, 5), "felt-tip": rng.uniform(5, 9), "marker": rng.uniform(9, 14),
            "fountain": rng.uniform(3, 7), "pencil": rng.uniform(2.5, 5.5)}[pen] * SUPER
    centre_line = np.zeros((h, w), bool)
    width_at = np.zeros((h, w), np.float32)
    for stroke in strokes:
        xy = (stroke - (low + high) / 2) * scale + np.array([w / 2, h / 2])
        length = np.r_[0, np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))]
        n = max(2, int(length[-1] / 0.7) + 1)
        s = np.linspace(0, length[-1], n)
        xy = np.column_stack([np.interp(s, length, xy[:, 0]), np.interp(s, length, xy[:, 1])])
        u = s / max(length[-1], 1e-6)
        pressure = 1 + 0.25 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * u + rng.uniform(0, 1)))
        if pen == "fountain":  # swelling strokes with fine ends
            pressure *= 0.45 + 0.55 * np.sin(np.pi * np.clip(u * 1.1, 0, 1)) ** 0.5
        elif pen in ("ballpoint", "pencil"):
            pressure *= np.clip(0.7 + 3 * np.minimum(u, 1 - u), 0.7, 1.0)
        cols = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1)
        rows = np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
        centre_line[rows, cols] = True
        width_at[rows, cols] = np.maximum(width_at[rows, cols], base * pressure)
    distance, (near_r, near_c) = ndimage.distance_transform_edt(~centre_line, return_indices=True)
    ink = np.clip(width_at[near_r, near_c] / 2 - distance + 0.5, 0, 1)
    ink = ink.reshape(field[0], SUPER, field[1], SUPER).mean((1, 3))
    return texture(ink, pen, rng), pen


def texture(ink: np.ndarray, pen: str, rng: np.random.Generator) -> np.ndarray:
    """Pencil grain (graphite on paper fibres: broken, lighter strokes) or a ballpoint's uneven flow."""
    if pen == "pencil":
        grain = ndimage.gaussian_filter(rng.normal(0, 1, ink.shape), rng.uniform(0.4, 0.9))
        grain = np.clip(0.6 + 0.5 * grain / (grain.std() + 1e-9), 0.1, 1.0)
        return ink * grain * rng.uniform(0.55, 0.9)
    if pen == "ballpoint" and rng.random() < 0.5:
        flow = ndimage.gaussian_filter(rng.normal(0, 1, ink.shape), 4)
        return ink * np.clip(0.85 + 0.4 * flow / (flow.std() + 1e-9), 0.4, 1.0)
    return ink


def pen_colour(pen: str) -> np.ndarray | None:
    """A pencil is grey; other pens take photograph's random colour."""
    from .photo import PENCIL

    return PENCIL if pen == "pencil" else None


# ---------------------------------------------------------------- fonts


def font_path(file: str) -> Path | None:
    for folder in FONT_DIRS:
        for root, _, files in os.walk(folder):
            if file in files:
                return Path(root) / file
    return None


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def package_font(file: str) -> Path:
    """A font shipped with matplotlib (DejaVu, STIX, Computer Modern)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file


def available_fonts(split: str) -> dict[str, list[Path]]:
    """The installed files of a split's font families -> {family: [paths]} (families with no file left out)."""
    out = {}
    for family, (_, files) in TTF_FONTS.get(split, {}).items():
        paths = [p for p in (font_path(f) for f in files) if p is not None]
        if paths:
            out[family] = paths
    return out


def text_mask(path: str | os.PathLike, text: str, size: int = 160) -> np.ndarray:
    """``text`` set in a font -> its ink (float 0..1), cropped to the ink's box (a small blank for none)."""
    font = _font(str(path), size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(image).text((4 - left, 4 - top), text, font=font, fill=255)
    ink = np.asarray(image, np.float32) / 255.0
    rows, cols = np.flatnonzero(ink.max(1) > 0.1), np.flatnonzero(ink.max(0) > 0.1)
    if rows.size == 0:
        return np.zeros((8, 8), np.float32)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def place(ink: np.ndarray, field: tuple[int, int] = (FIELD, FIELD), box: float = BOX) -> np.ndarray:
    """A cropped ink patch scaled so its longer side is ``box`` px (keeping its aspect; smaller where the
    field is too small for that), centred in ``field``."""
    h, w = ink.shape
    factor = min(box / max(h, w), 0.94 * field[0] / h, 0.94 * field[1] / w)  # a word must fit its field
    new = (max(1, round(w * factor)), max(1, round(h * factor)))
    patch = np.asarray(Image.fromarray(np.uint8(np.clip(ink, 0, 1) * 255)).resize(new, Image.Resampling.LANCZOS),
                       np.float32) / 255.0
    out = np.zeros(field, np.float32)
    top, left = (field[0] - patch.shape[0]) // 2, (field[1] - patch.shape[1]) // 2
    out[max(top, 0) : max(top, 0) + patch.shape[0], max(left, 0) : max(left, 0) + patch.shape[1]] = \
        patch[: field[0], : field[1]]
    return out


def font_ink(path: str | os.PathLike, text: str, rng: np.random.Generator, field: tuple[int, int] = (FIELD, FIELD),
             box: float = BOX) -> tuple[np.ndarray, str]:
    """A digit (or a word) in a font -> (ink field, pen): writer slant and width, bolder or thinner
    strokes, pencil grain for 20 %."""
    ink = text_mask(path, text)
    slant, width = np.tan(np.deg2rad(rng.uniform(-8, 12))), rng.uniform(0.8, 1.2)
    h, w = ink.shape
    pad = int(abs(slant) * h) + 2
    ink = np.pad(ink, ((2, 2), (pad, pad)))
    matrix = np.array([[1.0, 0.0], [slant, 1.0 / width]])  # output (row, col) -> input
    out_w = int(ink.shape[1] * width) + 2
    centre_in, centre_out = (np.array(ink.shape) - 1) / 2, (np.array([ink.shape[0], out_w]) - 1) / 2
    ink = ndimage.affine_transform(ink, matrix, offset=centre_in - matrix @ centre_out,
                                   output_shape=(ink.shape[0], out_w), order=1)
    rows, cols = np.flatnonzero(ink.max(1) > 0.1), np.flatnonzero(ink.max(0) > 0.1)
    if rows.size:
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    ink = place(ink, field, box)
    stroke = int(rng.integers(-1, 3))
    if stroke < 0 and ndimage.distance_transform_edt(ink > 0.5).max() < 3:  # hairlines would vanish
        stroke = 1
    if stroke:
        morph = ndimage.grey_dilation if stroke > 0 else ndimage.grey_erosion
        y, x = np.ogrid[-abs(stroke) : abs(stroke) + 1, -abs(stroke) : abs(stroke) + 1]
        ink = morph(ink, footprint=x * x + y * y <= stroke * stroke + abs(stroke))
    pen = "pencil" if rng.random() < 0.2 else "felt-tip"
    return texture(ink, pen, rng), pen


# ---------------------------------------------------------------- optdigits


def optdigits_ink(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One 8×8 UCI optdigits bitmap (counts 0-16 of a 32×32 drawing's 4×4 blocks) -> an ink field: upsampled
    smoothly (cubic spline, then a soft threshold, as a stroke of about the original pen's width)."""
    grid = np.asarray(pixels, np.float64).reshape(8, 8) / 16.0
    big = ndimage.zoom(np.pad(grid, 1), 10, order=3, grid_mode=True, mode="grid-constant")
    big = ndimage.gaussian_filter(np.clip(big, 0, 1), 3)
    level = rng.uniform(0.35, 0.55)
    ink = 1 / (1 + np.exp(-(big - level) / 0.05))
    rows, cols = np.flatnonzero(ink.max(1) > 0.2), np.flatnonzero(ink.max(0) > 0.2)
    if rows.size:
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return place(ink)
