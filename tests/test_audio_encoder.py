"""The Whisper audio encoders (base, the default, and tiny.en): parity with CTranslate2, input handling,
batching and weights."""

import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F

from fusion.encoders import DEFAULT_SPECS, load_encoder
from fusion.encoders.audio import (
    WHISPER_MODELS,
    WhisperAudioEncoder,
    load_audio,
    log_mel,
    to_mono_float,
    whisper_encoder_state_dict,
)
from fusion.encoders.base import WeightChecksumError, verify_sha256

SR = 16_000


@pytest.fixture(scope="module")
def encoder():
    """The default audio encoder, as models are trained with it."""
    return load_encoder("audio", DEFAULT_SPECS["audio"], "cpu")


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


def ctranslate2_folder(name: str, tmp_path):
    """A CTranslate2 model folder for one size: the package's own, or its split model.bin joined."""
    weights = WHISPER_MODELS[name]
    files = weights.package_files()
    if len(files) == 1:
        return str(files[0].parent)
    folder = tmp_path / name
    shutil.copytree(files[0].parent, folder, ignore=shutil.ignore_patterns("model.bin.part*"))
    with (folder / "model.bin").open("wb") as joined:
        for part in files:
            joined.write(part.read_bytes())
    return str(folder)


@pytest.mark.parametrize("name, signal", [("whisper-base", "speech-like"), ("whisper-base", "espeak"),
                                          ("whisper-tiny.en", "espeak")])
def test_parity_with_ctranslate2(name, signal, tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    encoder = WhisperAudioEncoder(name, device="cpu")
    wave = speech_like(2.0) if signal == "speech-like" else espeak("seven, eight, nine", tmp_path)
    features = log_mel(torch.from_numpy(padded30(wave))[None])  # (1, 80, 3000)
    with torch.inference_mode():
        ours = encoder(features).numpy()
    whisper = ctranslate2.models.Whisper(ctranslate2_folder(name, tmp_path), device="cpu", compute_type="float32")
    storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features.numpy()))
    theirs = np.array(whisper.encode(storage))
    assert ours.shape == theirs.shape == (1, 1500, encoder.dim)
    diff = float(np.abs(ours - theirs).max())
    print(f"{name} encoder vs CTranslate2 ({signal}): max abs difference {diff:.2e}")
    assert diff <= 2e-2


def test_layers_option_runs_the_first_layers_then_the_final_norm():
    full = WhisperAudioEncoder("whisper-base", device="cpu")
    four = WhisperAudioEncoder("whisper-base", layers=4, device="cpu")
    assert len(four.encoder.layers) == 4 and four.dim == full.dim == 512
    mel = log_mel(torch.from_numpy(speech_like(1.0))[None])[..., :100]
    with torch.inference_mode():
        enc = full.encoder
        hidden = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).transpose(1, 2) + enc.embed_positions.weight[:50]
        for layer in enc.layers[:4]:
            hidden = layer(hidden, None)
        torch.testing.assert_close(four(mel), enc.layer_norm(hidden))
    with pytest.raises(ValueError, match="layers"):
        WhisperAudioEncoder("whisper-base", layers=7, device="cpu")


def test_log_mel_matches_transformers_feature_extractor():
    from transformers import WhisperFeatureExtractor

    wave = speech_like(2.0)
    expected = WhisperFeatureExtractor()(wave, sampling_rate=SR, return_tensors="np")["input_features"]
    ours = log_mel(torch.from_numpy(padded30(wave))[None]).numpy()
    assert ours.shape == expected.shape == (1, 80, 3000)
    assert np.abs(ours - expected).max() <= 1e-3


def check_tokens(tokens, seconds: float):
    assert tokens.values.dtype == torch.float32 and tokens.values.shape[-1] == 512
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
    assert batch.values.shape == (2, 150, 512) and batch.mask.sum(1).tolist() == [25, 150]
    assert torch.all(batch.values[0, 25:] == 0)
    for row, wave in enumerate([short, long]):
        alone = encoder.encode([(SR, wave)])
        n = alone.values.shape[1]
        assert (batch.values[row, :n] - alone.values[0]).abs().max() <= 1e-4
        assert (batch.pooled[row] - alone.pooled[0]).abs().max() <= 1e-4


def test_tokens_per_second(encoder):
    for seconds in (0.05, 0.3, 1.0, 2.5):
        check_tokens(encoder.encode([(SR, speech_like(seconds))]), seconds)


def test_weights_cache_is_built_and_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("FUSION_LENS_CACHE", str(tmp_path))
    converted = whisper_encoder_state_dict("whisper-tiny.en")
    cache = tmp_path / "whisper-tiny.en-encoder.safetensors"
    assert cache.is_file() and not list(tmp_path.glob("*.tmp"))
    cached = whisper_encoder_state_dict("whisper-tiny.en")
    reference = WhisperAudioEncoder("whisper-tiny.en", device="cpu").encoder.state_dict()
    assert converted.keys() == cached.keys() == reference.keys()
    for name, tensor in cached.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, converted[name])
        assert torch.equal(tensor, reference[name])
    cache.write_bytes(b"half a file")  # unreadable: converted again
    assert torch.equal(whisper_encoder_state_dict("whisper-tiny.en")["conv1.weight"], converted["conv1.weight"])


@pytest.mark.parametrize("name", sorted(WHISPER_MODELS))
def test_corrupted_weight_file_is_refused(name, tmp_path):
    weights = WHISPER_MODELS[name]
    copy = tmp_path / "model.bin"
    shutil.copy(weights.package_files()[-1], copy)
    with copy.open("r+b") as f:
        f.seek(copy.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    package = weights.parts[-1][0].replace("_", "-")
    with pytest.raises(WeightChecksumError, match=package):
        verify_sha256(copy, weights.parts[-1][2], weights.requirement)


@pytest.mark.parametrize("rate", [44101, 7919, 96001])
def test_a_rate_sharing_little_with_16k_is_resampled_as_its_nearest_100_hz(rate):
    """torchaudio's kernel would be rate × 16000 / gcd² floats (2.8 GB for 44,101 Hz): such rates are
    resampled as the nearest multiple of 100 Hz instead, a speed change under 0.5 %."""
    t = np.arange(int(rate * 2.0)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = load_audio((rate, tone))
    assert abs(len(out) - 32000) / 32000 < 0.005
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * SR / len(out) - 440) < 440 * 0.005
