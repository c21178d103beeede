"""End-to-end learning: ``train --finetune image:N`` trains the last N blocks of an encoder with the head.

- Training caches the frozen prefix's output (the input of the first unfrozen block: ``PrefixView``) instead
  of the final tokens, so each step runs only the N unfrozen blocks (``Encoder.suffix``) and the head
  (``EndToEnd``), at ``TrainConfig.finetune_lr``.
- The model folder keeps only the changed weights: one safetensors file per fine-tuned encoder beside
  ``model.safetensors``, named in ``config.json``'s ``finetuned`` field
  (``{"image": {"blocks": 1, "weights": "image.finetune.safetensors"}}``), under the encoder's own parameter
  names. The sha-checked base weights stay in their packages.
- Loading applies that overlay to a copy of the shared encoder (``apply_overlay``), which is never changed.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from .config import MAX_BLOCKS
from .errors import CheckpointError

OVERLAY_NAME = "{modality}.finetune.safetensors"
class PrefixView:
    """An encoder seen up to a cut: ``encode`` gives the input of block ``cut`` (for the feature cache).

    Every other attribute is the encoder's, so the cache key keeps its options and adds ``prefix``.
    """

    def __init__(self, encoder, cut: int):
        self.encoder, self.prefix = encoder, cut

    def __getattr__(self, name):
        if name == "encoder":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.encoder, name)

    def encode(self, batch: list):
        return self.encoder.encode_prefix(batch, self.prefix)


class EndToEnd(nn.Module):
    """The fusion head with trainable encoder blocks in front: cached prefix tokens -> ``FusionOutput``.

    It stands in for the ``FusionModel`` in ``fusion.train.fit`` (same ``modalities``, ``config``, call);
    ``param_groups`` gives the blocks their own learning rate.
    """

    def __init__(self, head, suffixes: dict[str, nn.Module], blocks: dict[str, int]):
        super().__init__()
        self.head, self.suffixes, self.blocks = head, nn.ModuleDict(suffixes), dict(blocks)

    @property
    def modalities(self):
        return self.head.modalities

    @property
    def config(self) -> dict:
        return self.head.config

    def forward(self, tokens: dict, contributions: bool = False):
        tokens = {m: self.suffixes[m](t) if m in self.suffixes and t is not None else t for m, t in tokens.items()}
        return self.head(tokens, contributions)

    def set_calibration(self, calibration: dict) -> None:
        self.head.set_calibration(calibration)

    def param_groups(self, lr: float, finetune_lr: float) -> list[dict]:
        blocks = [p for s in self.suffixes.values() for p in s.parameters() if p.requires_grad]
        return [{"params": list(self.head.parameters()), "lr": lr}, {"params": blocks, "lr": finetune_lr}]

    def save_pretrained(self, folder):
        """The head's folder plus one overlay file per fine-tuned encoder (``FusionModel.save_pretrained``)."""
        self.head.config["finetuned"] = {m: {"blocks": self.blocks[m], "weights": OVERLAY_NAME.format(modality=m)}
                                         for m in self.suffixes}
        self.head.finetuned_state = {m: s.overlay() for m, s in self.suffixes.items()}
        self.head.save_pretrained(folder)


def check_entries(config: dict) -> None:
    """The ``finetuned`` field of a config: {modality the model encodes: {"blocks": N, "weights": file}}."""
    entries = config.get("finetuned", {})
    if not isinstance(entries, dict):
        raise CheckpointError("config field 'finetuned': must map modalities to {blocks, weights}.")
    for m, entry in entries.items():
        field = f"finetuned.{m}"
        if m not in config.get("encoders", {}):
            raise CheckpointError(f"config field {field!r}: the model has no {m!r} encoder.")
        if not isinstance(entry, dict) or set(entry) != {"blocks", "weights"}:
            raise CheckpointError(f"config field {field!r}: must be an object with exactly 'blocks' and 'weights'.")
        blocks = entry["blocks"]
        if type(blocks) is not int or not 1 <= blocks <= MAX_BLOCKS:
            raise CheckpointError(f"config field '{field}.blocks': a whole number in 1..{MAX_BLOCKS}, got {blocks!r}.")


def check_tensors(state: dict, file_name: str) -> None:
    """Floats only, all finite (as the head's weights are checked)."""
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise CheckpointError(f"{file_name}: {name} holds {tensor.dtype} values; weights must be floats.")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{file_name}: {name} holds NaN or infinite values.")


def digest(state: dict) -> str:
    """A short name of an overlay's values, for feature-cache keys."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def apply_overlay(encoder, modality: str, blocks: int, state: dict, file_name: str):
    """A copy of ``encoder`` with its last ``blocks`` token blocks from ``state``; ``encoder`` is unchanged.

    The overlay must hold exactly those blocks' parameters, each with the encoder's shape; otherwise a
    ``CheckpointError`` names the config field and the file.
    """
    field = f"finetuned.{modality}"
    try:
        expected = encoder.finetune_parameters(blocks)
    except ValueError as error:
        raise CheckpointError(f"config field '{field}.blocks' ({blocks}) does not fit the encoder: {error}") from None
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{file_name} does not fit config field {field!r} (the last {blocks} blocks): "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}.")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{file_name} does not fit the {modality} encoder: {name} has shape "
                                  f"{tuple(tensor.shape)}, the encoder's is {tuple(expected[name].shape)}.")
    return encoder.with_overlay(state, digest(state))
