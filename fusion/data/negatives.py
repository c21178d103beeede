"""What is not a digit: pictures, sounds and texts for the rows labelled "none of the classes".

Every source belongs to one split ("train", "val") or to the check sets ("check", see
``fusion.data.checks``), never to two:

- images (``IMAGE_KINDS``): letters and words in handwriting and Hershey fonts (the split's own fonts,
  ``handwriting.TTF_FONTS`` and ``HERSHEY_LETTER_FONTS``, and only letters no digit is mistaken for),
  printed text, shapes, scribbles, blank or ruled paper, all photographed like the digits
  (``photo.photograph``); procedural scenes (face-like drawings, rooms, buildings, landscapes, flowers,
  textures ...) and crops of the photos bundled in installed packages (``PHOTOS``), through
  ``photo.camera``;
- speech (``SPOKEN``): words, letters and short sentences that are no number, and as many phrases made
  from the split's vocabulary (``made_text``), in the split's voices; non-speech (``SOUNDS``): noise,
  hum, beeps, clicks, synthesised melodies and chords, chirps; the check sets' include recorded music;
- texts (``TEXTS``): greetings, questions, descriptions, letters, keyboard mashing; for
  ``MADE_TEXT_SHARE`` of them words, word runs and sentences made from the split's half of MiniLM's
  WordPiece vocabulary (``vocabulary``, no check text's word in it) in the split's sentence frames
  (``SENTENCES``), and for ``PROSE_SHARE`` plain sentences of other packages' docstrings (``prose``,
  ``PROSE_MODULES``); the check sets' come from Python's own documentation (``this``, module docstrings).

``names_a_number`` keeps every negative text and spoken phrase free of digits and number words.
"""

from __future__ import annotations

import argparse
import csv
import logging
import pathlib
import re
import zlib
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage, signal

from ..textnorm import CARDINALS, normalize
from . import handwriting as hw
from .photo import camera, photograph

# Letters no digit is mistaken for (no O/o/D/Q like 0, I/l/i/j/J/L/T like 1 or 7, Z/z like 2, S/s like 5,
# b/G like 6, B like 8, g/q like 9, h/y like an open 4).
SAFE_LETTERS = "ACEFHKMNPRUVWXYacefkmnprtuvwx"
WORDS = {
    "train": ("hello", "cat", "yes", "coffee", "the", "paper", "note", "milk", "bread", "hi", "ok", "name", "date",
              "john", "anna", "love", "home", "exit", "open", "stop", "fox", "dog", "abc", "xyz", "shop", "sale",
              "test", "draft", "todo", "thanks", "maria", "quiz", "hey", "sun", "apple", "wow", "help", "map"),
    "val": ("tea", "book", "green", "moon", "hat", "lamp", "river", "pizza", "kiwi", "sam", "boat", "why", "ink"),
    "check": ("garden", "window", "music", "jazz", "tiger", "piano", "cloud", "ivy", "mango", "bell", "lemon",
              "oscar", "grape", "hero"),
}
PRINTED_FONTS = {  # matplotlib ships these
    "train": ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif-Italic.ttf"),
    "val": ("DejaVuSansMono.ttf",),
    "check": ("STIXGeneral.ttf", "cmr10.ttf", "cmtt10.ttf"),
}
IMAGE_KINDS = {
    "train": {"letter": 0.14, "word": 0.14, "printed": 0.07, "shapes": 0.07, "scribble": 0.05, "blank": 0.08,
              "face": 0.1, "room": 0.08, "building": 0.07, "landscape": 0.05, "texture": 0.07, "photo": 0.08},
    "val": {"letter": 0.18, "word": 0.18, "printed": 0.1, "blank": 0.1, "shapes": 0.08, "flowers": 0.14,
            "tiles": 0.1, "photo": 0.12},
    "check": {"photo": 0.35, "letter": 0.1, "word": 0.1, "printed": 0.05, "desk": 0.1, "voronoi": 0.1,
              "screen": 0.1, "plaid": 0.1},
}
# Photos bundled in installed Python packages, as (package, path in it).
PHOTOS = {
    "train": (("gradio", "media_assets/images/lion.jpg"), ("gradio", "media_assets/images/cheetah.jpg"),
              ("gradio", "media_assets/images/cheetah1.jpg"), ("gradio", "test_data/cheetah2.jpg")),
    "val": (("gradio", "media_assets/images/tower.jpg"),),
    "check": (("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg"),
              ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), ("gradio", "media_assets/images/groot.jpeg")),
}

SPOKEN = {
    "train": ("hello", "yes", "no", "okay", "thank you", "please", "apple", "water", "coffee", "window", "table",
              "music", "computer", "yellow", "purple", "morning", "happy", "sorry", "maybe", "stop", "hello there",
              "good morning", "what is this", "I don't know", "nothing", "how are you", "see you later",
              "turn left", "open the door", "bee", "kay", "em", "ex", "why", "cue", "um", "hmm", "cat", "dog",
              "banana", "red", "blue", "goodbye", "wait", "listen", "the cat sat on the mat", "where is it"),
    "val": ("hi", "thanks a lot", "orange", "green", "pencil", "river", "mountain", "sunday", "chocolate",
            "are you there", "left", "right", "pee", "jay", "nice weather today", "whatever"),
    "check": ("good evening", "excuse me", "elephant", "umbrella", "library", "banana bread", "keyboard",
              "see you soon", "what time is it", "I like pizza", "tuesday", "potato", "very interesting",
              "ask me later", "rabbit", "silver", "wonderful", "cheers"),
}
SOUNDS = {"train": ("white-noise", "pink-noise", "hum", "beeps", "clicks", "room", "melody", "chords"),
          "val": ("chirp", "dial-tones"),
          "check": ("music-sax", "music-cantina", "warble", "claps", "rain")}
MUSIC = {"music-sax": ("gradio", "media_assets/audio/sax.wav"),
         "music-cantina": ("gradio", "media_assets/audio/cantina.wav")}
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11, 12)  # semitones above the root
SOUND_SHARE = 0.25  # of negative clips: non-speech
# espeak voices of the check sets: accents no training row uses, with variants no split uses.
CHECK_ACCENTS = ("en-gb-scotland", "en-us-nyc", "en-029", "en-gb-x-gbcwmd")
CHECK_VARIANTS = ("Alicia", "Andy", "Annie", "grandma", "croak", "m8", "klatt5", "klatt6", "whisperf", "Gene")
CHECK_FLITE = ("slt",)  # the one flite voice neither train nor val has

TEXTS = {
    "train": ("hello", "hi there", "what is this?", "no idea", "nothing", "a cat", "test", "asdf", "lorem ipsum",
              "abc", "xyz", "ok", "lol", "hmm", ":)", "?", "...", "how are you today", "is anybody there",
              "just testing", "hello world", "my dog", "a picture of my kitchen", "this is a flower", "nope",
              "the quick brown fox jumps over the lazy dog", "qwerty", "blah blah", "can you see me", "my face",
              "good morning", "thanks", "i don't know", "no number here", "it's a cat", "k", "x", "m",
              "a photo of a building", "what do you see", "random text", "sorry, wrong picture", "yes",
              "looks like a letter", "hey", "bye", "a tree", "my room", "just a blank page", "nothing to see"),
    "val": ("greetings", "who are you", "a sunny day", "cool", "hmm not sure", "ghjk", "the lamp is on",
            "what's up", "a red car", "empty", "p", "where am i", "a bowl of soup", "it is raining",
            "just a doodle", "see you"),
}
# Sentence frames whose slots ({}) take vocabulary words (``made_text``); the splits share none.
SENTENCES = {
    "train": ("the {} is {}", "{} and {}", "i {} the {}", "where is my {}?", "a {} of {}", "we visited the {}",
              "we went to the {}", "a {} for {}", "time to {}", "thanks for the {}", "i want to {} the {}",
              "have you seen the {}?", "my {} is {} today", "this is a {} {}", "{}, {} and {}", "the {} of the {}",
              "i like {} with {}", "please {} the {}", "look at this {}", "there is a {} on the {}",
              "can i have some {}", "they {} every {}", "is this a {}?", "my favourite {} is {}",
              "she said {} was {}", "the {} {} near the {}", "just a {} {}", "{} is not {}"),
    "val": ("what a {} {}", "the {} was {}", "they have a {}", "is it {}?", "{} or {}", "our {} likes {}",
            "the {} by the {}", "no {} here", "going to {}", "good for {}"),
}
MADE_TEXT_SHARE, PROSE_SHARE = 0.4, 0.25  # of train and val negative texts
# Modules whose docstrings give each split's prose (``prose``): packages the project installs anyway.
PROSE_MODULES = {
    "train": ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.ma", "scipy.signal", "scipy.ndimage",
              "scipy.optimize", "scipy.interpolate", "scipy.sparse", "scipy.spatial", "scipy.integrate",
              "matplotlib.pyplot", "matplotlib.colors", "matplotlib.figure", "PIL.Image", "PIL.ImageDraw"),
    "val": ("sklearn", "sklearn.cluster", "sklearn.decomposition", "sklearn.linear_model", "sklearn.ensemble",
            "sklearn.svm", "sklearn.metrics", "sklearn.model_selection", "sklearn.preprocessing"),
}
# Letter runs that say a number inside a word ("often", "someone", "fortune"): the spoken vocabulary leaves
# out words with one, so that no made spoken phrase sounds like a digit (typed ones may have them).
NUMBER_PARTS = ("zero", "one", "two", "three", "four", "for", "five", "six", "seven", "eight", "ate", "nine",
                "ten", "won", "twen", "thir", "fift", "hundred", "thousand", "illion", "dozen")
# The check sets' texts: sentences of Python's own docs that name no number (``check_texts``), and these.
CHECK_WORDS = ("serendipity", "a walk in the park", "please advise", "the weather is nice", "purple elephants",
               "how do i reset my password", "quantum", "hi, anyone home?", "brb", "meh", "a blue door",
               "wxyz", "have a nice day", "lunch?", "the end")
PROSE = re.compile(r"[A-Z][a-z]+( [A-Za-z][a-z'-]*,?)+[.!?]$")  # a plain sentence, no code
_NUMBER_WORDS = set(CARDINALS) | {
    "oh", "nought", "naught", "nil", "zilch", "zip", "nada", "wun", "deuce", "trey", "fower", "fife", "niner",
    "dozen", "once", "twice", "thrice", "single", "double", "triple", "pair", "couple", "half", "first", "second",
    "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "none"}
_SOUNDS_LIKE_NUMBERS = {"ate", "for", "fore", "to", "too", "won", "tree", "free", "fine", "heaven", "nein", "sex",
                        "sticks", "tin", "o"}


def names_a_number(text: str, spoken: bool = False) -> bool:
    """Whether a text has a digit or a word for a number (``spoken``: or a word that sounds like one, "to",
    "for", "won" ...): such a text or phrase is no negative."""
    text = normalize(text).lower()
    if re.search(r"\d", text):
        return True
    words = re.findall(r"[a-z]+", text)
    numbers = _NUMBER_WORDS | _SOUNDS_LIKE_NUMBERS if spoken else _NUMBER_WORDS
    return any(word in numbers for word in words)


# ---------------------------------------------------------------- texts

# How a typed text of the digits data ends, and how often one of its letters is dropped: the digit texts
# (``fusion.data.digits``) and the negative ones alike, so the two differ only in what they say.
ENDINGS = (".", "!", "?", "...", "!!")
TYPO_RATE = 0.02  # per letter


def negative_text(split: str, rng: np.random.Generator) -> tuple[str, str]:
    """A text of the split's that names no number -> (text, source), with casing, endings and typos: for
    train and val, ``MADE_TEXT_SHARE`` of them made from the split's half of the vocabulary
    (``made_text``, source ``words-<split>``), ``PROSE_SHARE`` sentences of the split's packages'
    documentation (``prose``, ``prose-<split>``), the rest from ``TEXTS``."""
    draw = rng.random() if split != "check" else 1.0
    if draw < MADE_TEXT_SHARE:
        text, source = made_text(split, rng), f"words-{split}"
    elif draw < MADE_TEXT_SHARE + PROSE_SHARE:
        sentences = prose(split)
        text, source = sentences[rng.integers(len(sentences))], f"prose-{split}"
    else:
        pool = TEXTS[split] if split != "check" else check_texts()
        text, source = pool[rng.integers(len(pool))], f"text-{split}"
    style = rng.random()
    if style < 0.1:
        text = text.upper()
    elif style < 0.35:
        text = text[:1].upper() + text[1:]
    if rng.random() < 0.15:
        text += ENDINGS[rng.integers(len(ENDINGS))]
    chars = [c for c in text if not (c.isalpha() and rng.random() < TYPO_RATE)]  # dropped letters
    text = "".join(chars) or text
    return text, source


def made_text(split: str, rng: np.random.Generator, spoken: bool = False) -> str:
    """A phrase of the split's vocabulary words: one word (now and then two run together, as a rare word
    the tokenizer splits), a few words, or a sentence of ``SENTENCES[split]`` with words in its slots.
    ``spoken``: only words and frames that do not sound like a number either ("to", "for", "often")."""
    words, frames = vocabulary(split, spoken), sentence_frames(split, spoken)

    def word() -> str:
        return words[rng.integers(len(words))]

    style = rng.random()
    if style < 0.3:
        return word() + word() if rng.random() < 0.25 else word()
    if style < 0.5:
        return " ".join(word() for _ in range(rng.integers(2, 6)))
    frame = frames[rng.integers(len(frames))]
    return frame.format(*(word() for _ in range(frame.count("{}"))))


@cache
def sentence_frames(split: str, spoken: bool = False) -> tuple[str, ...]:
    """``SENTENCES[split]``, for ``spoken`` phrases only those whose own words sound like no number."""
    return tuple(f for f in SENTENCES[split] if not (spoken and names_a_number(f.replace("{}", ""), spoken=True)))


@cache
def vocabulary(split: str, spoken: bool = False) -> tuple[str, ...]:
    """The split's half of the whole words in MiniLM's WordPiece vocabulary (bert-base-uncased's): alphabetic,
    three letters or more, none a check text's word, none naming a number (``spoken``: nor sounding like
    one, not even inside: "for", "someone", "often"); train and val divide them by a hash of the word."""
    from ..encoders.text import minilm_folder

    held_out = {w for text in check_texts() for w in re.findall(r"[a-z]+", text.lower())}
    words = []
    for w in (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").split():
        if len(w) >= 3 and w.isascii() and w.isalpha() and w not in held_out and not names_a_number(w, spoken) \
                and not (spoken and any(part in w for part in NUMBER_PARTS)):
            words.append(w)
    return tuple(w for w in words if (zlib.crc32(w.encode()) % 4 == 0) == (split == "val"))


@cache
def prose(split: str) -> tuple[str, ...]:
    """Plain sentences of the docstrings of the split's modules (``PROSE_MODULES``) and of their public
    functions and classes: long sentences, as people type them, from other documentation than the check
    sets' (Python's own); validation's leave out training's."""
    import importlib

    docs = []
    for name in PROSE_MODULES[split]:
        module = importlib.import_module(name)
        own = [getattr(module, a) for a in sorted(dir(module)) if not a.startswith("_")]
        own = [x for x in own if callable(x) and getattr(x, "__module__", "").split(".")[0] == name.split(".")[0]]
        docs += [module.__doc__] + [x.__doc__ for x in own]  # not what a module imports from the standard library
    held_out = set(check_texts()) | (set(prose("train")) if split == "val" else set())
    found = plain_sentences("\n\n".join(d for d in docs if isinstance(d, str)))
    return tuple(dict.fromkeys(s for s in found if s not in held_out))


def plain_sentences(docs: str) -> list[str]:
    """The sentences of a text that read as plain prose (``plain``)."""
    return [s for s in (" ".join(s.replace("*", "").split()) for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", docs))
            if plain(s)]


def plain(sentence: str) -> bool:
    """Whether a sentence reads as plain prose (``PROSE``: no code), of 3-16 words, naming no number."""
    return 3 <= len(sentence.split()) <= 16 and bool(PROSE.match(sentence)) and not names_a_number(sentence)


@cache
def check_texts() -> tuple[str, ...]:
    """Sentences of Python's bundled documentation that name no number: the Zen of Python (``this``) and the
    docstrings of some standard modules, 3-16 words each, plus ``CHECK_WORDS``."""
    import codecs
    import contextlib
    import io
    import json
    import string
    import textwrap

    with contextlib.redirect_stdout(io.StringIO()):
        import this  # prints the Zen on first import
    zen = [" ".join(line.replace("*", "").split()) for line in codecs.decode(this.s, "rot13").splitlines()[2:]]
    docs = " ".join(m.__doc__ or "" for m in (json, string, textwrap, re, csv, argparse, logging, pathlib))
    words = [w for w in CHECK_WORDS if not names_a_number(w)]
    return tuple(dict.fromkeys([*filter(plain, zen), *plain_sentences(docs), *words]))


# ---------------------------------------------------------------- speech and sounds


def spoken_jobs(split: str, voices: list[str], count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``count`` (voice, phrase) pairs of a split's negative phrases, every phrase and voice used evenly."""
    phrases = [p for p in SPOKEN[split] if not names_a_number(p, spoken=True)]
    if split != "check":  # and as many made phrases again: a fixed list like SPOKEN's, whatever the build seed
        made = np.random.default_rng([len(phrases), 9])
        phrases += [made_text(split, made, spoken=True) for _ in range(len(phrases))]
    order = [phrases[k % len(phrases)] for k in rng.permutation(max(count, len(phrases)))[:count]]
    return [(voices[k % len(voices)], phrase) for k, phrase in zip(rng.permutation(count), order)]


def check_voices(size: str) -> list[str]:
    voices = [f"flite-{v}" for v in CHECK_FLITE] + [f"espeak-{a}+{v}" for a in CHECK_ACCENTS for v in CHECK_VARIANTS]
    return voices[:1] + voices[1::9] if size == "small" else voices


def sound(kind: str, rng: np.random.Generator, rate: int = 16_000) -> np.ndarray:
    """A non-speech clip of 0.4-2.5 s, float samples at ``rate``."""
    n = int(rng.uniform(0.4, 2.5) * rate)
    t = np.arange(n) / rate
    if kind in MUSIC:
        package, path = MUSIC[kind]
        samples, source_rate = _package_audio(package, path)
        length = min(len(samples), int(n * source_rate / rate))
        start = int(rng.integers(0, max(1, len(samples) - length)))
        piece = samples[start : start + length]
        return signal.resample_poly(piece, rate, source_rate) if source_rate != rate else piece
    if kind in ("white-noise", "pink-noise"):
        x = rng.normal(0, 1, n)
        return signal.lfilter([1.0], [1.0, -0.97], x) if kind == "pink-noise" else x
    if kind == "hum":
        base = rng.choice((50.0, 60.0, 100.0, 120.0))
        return sum(rng.uniform(0.1, 1) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6)) for k in range(1, 6))
    if kind == "beeps":
        freq = rng.uniform(400, 2000)
        on = (t * rng.uniform(2, 6)) % 1 < rng.uniform(0.2, 0.6)
        return np.sin(2 * np.pi * freq * t) * on
    if kind in ("clicks", "claps", "rain"):
        x = np.zeros(n)
        rate_per_s = {"clicks": rng.uniform(2, 10), "claps": rng.uniform(3, 8), "rain": rng.uniform(80, 300)}[kind]
        hits = rng.integers(0, n, max(1, int(rate_per_s * n / rate)))
        x[hits] = rng.uniform(0.3, 1, hits.size)
        tail = {"clicks": 0.002, "claps": 0.03, "rain": 0.004}[kind]
        k = np.arange(int(tail * 4 * rate) + 1)
        return signal.fftconvolve(x, rng.normal(0, 1, k.size) * np.exp(-k / (tail * rate)))[:n]
    if kind == "room":
        return signal.lfilter([1.0], [1.0, -0.99], rng.normal(0, 1, n)) * 0.05 + rng.normal(0, 0.01, n)
    if kind == "chirp":
        return signal.chirp(t, rng.uniform(200, 1000), t[-1], rng.uniform(1000, 6000), method="logarithmic")
    if kind == "dial-tones":
        pairs = ((697, 1209), (770, 1336), (852, 1477), (941, 1633))
        lo, hi = pairs[rng.integers(len(pairs))]
        gate = (t * 4) % 1 < 0.5
        return (np.sin(2 * np.pi * lo * t) + np.sin(2 * np.pi * hi * t)) * gate
    if kind in ("melody", "chords"):
        return _notes(t, rate, 1 if kind == "melody" else 3, rng)
    if kind == "warble":
        return np.sin(2 * np.pi * (rng.uniform(300, 900) * t + rng.uniform(20, 80) * np.sin(2 * np.pi * 6 * t)))
    raise ValueError(f"unknown sound {kind!r}")


def _notes(t: np.ndarray, rate: int, voices: int, rng: np.random.Generator) -> np.ndarray:
    """Notes of a major scale, ``voices`` at a time, in one timbre (random harmonic weights, a slight
    vibrato), each plucked: a fast attack and an exponential decay. ``t``: (N,) seconds -> (N,) samples."""
    out = np.zeros(t.size)
    root = 110.0 * 2 ** (rng.integers(0, 25) / 12)
    harmonics = rng.uniform(0, 1, 6) ** 2 / np.arange(1, 7)
    beat = rng.uniform(0.12, 0.5)  # seconds per note
    for start in np.arange(0, t[-1], beat):
        first = int(start * rate)
        s = t[: min(t.size - first, int(1.5 * beat * rate))]
        envelope = (1 - np.exp(-s / 0.01)) * np.exp(-s / (beat * rng.uniform(0.3, 1.2)))
        for _ in range(voices):
            freq = root * 2 ** (MAJOR_SCALE[rng.integers(len(MAJOR_SCALE))] / 12)
            phase = 2 * np.pi * freq * (s + rng.uniform(0, 0.002) * np.sin(2 * np.pi * 5.5 * s))
            out[first : first + s.size] += envelope * sum(a * np.sin(k * phase) for k, a in enumerate(harmonics, 1))
    return out


@cache
def _package_audio(package: str, path: str) -> tuple[np.ndarray, int]:
    import soundfile

    samples, rate = soundfile.read(package_file(package, path), dtype="float32")
    return (samples if samples.ndim == 1 else samples.mean(1)), rate


def package_file(package: str, path: str) -> Path:
    import importlib

    module = importlib.import_module(package)
    return Path(module.__file__).parent / path


# ---------------------------------------------------------------- images


def negative_image(split: str, rng: np.random.Generator, kind: str | None = None) -> tuple[Image.Image, str]:
    """A picture of no digit from the split's sources (of ``kind``, else of one drawn by ``IMAGE_KINDS``'
    weights) -> (image, source), e.g. ``face`` or ``word-ttf-dkg``."""
    kinds = IMAGE_KINDS[split]
    names = list(kinds)
    weights = np.array(list(kinds.values())) / sum(kinds.values())
    kind = names[rng.choice(len(names), p=weights)] if kind is None else kind
    extras = np.random.default_rng(rng.integers(2**63))
    if kind in ("letter", "word", "printed"):
        ink, pen, source = _writing(kind, split, rng)
        return photograph(ink, rng, extras, extent=_extent(ink), pen=hw.pen_colour(pen)), source
    if kind == "scribble":
        return photograph(_scribble(rng), rng, extras), kind
    if kind == "shapes":
        ink = _shapes(rng)
        return photograph(ink, rng, extras, extent=_extent(ink)), kind
    if kind == "blank":
        return photograph(np.zeros((112, 112)), rng, extras), kind
    if kind == "photo":
        package, path = PHOTOS[split][rng.integers(len(PHOTOS[split]))]
        picture = np.asarray(Image.open(package_file(package, path)).convert("RGB"), np.float64)
        return camera(_crop(picture, rng), rng), f"photo-{Path(path).stem}"
    return camera(SCENES[kind](rng), rng), kind


def _extent(ink: np.ndarray) -> tuple[float, float]:
    rows, cols = np.flatnonzero(ink.max(1) > 0.05), np.flatnonzero(ink.max(0) > 0.05)
    if rows.size == 0:
        return (50.0, 50.0)
    middle = (np.array(ink.shape) - 1) / 2
    return (max(abs(rows[0] - middle[0]), abs(rows[-1] - middle[0])) + 2,
            max(abs(cols[0] - middle[1]), abs(cols[-1] - middle[1])) + 2)


def _writing(kind: str, split: str, rng: np.random.Generator) -> tuple[np.ndarray, str, str]:
    """A letter, a word or printed lines -> (ink field, pen, source)."""
    if kind == "printed":
        font = PRINTED_FONTS[split][rng.integers(len(PRINTED_FONTS[split]))]
        path = hw.package_font(font)
        words = WORDS[split]
        lines = [" ".join(words[rng.integers(len(words))] for _ in range(rng.integers(2, 6)))
                 for _ in range(rng.integers(1, 5))]
        masks = [hw.text_mask(path, line, 60) for line in lines]
        width = max(m.shape[1] for m in masks)
        gap = 12
        page = np.zeros((sum(m.shape[0] + gap for m in masks), width), np.float32)
        top = 0
        for m in masks:
            page[top : top + m.shape[0], : m.shape[1]] = m
            top += m.shape[0] + gap
        field = (112, max(112, int(112 * width / page.shape[0])) if page.shape[1] > page.shape[0] else 112)
        return hw.place(page, field, box=min(100.0, 100.0 * max(page.shape) / page.shape[0])), "ballpoint", \
            f"printed-{Path(font).stem}"
    text = SAFE_LETTERS[rng.integers(len(SAFE_LETTERS))] if kind == "letter" else WORDS[split][
        rng.integers(len(WORDS[split]))]
    field = (112, 112) if kind == "letter" else (112, 112 * 3)
    box = 80.0 if kind == "letter" else 112 * 3 - 20
    hershey_fonts = hw.HERSHEY_LETTER_FONTS[split]
    if rng.random() < 0.4 and hw.hershey.available():
        font = hershey_fonts[rng.integers(len(hershey_fonts))]
        strokes = hw.word_strokes(font, text, rng)
        ink, pen = hw.draw_strokes(strokes, rng, field=field, box=box if kind == "word" else 60.0 * rng.uniform(0.8,
                                                                                                              1.3))
        return ink, pen, f"{kind}-hershey-{font}"
    families = hw.available_fonts(split)  # the split's own handwriting fonts write its letters
    family = sorted(families)[rng.integers(len(families))]
    path = families[family][rng.integers(len(families[family]))]
    ink, pen = hw.font_ink(path, text, rng, field=field, box=box if kind == "word" else 60.0 * rng.uniform(0.8, 1.3))
    return ink, pen, f"{kind}-ttf-{family}"


def _scribble(rng: np.random.Generator) -> np.ndarray:
    """Hatching or a zigzag doodle filling a patch (no loops a digit could be read in)."""
    n = int(rng.integers(6, 20))
    if rng.random() < 0.5:  # hatching: parallel strokes
        angle = rng.uniform(0, np.pi)
        d = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-d[1], d[0]])
        strokes = [np.array([normal * (k / n - 0.5) - d * 0.5, normal * (k / n - 0.5) + d * 0.5])
                   + rng.normal(0, 0.03, (2, 2)) for k in range(n)]
    else:
        points = np.column_stack([np.linspace(0, 1, n) + rng.normal(0, 0.02, n), (np.arange(n) % 2) * rng.uniform(
            0.3, 1) + rng.normal(0, 0.05, n)])
        strokes = [points]
    return hw.draw_strokes([hw.densify(s) for s in strokes], rng)[0]


def _shapes(rng: np.random.Generator) -> np.ndarray:
    """One to four outlined or filled polygons, stars, crosses or arrows on the sheet (no round shapes)."""
    size = 224
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 5))):
        cx, cy, r = rng.uniform(50, 174), rng.uniform(50, 174), rng.uniform(20, 60)
        kind = rng.integers(4)
        if kind == 0:  # polygon
            k = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * np.pi, k))
            points = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]
        elif kind == 1:  # star
            k = int(rng.integers(5, 8))
            points = [(cx + (r if j % 2 == 0 else r * 0.45) * np.cos(np.pi * j / k),
                       cy + (r if j % 2 == 0 else r * 0.45) * np.sin(np.pi * j / k)) for j in range(2 * k)]
        elif kind == 2:  # cross
            w = r * 0.3
            points = [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w), (cx + r, cy + w),
                      (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w), (cx - r, cy + w),
                      (cx - r, cy - w), (cx - w, cy - w)]
        else:  # arrow
            points = [(cx - r, cy - r * 0.2), (cx + r * 0.3, cy - r * 0.2), (cx + r * 0.3, cy - r * 0.5), (cx + r, cy),
                      (cx + r * 0.3, cy + r * 0.5), (cx + r * 0.3, cy + r * 0.2), (cx - r, cy + r * 0.2)]
        if rng.random() < 0.5:
            draw.polygon(points, fill=255)
        else:
            draw.line([*points, points[0]], fill=255, width=int(rng.integers(3, 9)), joint="curve")
    ink = np.asarray(image.resize((112, 112), Image.Resampling.BOX), np.float32) / 255.0
    return ink


def _crop(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of 15-100 % of a photo's area."""
    h, w = picture.shape[:2]
    share = np.sqrt(rng.uniform(0.15, 1.0))
    ch, cw = max(16, int(h * share)), max(16, int(w * share * rng.uniform(0.8, 1.25)))
    ch, cw = min(ch, h), min(cw, w)
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    picture = picture[top : top + ch, left : left + cw]
    return picture[:, ::-1] if rng.random() < 0.5 else picture


# Procedural scenes: each returns an RGB float picture (H×W×3, 0-255), about 240×320.


def _canvas(rng: np.random.Generator, colour=None) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (640, 480), tuple(int(c) for c in (colour if colour is not None else
                                                                  rng.uniform(30, 230, 3))))
    return image, ImageDraw.Draw(image)


def _colour(rng: np.random.Generator, low: float = 0, high: float = 255) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.uniform(low, high, 3))


def _finish(image: Image.Image, rng: np.random.Generator) -> np.ndarray:
    out = np.asarray(image.resize((320, 240), Image.Resampling.BOX), np.float64)
    return ndimage.gaussian_filter(out, (rng.uniform(0, 1.2), rng.uniform(0, 1.2), 0))


def _face(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas(rng)
    cx, cy = rng.uniform(250, 390), rng.uniform(200, 280)
    rx, ry = rng.uniform(90, 150), rng.uniform(120, 190)
    skin = np.array((rng.uniform(90, 240), 0, 0))
    skin[1], skin[2] = skin[0] * rng.uniform(0.7, 0.85), skin[0] * rng.uniform(0.55, 0.75)
    draw.rectangle((cx - 2.2 * rx, cy + ry * 0.8, cx + 2.2 * rx, 480), fill=_colour(rng))  # shoulders
    draw.ellipse((cx - rx * 1.05, cy - ry * 1.1, cx + rx * 1.05, cy + ry * 0.3), fill=_colour(rng, 10, 120))  # hair
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=tuple(int(c) for c in skin))
    for side in (-1, 1):
        ex, ey = cx + side * rx * 0.4, cy - ry * 0.15
        draw.ellipse((ex - rx * 0.17, ey - ry * 0.07, ex + rx * 0.17, ey + ry * 0.07), fill=(240, 240, 240))
        draw.ellipse((ex - rx * 0.07, ey - ry * 0.07, ex + rx * 0.07, ey + ry * 0.07), fill=_colour(rng, 10, 90))
        draw.line((ex - rx * 0.2, ey - ry * 0.2, ex + rx * 0.2, ey - ry * 0.22), fill=_colour(rng, 10, 90), width=8)
    draw.line((cx, cy - ry * 0.05, cx - rx * 0.08, cy + ry * 0.25, cx + rx * 0.05, cy + ry * 0.28),
              fill=tuple(int(c * 0.8) for c in skin), width=5)
    draw.arc((cx - rx * 0.4, cy + ry * 0.25, cx + rx * 0.4, cy + ry * 0.6), 20, 160, fill=(150, 60, 60), width=8)
    return _finish(image, rng)


def _room(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas(rng)
    wall, floor = _colour(rng, 120, 240), _colour(rng, 60, 180)
    x0, y0, x1, y1 = rng.uniform(120, 220), rng.uniform(80, 160), rng.uniform(420, 520), rng.uniform(280, 360)
    draw.polygon([(0, 480), (x0, y1), (x1, y1), (640, 480)], fill=floor)
    draw.polygon([(0, 0), (x0, y0), (x0, y1), (0, 480)], fill=tuple(int(c * 0.85) for c in wall))
    draw.polygon([(640, 0), (x1, y0), (x1, y1), (640, 480)], fill=tuple(int(c * 0.75) for c in wall))
    draw.rectangle((x0, y0, x1, y1), fill=wall)
    draw.polygon([(0, 0), (x0, y0), (x1, y0), (640, 0)], fill=tuple(min(255, int(c * 1.1)) for c in wall))
    wx = rng.uniform(x0 + 20, x1 - 120)
    draw.rectangle((wx, y0 + 20, wx + 100, y0 + 110), fill=_colour(rng, 170, 255), outline=(90, 80, 70), width=6)
    for _ in range(int(rng.integers(1, 4))):  # furniture
        fx, fw, fh = rng.uniform(0, 520), rng.uniform(60, 200), rng.uniform(40, 160)
        top = rng.uniform(y1 - 40, 430)
        draw.rectangle((fx, top - fh, fx + fw, top), fill=_colour(rng, 30, 200))
    return _finish(image, rng)


def _building(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas(rng, rng.uniform((100, 140, 180), (190, 220, 255)))
    x = -20.0
    while x < 640:
        w, top = rng.uniform(90, 220), rng.uniform(40, 300)
        facade = _colour(rng, 60, 220)
        draw.rectangle((x, top, x + w, 480), fill=facade)
        glass = _colour(rng, 20, 120)
        step_x, step_y = rng.uniform(22, 40), rng.uniform(26, 44)
        for wy in np.arange(top + 12, 470, step_y):
            for wx in np.arange(x + 8, x + w - 16, step_x):
                draw.rectangle((wx, wy, wx + step_x * 0.55, wy + step_y * 0.55), fill=glass)
        x += w + rng.uniform(-10, 30)
    return _finish(image, rng)


def _landscape(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas(rng, rng.uniform((90, 140, 190), (180, 210, 255)))
    for k in range(int(rng.integers(1, 4))):
        xs = np.linspace(-10, 650, 12)
        ys = rng.uniform(180, 330, 12) + 40 * k
        draw.polygon([(0, 480), *zip(xs, ys), (640, 480)], fill=_colour(rng, 30, 160))
    for _ in range(int(rng.integers(0, 6))):  # trees
        tx, ty = rng.uniform(0, 640), rng.uniform(300, 460)
        draw.rectangle((tx - 5, ty - 40, tx + 5, ty), fill=(90, 60, 30))
        draw.polygon([(tx - 30, ty - 30), (tx, ty - 110), (tx + 30, ty - 30)], fill=_colour(rng, 20, 120))
    return _finish(image, rng)


def _texture(rng: np.random.Generator) -> np.ndarray:
    h, w = 240, 320
    kind = rng.integers(3)
    if kind == 0:  # fractal noise
        field = sum(ndimage.zoom(rng.normal(0, 1, (3 * 2**k, 4 * 2**k)), (h / (3 * 2**k), w / (4 * 2**k)), order=1)
                    / 1.6**k for k in range(5))
    elif kind == 1:  # stripes
        rows, cols = np.mgrid[0:h, 0:w]
        angle = rng.uniform(0, np.pi)
        field = np.sin((rows * np.cos(angle) + cols * np.sin(angle)) / rng.uniform(3, 15))
    else:  # wood grain
        rows, cols = np.mgrid[0:h, 0:w]
        warp = ndimage.gaussian_filter(rng.normal(0, 30, (h, w)), 20)
        field = np.sin((rows + warp * 40) / rng.uniform(4, 12))
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    a, b = np.array(_colour(rng)), np.array(_colour(rng))
    return a * field[:, :, None] + b * (1 - field[:, :, None])


def _flowers(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas(rng, rng.uniform((20, 80, 20), (90, 170, 80)))
    for _ in range(int(rng.integers(2, 9))):
        cx, cy, r = rng.uniform(0, 640), rng.uniform(0, 480), rng.uniform(25, 80)
        petal = _colour(rng, 120, 255)
        for k in range(int(rng.integers(5, 9))):
            a = 2 * np.pi * k / 8 + rng.uniform(0, 0.3)
            px, py = cx + r * 0.7 * np.cos(a), cy + r * 0.7 * np.sin(a)
            draw.ellipse((px - r * 0.4, py - r * 0.4, px + r * 0.4, py + r * 0.4), fill=petal)
        draw.ellipse((cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3), fill=_colour(rng, 150, 255))
    return _finish(image, rng)


def _tiles(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas(rng, _colour(rng, 150, 240))
    step = rng.uniform(30, 90)
    for y in np.arange(0, 480, step):
        for x in np.arange(0, 640, step):
            draw.rectangle((x + 3, y + 3, x + step - 3, y + step - 3), fill=_colour(rng, 40, 230))
    return _finish(image, rng)


def _desk(rng: np.random.Generator) -> np.ndarray:
    """A blank sheet lying on a desk (the check sets' blank paper, unlike training's full-frame sheets)."""
    h, w = 240, 320
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), (rng.uniform(0.5, 2), rng.uniform(5, 25)))
    desk = np.array(_colour(rng, 40, 200)) * (1 + 0.12 * grain / (grain.std() + 1e-9))[:, :, None]
    image = Image.fromarray(np.uint8(np.clip(desk, 0, 255)))
    cx, cy, sw, sh, a = rng.uniform(100, 220), rng.uniform(80, 160), rng.uniform(100, 200), rng.uniform(120, 220), \
        rng.uniform(-0.4, 0.4)
    corners = [(cx + dx * np.cos(a) - dy * np.sin(a), cy + dx * np.sin(a) + dy * np.cos(a))
               for dx, dy in ((-sw / 2, -sh / 2), (sw / 2, -sh / 2), (sw / 2, sh / 2), (-sw / 2, sh / 2))]
    ImageDraw.Draw(image).polygon(corners, fill=_colour(rng, 200, 250))
    return np.asarray(image, np.float64)


def _voronoi(rng: np.random.Generator) -> np.ndarray:
    h, w = 240, 320
    seeds = rng.uniform(0, 1, (int(rng.integers(8, 60)), 2)) * (h, w)
    rows, cols = np.mgrid[0:h, 0:w]
    nearest = np.argmin((rows[..., None] - seeds[:, 0]) ** 2 + (cols[..., None] - seeds[:, 1]) ** 2, axis=2)
    colours = rng.uniform(20, 240, (len(seeds), 3))
    return colours[nearest]


def _screen(rng: np.random.Generator) -> np.ndarray:
    """A computer screen: windows with title bars, grey text lines and buttons."""
    image, draw = _canvas(rng, _colour(rng, 20, 120))
    for _ in range(int(rng.integers(1, 4))):
        x, y, ww, wh = rng.uniform(0, 400), rng.uniform(0, 300), rng.uniform(200, 500), rng.uniform(150, 350)
        draw.rectangle((x, y, x + ww, y + wh), fill=_colour(rng, 200, 255))
        draw.rectangle((x, y, x + ww, y + 26), fill=_colour(rng, 40, 160))
        for ly in np.arange(y + 40, y + wh - 30, rng.uniform(14, 24)):
            draw.rectangle((x + 12, ly, x + 12 + rng.uniform(0.3, 0.95) * (ww - 24), ly + 6), fill=(120, 120, 130))
        draw.rounded_rectangle((x + ww - 100, y + wh - 34, x + ww - 14, y + wh - 10), 6, fill=_colour(rng, 30, 200))
    return _finish(image, rng)


def _plaid(rng: np.random.Generator) -> np.ndarray:
    h, w = 240, 320
    rows, cols = np.mgrid[0:h, 0:w]
    period = rng.uniform(20, 70)
    bands = [((rows % period) < period * rng.uniform(0.2, 0.5)), ((cols % period) < period * rng.uniform(0.2, 0.5))]
    base, a, b = (np.array(_colour(rng)) for _ in range(3))
    out = np.broadcast_to(base, (h, w, 3)).astype(np.float64)
    out = np.where(bands[0][..., None], (out + a) / 2, out)
    return np.where(bands[1][..., None], (out + b) / 2, out)


SCENES = {"face": _face, "room": _room, "building": _building, "landscape": _landscape, "texture": _texture,
          "flowers": _flowers, "tiles": _tiles, "desk": _desk, "voronoi": _voronoi, "screen": _screen,
          "plaid": _plaid}
