"""Manifest CSV: the public format for datasets, built-in or the user's own.

A manifest is a UTF-8 CSV file whose header names a ``label`` column and one column per modality it
uses, out of the registered ones (``image``, ``audio``, ``text`` and any added with
``fusion.modalities.register_modality``), in any order; each further row is one example::

    image,audio,text,label
    images/train_00000.png,audio/train_00000_flite-kal.wav,it's a seven,7
    photos/cat.jpg,,a cat,cat
    ,clips/hello.wav,,greeting

- ``image`` / ``audio``: a file path, relative to the folder holding the CSV (absolute paths work
  too). Any format the encoders read: PNG/JPEG/... images, WAV/FLAC/OGG audio.
- ``text``: free text; quote it as CSV does when it holds commas, quotes or newlines.
- ``label``: any string (the classes are the distinct labels found in the training file). An empty
  ``label`` cell marks a **negative**: an example of none of the classes (a face, a room, "hello"), read
  as ``label = None``. Training teaches the model to say so (``fusion.predict`` then returns
  ``label=None``) and calibrates when to on the validation file's rows, negatives included.
- An empty cell (or a column left out) means the modality is absent for that example; each row needs
  at least one. A registered modality whose values are files (``Modality.files``) reads paths like
  ``image``; the others read the cell itself like ``text``.
- In a project zip (``read_manifest_or_zip``) the file paths must be relative and stay inside the zip.
"""

from __future__ import annotations

import csv
import os
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .. import modalities as registry
from ..errors import ManifestError

MAX_ARCHIVE_BYTES = 400 * 2**20  # uncompressed: 400 examples of at most a few MB each


def write_manifest(path: str | os.PathLike, rows: Iterable[Mapping[str, str]]) -> Path:
    """Write ``rows`` (mappings of modality names and ``label``) to the CSV ``path``; returns the path.

    The columns are the registered modalities the rows name, then ``label``. Absolute file paths are
    stored relative to the CSV's folder so the dataset can be moved.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    columns = [m for m in registry.names() if any(m in row for row in rows)] + ["label"]
    files = [m for m in columns[:-1] if registry.modality(m).files]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            out = {column: "" if row.get(column) is None else str(row[column]) for column in columns}
            for column in files:
                if out[column] and os.path.isabs(out[column]):
                    out[column] = Path(os.path.relpath(out[column], path.parent)).as_posix()
            writer.writerow(out)
    return path


def read_manifest(path: str | os.PathLike, confined: bool = False) -> list[dict]:
    """Read and validate a manifest. ``confined`` (a zip's manifest, unpacked on a server): its files must lie
    in the CSV's folder, named by relative paths, and messages name the file by its name only.

    Returns one dict per row with a key per registered modality (absolute path strings for file
    modalities, the cell's text for the others; ``None`` when absent) and ``label``. Raises
    ``ManifestError`` naming the file and line for a file that is not a UTF-8 CSV, a wrong header, a row
    without any modality, or a missing file. An empty label cell gives ``label`` None (a negative).
    """
    path = Path(path)
    shown = path.name if confined else path
    if not path.is_file():
        raise ManifestError(f"{shown}: no such manifest file{' (it is a folder)' if path.is_dir() else ''}.")
    try:
        return _read_rows(path, shown, confined)
    except UnicodeDecodeError:
        raise ManifestError(f"{shown}: not a UTF-8 text file.") from None
    except csv.Error as error:  # e.g. a field over the csv module's 131,072-character limit
        raise ManifestError(f"{shown}: not a readable CSV ({error}).") from None


def _read_rows(path: Path, shown, confined: bool) -> list[dict]:
    known = registry.names()
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets often save a BOM
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        columns = [c for c in header if c != "label"]
        if header.count("label") != 1 or not columns or len(set(header)) != len(header) \
                or not set(columns) <= set(known):
            got = ",".join(header) or "nothing"
            raise ManifestError(f"{shown}: the header must name a label column and some of the modality columns "
                                f"{','.join(known)}, each once; got {got}.")
        rows = []
        for cells in reader:
            where = f"{shown}, line {reader.line_num}"
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, e.g. at the end of a hand-edited file
            if len(cells) != len(header):
                raise ManifestError(f"{where}: expected {len(header)} cells, found {len(cells)}.")
            cell = dict(zip(header, cells))
            row: dict = {m: None for m in known} | {"label": cell["label"].strip() or None}
            for column in columns:
                value = cell[column]
                if not value.strip():
                    continue
                if not registry.modality(column).files:
                    row[column] = value
                    continue
                name = value.strip()
                file = Path(name) if os.path.isabs(name) else path.parent / name
                if confined and (os.path.isabs(name) or not file.resolve().is_relative_to(path.parent.resolve())):
                    raise ManifestError(f"{where}: {column} file {name!r} is not inside the zip; a project zip's "
                                        "manifest may only name files in the zip, by relative paths.")
                if not file.is_file():
                    raise ManifestError(f"{where}: {column} file {name if confined else file} does not exist.")
                row[column] = str(file.resolve())
            if all(row[m] is None for m in known):
                raise ManifestError(f"{where}: no {', '.join(columns)}; at least one is needed.")
            rows.append(row)
    return rows


def extract_archive(path: str | Path, into: str | Path, max_bytes: int = MAX_ARCHIVE_BYTES) -> Path:
    """Unpack a project zip safely into ``into`` -> that folder. Members may not leave it (no absolute paths,
    no "..") and the whole may not unpack to more than ``max_bytes``."""
    path, into = Path(path), Path(into)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ManifestError(f"{path.name} is not a zip file.") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > max_bytes:
            raise ManifestError(f"{path.name} unpacks to more than {max_bytes // 2**20} MB.")
        into.mkdir(parents=True, exist_ok=True)
        for member in members:
            target = (into / member.filename).resolve()
            if not target.is_relative_to(into.resolve()):
                raise ManifestError(f"{path.name} holds a file outside its folder ({member.filename!r}).")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
    return into


def read_manifest_or_zip(path: str | os.PathLike, unpack_into: str | os.PathLike) -> list[dict]:
    """``read_manifest`` of a CSV, or of the manifest.csv in a zip (the Teach tab's download), which is
    unpacked into ``unpack_into`` first (its files must stay there while the rows are used)."""
    if Path(path).suffix.lower() != ".zip":
        return read_manifest(path)
    folder = extract_archive(path, unpack_into)
    if not (folder / "manifest.csv").is_file():
        raise ManifestError(f"{Path(path).name} holds no manifest.csv.")
    return read_manifest(folder / "manifest.csv", confined=True)
