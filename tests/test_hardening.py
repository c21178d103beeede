"""Bad inputs through the path the app and the API use: each gives a prediction from what remains valid
or a clear user-facing InputError, never anything else, and the model keeps serving afterwards."""

import io
import json
import struct
import time

import numpy as np
import pytest
import soundfile
from PIL import Image

import fusion
from fusion.model import FusionModel, default_config

TONE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    FusionModel(default_config([str(i) for i in range(10)], "attention")).save_pretrained(folder)
    return fusion.load_model(folder, device="cpu")


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def wav_bytes(samples, rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def wav_claiming_hours() -> bytes:
    """A valid 16-bit mono header whose data chunk claims ~3 hours, followed by 1 s of samples."""
    data = (TONE * 32767).astype("<i2").tobytes()
    claimed = 16000 * 2 * 3600 * 3
    header = b"RIFF" + struct.pack("<I", 36 + claimed) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", claimed)
    return header + data


DIGIT = Image.new("RGB", (64, 64), "white")
DIGIT.paste((20, 20, 20), (28, 10, 36, 54))

FILES = {  # name -> (bytes, as which modality, expected: "ok" or a phrase of the message)
    "truncated.png": (png_bytes(DIGIT)[:60], "image", "as an image"),
    "truncated.jpg": (png_bytes(DIGIT, "JPEG")[:200], "image", "as an image"),
    "garbage.wav": (wav_bytes(TONE, 16000, "PCM_16")[:44] + bytes(range(256)) * 4, "audio", "ok"),
    "truncated.wav": (wav_bytes(TONE, 16000, "PCM_16")[:30], "audio", "as audio"),
    "paper.pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "audio", "as audio"),
    "paper_as_image.pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "image", "as an image"),
    "notes.txt": (b"hello, this is text", "audio", "as audio"),
    "notes_as_image.txt": (b"hello, this is text", "image", "as an image"),
    "empty.wav": (b"", "audio", "is empty"),
    "hours.wav": (wav_claiming_hours(), "audio", "ok"),
    "u8.wav": (wav_bytes(TONE, 16000, "PCM_U8"), "audio", "ok"),
    "pcm24.wav": (wav_bytes(TONE, 16000, "PCM_24"), "audio", "ok"),
    "float32.wav": (wav_bytes(TONE, 16000, "FLOAT"), "audio", "ok"),
    "stereo.wav": (wav_bytes(np.stack([TONE, -TONE * 0.5], 1), 16000, "PCM_16"), "audio", "ok"),
    "six_channels.wav": (wav_bytes(np.tile(TONE[:, None], (1, 6)), 16000, "PCM_16"), "audio", "ok"),
    "8khz.wav": (wav_bytes(TONE[::2], 8000, "PCM_16"), "audio", "ok"),
    "96khz.wav": (wav_bytes(np.repeat(TONE, 6), 96000, "PCM_16"), "audio", "ok"),
    "silent.wav": (wav_bytes(np.zeros(16000, np.float32), 16000, "PCM_16"), "audio", "silent"),
    "one_pixel.png": (png_bytes(Image.new("RGB", (1, 1))), "image", "ok"),
    "cmyk.jpg": (png_bytes(DIGIT.convert("CMYK"), "JPEG"), "image", "ok"),
    "gray16.png": (png_bytes(Image.fromarray(np.asarray(DIGIT.convert("L")).astype(np.uint16) * 257)), "image",
                   "ok"),
    "palette.png": (png_bytes(DIGIT.convert("P")), "image", "ok"),
    "alpha.png": (png_bytes(DIGIT.convert("RGBA")), "image", "ok"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_bad_files(model, tmp_path, name):
    content, modality, expected = FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    if expected == "ok":
        p = fusion.predict(model, **{modality: path})
        assert p.modalities == [modality]
        json.dumps(p.to_dict())
    else:
        with pytest.raises(fusion.InputError, match=expected):
            fusion.predict(model, **{modality: path})


def test_decompression_bomb_is_refused_quickly(model, tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(path)  # 400 megapixels, a few kB on disk
    start = time.perf_counter()
    with pytest.raises(fusion.InputError, match="too large"):
        fusion.predict(model, image=path)
    assert time.perf_counter() - start < 5
    with pytest.raises(fusion.InputError, match="too large"):
        fusion.predict(model, image=np.zeros((20_000, 20_000), np.uint8))


@pytest.mark.parametrize("audio, expected", [
    ((16000, np.zeros(0, np.float32)), "empty"),
    ((16000, np.array([0.5], np.float32)), "ok"),
    ((16000, np.full(16000, np.nan, np.float32)), "silent"),
    ((16000, np.where(np.arange(16000) % 7 == 0, np.inf, TONE).astype(np.float32)), "ok"),
    ((16000, np.zeros(16000, np.int16)), "silent"),
    ((0, TONE), "sample rate"),
    ((16000, np.array(["a", "b"])), "real numbers"),
    ("not audio", "does not exist"),
])
def test_bad_audio_arrays(model, audio, expected):
    if expected == "ok":
        assert fusion.predict(model, audio=audio).modalities == ["audio"]
    else:
        with pytest.raises(fusion.InputError, match=expected):
            fusion.predict(model, audio=audio)


def test_silent_audio_with_text_predicts_from_the_text(model):
    p = fusion.predict(model, audio=(16000, np.zeros(16000, np.float32)), text="seven")
    assert p.modalities == ["text"] and any("silent" in note for note in p.notes)


@pytest.mark.parametrize("text, expected", [
    ("", "Nothing to predict"),
    ("   \n\t ", "Nothing to predict"),
    ("seven " * 20_000, "ok"),  # 120,000 characters: cut, with a note
    ("🙂🔢 seven ✨", "ok"),
    ("هذا سبعة", "ok"),
    ("זה שבע", "ok"),
    ("<script>alert(1)</script>", "ok"),
    ("\x00\x01 seven", "ok"),
])
def test_bad_texts(model, text, expected):
    if expected == "ok":
        p = fusion.predict(model, text=text)
        assert p.modalities == ["text"]
        json.dumps(p.to_dict())
    else:
        with pytest.raises(fusion.InputError, match=expected):
            fusion.predict(model, text=text)


def test_long_text_is_cut_with_a_note(model):
    assert any("cut" in note for note in fusion.predict(model, text="x" * 100_000).notes)


def test_still_serving_after_everything(model):
    p = fusion.predict(model, image=np.asarray(DIGIT), audio=(16000, TONE), text="it's a seven")
    assert p.modalities == ["image", "audio", "text"]
