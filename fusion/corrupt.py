"""Corruptions of raw inputs with a severity in [0, 1].

Used by the app's "corrupt" sliders, by evaluation (accuracy against severity) and by training
(robustness to a degraded modality). Each function is deterministic given its ``np.random.Generator``.
Severity 0 leaves the input unchanged; severity 1 removes every trace of the input's content, so a
model can only get it right from the other modalities.
"""

from __future__ import annotations

import string

import numpy as np

# Random characters for text noise: digits included on purpose, they are the most misleading noise.
TEXT_ALPHABET = string.ascii_letters + string.digits + string.punctuation + " "
NOISE_CELLS = 96  # image noise varies on ~1/96 of the short side so it survives the encoder's downscaling
SILENT_RMS = 0.05  # reference level for the noise added to a silent clip (about -26 dBFS)


def _check_severity(severity: float) -> float:
    severity = float(severity)
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must lie in [0, 1], got {severity}")
    return severity


def corrupt_image(image: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Blur, fade and add Gaussian noise to a uint8 H×W×3 image.

    The picture fades towards mid-grey as ``1 - severity`` while blur and noise grow with it, so at
    severity 1 the output is mid-grey plus noise, independent of the input.
    """
    severity = _check_severity(severity)
    if severity == 0.0:
        return image
    h, w = image.shape[:2]
    picture = image.astype(np.float32)
    blur = 2.0 * severity * min(h, w) / 64  # in pixels of a 64-px view, so the look is resolution-free
    from scipy import ndimage  # here, not at the top: the CLI's --help imports this module and stays quick

    picture = ndimage.gaussian_filter(picture, (blur, blur, 0))
    cell = max(1, round(min(h, w) / NOISE_CELLS))
    coarse = rng.normal(0.0, 90.0 * severity, (-(-h // cell), -(-w // cell), 3)).astype(np.float32)
    noise = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:h, :w]
    out = (1.0 - severity) * picture + severity * 127.5 + noise
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def corrupt_audio(audio: tuple[int, np.ndarray], severity: float,
                  rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """Mix white noise into a ``(sample_rate, samples)`` clip; returns ``(sample_rate, mono float32)``.

    The noise sits at an SNR of ``30 - 40 * severity`` dB against the clip's RMS, and the signal
    itself is scaled by ``1 - severity ** 3`` so that severity 1 is pure noise. Severity 0 returns
    the clip's samples unchanged (as mono float32).
    """
    from .encoders.audio import to_mono_float  # torch and transformers: only once audio is corrupted

    severity = _check_severity(severity)
    sample_rate, samples = audio
    signal = to_mono_float(sample_rate, samples)
    if severity == 0.0 or signal.size == 0:
        return sample_rate, signal
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
    noise_rms = (rms if rms > 1e-6 else SILENT_RMS) * 10.0 ** (-(30.0 - 40.0 * severity) / 20.0)
    out = (1.0 - severity**3) * signal + rng.normal(0.0, noise_rms, signal.shape).astype(np.float32)
    peak = float(np.max(np.abs(out)))
    # Rescale rather than clip: keeps the SNR and avoids the harmonics clipping would add.
    return sample_rate, (out / peak if peak > 1.0 else out).astype(np.float32)


def corrupt_text(text: str, severity: float, rng: np.random.Generator) -> str:
    """Character noise: each character is, with probability ``severity``, replaced by a random
    letter/digit/punctuation mark (60 %), deleted (20 %) or replaced and followed by an inserted
    random character (20 %). At severity 1 every output character is random."""
    severity = _check_severity(severity)
    if severity == 0.0:
        return text
    out = []
    for char in text:
        if rng.random() >= severity:
            out.append(char)
            continue
        op = rng.random()
        if op < 0.2:
            continue
        out.append(TEXT_ALPHABET[rng.integers(len(TEXT_ALPHABET))])
        if op >= 0.8:
            out.append(TEXT_ALPHABET[rng.integers(len(TEXT_ALPHABET))])
    return "".join(out)

