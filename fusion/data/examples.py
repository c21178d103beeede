"""The app's example gallery and the committed test sample, picked from a built digits test split.

    python -m fusion data examples --source DATA_DIR --out assets/examples
    python -m fusion data sample --source DATA_DIR --out tests/data/digits_sample

Writes copies of the chosen test images and clips plus ``examples.csv`` (the manifest format): agreeing
triplets, single-modality rows and conflict triplets (the image shows one digit, the voice and the
text say another), which are the rows that make the weights move.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .digits import NUMBER_WORDS
from .manifest import read_manifest, write_manifest

AGREEING = (7, 3, 0)  # digits of the full triplets
SINGLE = {"image": 4, "audio": 9, "text": 2}  # one-modality rows
CONFLICTS = ((3, 8), (1, 7))  # (digit shown, digit said and typed)


def build_examples(source: str | Path, out: str | Path) -> Path:
    """Pick examples from ``source``/test.csv into ``out``; returns the written examples.csv."""
    rows = read_manifest(Path(source) / "test.csv")
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        if row["image"] and row["audio"] and row["text"]:
            by_label.setdefault(row["label"], []).append(row)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    def copy(path: str, name: str) -> str:
        target = out / f"{name}{Path(path).suffix}"
        shutil.copyfile(path, target)
        return str(target)

    def pick(digit: int, k: int = 0) -> dict:
        return by_label[str(digit)][k]

    chosen = []
    for digit in AGREEING:
        row = pick(digit)
        chosen.append({"image": copy(row["image"], f"image_{digit}"), "audio": copy(row["audio"], f"speech_{digit}"),
                       "text": row["text"], "label": str(digit)})
    for modality, digit in SINGLE.items():
        row = pick(digit, 1)
        value = row[modality] if modality == "text" else copy(row[modality], f"{modality}_{digit}_only")
        chosen.append({"image": "", "audio": "", "text": "", modality: value, "label": str(digit)})
    for shown, said in CONFLICTS:
        image, voice = pick(shown, 2), pick(said, 2)
        chosen.append({"image": copy(image["image"], f"conflict_image_{shown}"),
                       "audio": copy(voice["audio"], f"conflict_speech_{said}"),
                       "text": f"it's {NUMBER_WORDS[said]}", "label": str(said)})
    return write_manifest(out / "examples.csv", chosen)


def build_sample(source: str | Path, out: str | Path, per_class: int = 5) -> Path:
    """The first ``per_class`` complete test rows of each label, copied with their files into ``out``.

    Committed under tests/ so the shipped model is checked against builder output on every run.
    """
    rows = [r for r in read_manifest(Path(source) / "test.csv") if r["image"] and r["audio"] and r["text"]]
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    taken: dict[str, int] = {}
    chosen = []
    for row in rows:
        if taken.get(row["label"], 0) >= per_class:
            continue
        taken[row["label"]] = taken.get(row["label"], 0) + 1
        copies = {}
        for column in ("image", "audio"):
            copies[column] = str(out / Path(row[column]).name)
            shutil.copyfile(row[column], copies[column])
        chosen.append({**row, **copies})
    return write_manifest(out / "test.csv", chosen)
