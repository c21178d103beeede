"""Manifest CSV: the public format for datasets, built-in or the user's own.

A manifest is a UTF-8 CSV file whose header names exactly the columns ``image,audio,text,label``
(in any order); each further row is one example::

    image,audio,text,label
    images/train_00000.png,audio/train_00000_flite-kal.wav,it's a seven,7
    photos/cat.jpg,,a cat,cat
    ,clips/hello.wav,,greeting

- ``image`` / ``audio``: a file path, relative to the folder holding the CSV (absolute paths work
  too). Any format the encoders read: PNG/JPEG/... images, WAV/FLAC/OGG audio.
- ``text``: free text; quote it as CSV does when it holds commas, quotes or newlines.
- ``label``: any non-empty string (the classes are the distinct labels found in the training file).
- An empty cell means the modality is absent for that example; each row needs at least one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import ManifestError

COLUMNS = ("image", "audio", "text", "label")
PATH_COLUMNS = ("image", "audio")


def write_manifest(path: str | os.PathLike, rows: Iterable[Mapping[str, str]]) -> Path:
    """Write ``rows`` (mappings with the four columns) to the CSV ``path``; returns the path.

    Absolute image/audio paths are stored relative to the CSV's folder so the dataset can be moved.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            out = {column: "" if row.get(column) is None else str(row[column]) for column in COLUMNS}
            for column in PATH_COLUMNS:
                if out[column] and os.path.isabs(out[column]):
                    out[column] = Path(os.path.relpath(out[column], path.parent)).as_posix()
            writer.writerow(out)
    return path


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Read and validate a manifest.

    Returns one dict per row with keys ``image``, ``audio`` (absolute path strings), ``text`` and
    ``label`` (strings); an absent modality is ``None``. Raises ``ManifestError`` naming the file and line
    for a file that is not a UTF-8 CSV, a wrong header, a row without a label or without any modality, or
    a missing image/audio file.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file{' (it is a folder)' if path.is_dir() else ''}.")
    try:
        return _read_rows(path)
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text file.") from None
    except csv.Error as error:  # e.g. a field over the csv module's 131,072-character limit
        raise ManifestError(f"{path}: not a readable CSV ({error}).") from None


def _read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets often save a BOM
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        if sorted(header) != sorted(COLUMNS):
            got = ",".join(header) or "nothing"
            raise ManifestError(f"{path}: the header must name the columns {','.join(COLUMNS)}; got {got}.")
        rows = []
        for cells in reader:
            where = f"{path}, line {reader.line_num}"
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, e.g. at the end of a hand-edited file
            if len(cells) != len(header):
                raise ManifestError(f"{where}: expected {len(header)} cells, found {len(cells)}.")
            row: dict = dict(zip(header, cells))
            row["label"] = row["label"].strip()
            if not row["label"]:
                raise ManifestError(f"{where}: the label is empty.")
            for column in PATH_COLUMNS:
                value = row[column].strip()
                if not value:
                    row[column] = None
                    continue
                file = Path(value) if os.path.isabs(value) else path.parent / value
                if not file.is_file():
                    raise ManifestError(f"{where}: {column} file {file} does not exist.")
                row[column] = str(file.resolve())
            row["text"] = row["text"] if row["text"].strip() else None
            if row["image"] is None and row["audio"] is None and row["text"] is None:
                raise ManifestError(f"{where}: no image, audio or text; at least one is needed.")
            rows.append({column: row[column] for column in COLUMNS})
    return rows
