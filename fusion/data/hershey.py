"""Hershey vector fonts (Debian's ``hershey-fonts-data``: ``/usr/share/hershey-fonts/*.jhf``) as pen strokes.

A ``.jhf`` file holds one glyph per record, in ASCII order from the space (to 127, a filled box)::

    12345 18H\\QFNGLJKOKRLWNZQ[S[VZXWYRYOXJVGSFQF

- columns 1-5: a glyph number (ignored), 6-8: the number of coordinate pairs that follow, counting the
  first pair, which is the glyph's left and right margin;
- then the pairs, two characters each: a coordinate is the character's code minus ``ord("R")`` (x to the
  right, y downwards, the baseline near +9 and the cap height near -12); the pair " R" lifts the pen.

A record longer than a line goes on in the next line(s) (the original files wrap at 72 columns), so the
reader joins lines until the record has its announced length.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

HERSHEY_DIR = Path(os.environ.get("FUSION_HERSHEY_DIR", "/usr/share/hershey-fonts"))
FIRST_CHAR = 32  # a .jhf font's glyphs start at the space


@cache
def read_font(path: str | os.PathLike) -> tuple[tuple[np.ndarray, ...], ...]:
    """All glyphs of a ``.jhf`` file, in ASCII order from the space: each a tuple of strokes, a stroke a
    float (n, 2) array of (x, y) points, y downwards."""
    return tuple(parse_glyph(record) for record in _records(Path(path).read_text(encoding="latin-1")))


def _records(text: str) -> list[str]:
    records: list[str] = []
    current, need = "", 0
    for line in text.splitlines():
        line = line.rstrip("\r\n")
        if not line.strip() and not current:
            continue
        if current and len(current) < need:
            current += line
        else:
            if current:
                records.append(current)
            current, need = line, 8 + 2 * int(line[5:8])
    if current:
        records.append(current)
    return records


def parse_glyph(record: str) -> tuple[np.ndarray, ...]:
    """One ``.jhf`` record -> its strokes (the margins pair is dropped)."""
    pairs = int(record[5:8])
    body = record[10 : 8 + 2 * pairs]  # after the margins
    strokes, current = [], []
    for k in range(0, len(body) - 1, 2):
        pair = body[k : k + 2]
        if pair == " R":
            if current:
                strokes.append(np.array(current, np.float64))
            current = []
        else:
            current.append((ord(pair[0]) - ord("R"), ord(pair[1]) - ord("R")))
    if current:
        strokes.append(np.array(current, np.float64))
    return tuple(strokes)


def glyph(font: str, char: str) -> tuple[np.ndarray, ...]:
    """The strokes of ``char`` in the Hershey font named ``font`` (a file stem, e.g. ``"scripts"``)."""
    glyphs = read_font(HERSHEY_DIR / f"{font}.jhf")
    return glyphs[ord(char) - FIRST_CHAR]


def margins(font: str, char: str) -> tuple[int, int]:
    """A glyph's left and right margins (x of its cell's edges), which set the advance when writing words."""
    record = _records((HERSHEY_DIR / f"{font}.jhf").read_text(encoding="latin-1"))[ord(char) - FIRST_CHAR]
    return ord(record[8]) - ord("R"), ord(record[9]) - ord("R")


def text_strokes(font: str, text: str) -> list[np.ndarray]:
    """A word or line in a Hershey font: the glyphs' strokes side by side, each moved by the advances."""
    strokes, x = [], 0.0
    for char in text:
        left, right = margins(font, char)
        strokes.extend(s + np.array([x - left, 0.0]) for s in glyph(font, char))
        x += right - left
    return strokes


def available() -> bool:
    return (HERSHEY_DIR / "futural.jhf").is_file()
