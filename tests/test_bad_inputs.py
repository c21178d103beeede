"""Bad inputs through the path the app uses: file paths as the API and CLI pass them, arrays and PIL images
as the page passes them. Each gives a prediction from what remains valid or an ``InputError`` whose message
can be shown to a user as is; the model keeps serving afterwards."""

import json
import time
import tracemalloc
import warnings

import gradio as gr
import numpy as np
import pytest
from corpus import (
    FILES,
    LABELS,
    PDF,
    RATE,
    TONE,
    assert_user_facing,
    bomb_png,
    digit,
    encoded,
    transparent_digit,
    uploaded,
    wav,
    wav_claiming_hours,
)
from PIL import Image

import fusion
from fusion.inputs import load_audio
from fusion.serving import FusionService


def expect(model, inputs: dict, expected: str):
    """``expected`` "ok": a prediction from exactly the given modalities; else a phrase of the InputError."""
    if expected == "ok":
        p = fusion.predict(model, **inputs)
        assert p.modalities == [m for m in ("image", "audio", "text") if m in inputs]
        assert sum(p.probs.values()) == pytest.approx(1.0, abs=1e-4)
        json.dumps(p.to_dict())
        return p
    with pytest.raises(fusion.InputError) as caught:
        fusion.predict(model, **inputs)
    assert_user_facing(str(caught.value), expected)
    return None


@pytest.mark.parametrize("case", list(FILES))
def test_bad_files(model, tmp_path, case):
    make, modality, expected = FILES[case]
    path = tmp_path / case.split(" ")[0]
    path.write_bytes(make())
    expect(model, {modality: path}, expected)
    expect(model, {modality: str(path)}, expected)  # the API and CLI pass plain strings


def test_wav_header_claiming_hours_reads_only_what_is_there(model, tmp_path):
    path = tmp_path / "hours.wav"
    path.write_bytes(wav_claiming_hours())
    tracemalloc.start()
    start = time.perf_counter()
    try:
        waveform, _ = load_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5 and peak < 50 * 2**20  # 37 h of float32 would be 8 GB
    assert len(waveform) <= 30 * RATE
    expect(model, {"audio": path}, "ok")


def test_decompression_bomb_is_refused_quickly(model, tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    assert path.stat().st_size < 2**20
    start = time.perf_counter()
    expect(model, {"image": path}, "too large")
    assert time.perf_counter() - start < 5
    # The page's path: an array of that size (a broadcast view, so the test itself allocates nothing).
    expect(model, {"image": np.broadcast_to(np.uint8(0), (20_000, 20_000))}, "too large")


@pytest.mark.parametrize("image, expected", [
    (np.full((1, 1, 3), 128, np.uint8), "ok"),
    (digit().convert("CMYK"), "ok"),
    (transparent_digit(), "ok"),
    (np.asarray(transparent_digit()), "ok"),  # the page's RGBA array
    (np.zeros((0, 5, 3), np.uint8), "unusable image"),
], ids=["1x1 array", "CMYK PIL", "RGBA PIL", "RGBA array", "empty array"])
def test_page_images(model, image, expected):
    expect(model, {"image": image}, expected)


@pytest.mark.parametrize("audio, expected", [
    ((RATE, np.array([0.5], np.float32)), "ok"),
    ((RATE, np.array([1], np.int16)), "silent"),  # 1/32768 is below the silence threshold
    ((RATE, np.where(np.arange(RATE) % 5 == 0, np.nan, TONE).astype(np.float32)), "ok"),
    ((RATE, np.where(np.arange(RATE) % 7 == 0, np.inf, TONE).astype(np.float32)), "ok"),
    ((RATE, np.full(RATE, np.nan, np.float32)), "silent"),
    ((RATE, np.full(RATE, -np.inf, np.float32)), "silent"),
    ((RATE, np.zeros(RATE, np.float32)), "silent"),
    ((RATE, np.zeros(0, np.float32)), "empty"),
    ((8000, (TONE[::2] * 32767).astype(np.int16)), "ok"),
    ((96000, np.repeat(TONE, 6)), "ok"),
    ((0, TONE), "sample rate"),
], ids=["1 sample", "1 quiet sample", "some NaN", "some Inf", "all NaN", "all -Inf", "all zero", "no samples",
        "8 kHz int16", "96 kHz", "rate 0"])
def test_page_audio(model, audio, expected):
    p = expect(model, {"audio": audio}, expected)
    if p is not None and not np.isfinite(audio[1]).all():
        assert any("NaN/Inf" in note for note in p.notes)


def test_silent_audio_with_text_predicts_from_the_text_with_a_note(model):
    p = fusion.predict(model, audio=(RATE, np.zeros(2 * RATE, np.int16)), text="it's a seven")
    assert p.modalities == ["text"] and any("silent" in note for note in p.notes)


@pytest.mark.parametrize("text, expected", [
    ("", "nothing to predict"),
    ("  \n\t\u3000 ", "nothing to predict"),
    ("seven " * 16_667, "ok"),  # 100,002 characters
    ("🙂 sev🔢en ✨👍🏽", "ok"),
    ("هذا الرقم سبعة", "ok"),
    ("זה המספר שבע", "ok"),
    ("<script>alert(1)</script>", "ok"),
], ids=["empty", "whitespace", "100k chars", "emoji", "arabic", "hebrew", "script tag"])
def test_texts(model, text, expected):
    p = expect(model, {"text": text}, expected)
    if len(text) > 2000:
        assert any("cut" in note for note in p.notes)
    if "<script>" in text:  # predicted as words; escaping the tokens is the page's job
        assert "script" in p.to_dict()["token_weights"]["text"]["tokens"]


@pytest.mark.parametrize("invisible", ["\u200b" * 200, "\u200d\u2060\ufeff\u00ad\u202e" * 8, "\x01\x7f"])
def test_a_text_with_nothing_visible_is_no_text_with_a_plain_note(model, invisible):
    with pytest.raises(fusion.InputError, match="Nothing to predict") as caught:
        fusion.predict(model, text=invisible)
    assert "no visible characters" in str(caught.value) and "first 0 characters" not in str(caught.value)
    p = fusion.predict(model, image=digit(), text=invisible)
    assert p.modalities == ["image"] and any("no visible characters" in note for note in p.notes)


def test_trailing_zero_width_characters_are_not_called_unread_text(model):
    p = fusion.predict(model, text="seven " + "\u200b" * 50)
    assert p.modalities == ["text"] and not any("longer than the text encoder reads" in n for n in p.notes), p.notes


@pytest.fixture(scope="module")
def service(model_dir):
    return FusionService({"attention": model_dir}, device="cpu")


def test_service_fuse_with_an_undecodable_image_warns_and_returns_all_outputs(service, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(PDF)
    with pytest.warns(UserWarning) as caught:  # gr.Warning outside a request is a Python warning
        out = service.fuse("attention", uploaded(path), None, "seven", True, True, True, 0.0, 0.0, 0.0)
    assert out == (None, "", "", "", "", "")  # every output cleared
    assert_user_facing(str(caught[0].message), "could not read")


def test_service_fuse_with_silent_audio_and_text_predicts_with_a_note(service):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a prediction: no warning at all
        out = service.fuse("attention", None, (RATE, np.zeros(RATE, np.int16)), "seven", True, True, True,
                           0.0, 0.0, 0.0)
    assert len(out) == 6 and set(out[0]) <= set(LABELS) and "silent" in out[1]


def test_service_api_errors_are_gradio_errors_with_clear_messages(service, tmp_path):
    with pytest.raises(gr.Error) as caught:
        service.predict_digit(None, None, "")
    assert_user_facing(caught.value.message, "nothing to predict")
    path = tmp_path / "cut.jpg"
    path.write_bytes(encoded(digit(), "JPEG")[:300])
    with pytest.raises(gr.Error) as caught:
        service.predict_digit(uploaded(path), None, None)
    assert_user_facing(caught.value.message, "could not read")


def test_service_api_predicts_from_a_valid_file(service, tmp_path):
    path = tmp_path / "tone.wav"
    path.write_bytes(wav(TONE, 44100, "PCM_24"))
    payload = service.predict_digit(None, uploaded(path), "seven")
    assert payload["modalities"] == ["audio", "text"] and json.dumps(payload)


def test_still_serving_after_everything(model, tmp_path):
    path = tmp_path / "digit.png"
    digit().save(path)
    p = fusion.predict(model, image=path, audio=(RATE, TONE), text="it's a seven")
    assert p.modalities == ["image", "audio", "text"] and p.label in LABELS


@pytest.mark.parametrize("suffix", [".jpg", ".tiff"])  # torchvision's decoder, PIL's
def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(suffix, tmp_path):
    from fusion.inputs import load_image

    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255  # the left half white, as the sensor saw it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display", what a phone held upright writes
    Image.fromarray(stored).save(tmp_path / f"photo{suffix}", exif=exif)
    upright = load_image(tmp_path / f"photo{suffix}")
    assert upright.shape == (40, 20, 3)
    assert upright[:18].mean() > 200 and upright[22:].mean() < 50  # the white half is now on top


@pytest.mark.parametrize("suffix", [".webp", ".gif", ".png"])  # animated WebP, GIF and APNG
def test_an_animation_is_read_as_its_first_frame(suffix, tmp_path):
    from fusion.inputs import load_image

    first, *others = [Image.new("RGB", (40, 30), colour) for colour in ((250, 250, 250), (0, 0, 0), (200, 0, 0))]
    first.save(tmp_path / f"animated{suffix}", save_all=True, append_images=others, duration=100, loop=0)
    with Image.open(tmp_path / f"animated{suffix}") as saved:
        assert saved.n_frames == 3  # really an animation
    pixels = load_image(tmp_path / f"animated{suffix}")
    assert pixels.shape == (30, 40, 3) and pixels.min() > 240  # the first, light frame
