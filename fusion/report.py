"""An explanation to take away: one folder (or zip) per prediction, from the page's button or the CLI.

    prediction.json    Prediction.to_dict(): label, probabilities, weights, Shapley values, token weights...
    report.html        the page's panels on their own (tables, maps, the audio timeline, the words)
    image_regions.png  the token weights over the crop the network saw (when there was a picture)
    your_picture.png   the same weights over the picture
"""

from __future__ import annotations

import json
import zipfile
from html import escape
from pathlib import Path

from PIL import Image

from .pipeline import Prediction
from .views import CSS, counted_html, headline, image_maps, maps_html, what_if_html, words_html


def write_report(p: Prediction, folder: str | Path) -> list[Path]:
    """Write the report files of ``p`` into ``folder`` (created) -> their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "prediction.json"]
    written[0].write_text(json.dumps(p.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, pixels in zip(("image_regions.png", "your_picture.png"), image_maps(p)):
        if pixels is not None:
            Image.fromarray(pixels).save(folder / name)
            written.append(folder / name)
    notes = "".join(f"<li>{escape(note)}</li>" for note in p.notes)
    summary = escape(headline(p).replace("**", ""))
    page = (f"<!doctype html><meta charset=utf-8><title>Fusion Lens: {escape(p.answer)}</title>"
            f"<style>:root {{--text-md: 16px; --text-sm: 14px; --body-text-color: #1f2937; "
            f"--border-color-primary: #d1d5db; --background-fill-secondary: #f3f4f6}} body {{font-family: "
            f"system-ui, sans-serif; max-width: 900px; margin: 2em auto}} .fl-panel {{margin-bottom: 1.5em}} "
            f"{CSS}</style>"
            f"<h1>Fusion Lens: {escape(p.answer)}</h1><p>{summary} ({escape(p.strategy)} fusion)</p>"
            f"{f'<ul>{notes}</ul>' if notes else ''}{counted_html(p)}{maps_html(p)}{words_html(p)}"
            f"{what_if_html(p) if len(p.modalities) > 1 else ''}")
    written.append(folder / "report.html")
    written[-1].write_text(page, encoding="utf-8")
    return written


def zip_report(p: Prediction, folder: str | Path) -> Path:
    """The report of ``p`` as ``folder/fusion-lens-report.zip`` (the files are written beside it)."""
    files = write_report(p, Path(folder) / "report")
    archive = Path(folder) / "fusion-lens-report.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f.name)
    return archive
