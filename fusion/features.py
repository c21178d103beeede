"""Frozen-encoder features cached on disk, once per (encoder, input, corruption).

Training and evaluating a fusion head then takes minutes on a laptop CPU: the encoders run once per
file, and every later epoch, strategy or evaluation reads their tokens back. Decoding goes through
``fusion.modalities.decode_inputs``, so the tokens are exactly what serving computes for the same file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load, save_file
from tqdm import tqdm

from . import modalities as registry
from .encoders import Encoder, Tokens
from .encoders.base import masked_mean
from .modalities import decode_inputs

BATCH = 16


def encoder_key(encoder: Encoder) -> str:
    """Folder name for one encoder's cache: its spec plus the options that change its output."""
    # prefix: a PrefixView's cut (training with --finetune caches what enters the first unfrozen block);
    # finetuned: the digest of a fine-tuned copy's own blocks (``fusion.finetune``). Absent for the others.
    options = {k: getattr(encoder, k) for k in ("size", "preprocessing", "blocks", "layers", "finetuned")
               if getattr(encoder, k, None)}
    if getattr(encoder, "prefix", None) is not None:
        options["prefix"] = encoder.prefix
    digest = hashlib.sha1(json.dumps([encoder.spec, options], sort_keys=True).encode()).hexdigest()[:10]
    return f"{encoder.modality}-{encoder.spec.replace('/', '_').replace(':', '_')}-{digest}"


def item_key(modality: str, value: str, severity: float, seed: int, options: dict | None = None) -> str:
    """A cache entry is named by what went in: the file (path, size, mtime) or text, the corruption and the
    decoder's options (a digits model's text aliases; none leaves the key as it was before options existed)."""
    seed = seed if severity > 0 else 0  # uncorrupted inputs do not depend on the seed
    if registry.modality(modality).files:
        stat = Path(value).stat()
        value = f"{Path(value).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    decoded = f"|{json.dumps(options, sort_keys=True)}" if options else ""
    return hashlib.sha1(f"{modality}|{value}|{severity:.3f}|{seed}{decoded}".encode()).hexdigest()


class FeatureCache:
    """Per-item token files under ``root/<encoder key>/<item key>.safetensors`` (fp16 real tokens only).

    ``decode_options``: what the model's task tells the decoders (``fusion.model.decode_options``).
    """

    def __init__(self, root: str | Path, encoders: dict[str, Encoder], decode_options: dict | None = None):
        self.root, self.encoders, self.decode_options = Path(root), encoders, decode_options or {}

    def tokens(self, modality: str, values: list[str], severity: float | list[float] = 0.0,
               seed: int | list[int] = 0, progress: str | None = None) -> list[dict]:
        """Cached features for a list of files/texts -> list of {"values": (T, D), "meta": ...} per item.

        ``severity``/``seed`` (scalars or one per item) corrupt the decoded input before encoding.
        """
        n = len(values)
        severities = severity if isinstance(severity, list) else [severity] * n
        seeds = seed if isinstance(seed, list) else [seed] * n
        encoder = self.encoders[modality]
        folder = self.root / encoder_key(encoder)
        folder.mkdir(parents=True, exist_ok=True)
        options = self.decode_options.get(modality)
        keys = [item_key(modality, v, s, sd, options) for v, s, sd in zip(values, severities, seeds)]
        missing = sorted({i for i, k in enumerate(keys) if not (folder / f"{k}.safetensors").exists()})
        steps = range(0, len(missing), BATCH)
        for start in tqdm(steps, desc=progress, disable=progress is None or not missing, leave=False):
            chunk = missing[start:start + BATCH]
            items = []
            for i in chunk:
                decoded, _ = decode_inputs(self.encoders, **{modality: values[i]}, corruption={modality: severities[i]},
                                           seed=seeds[i], decode_options=self.decode_options)
                items.append(decoded[modality])
            encoded = encoder.encode(items)
            for row, i in enumerate(chunk):
                self.save(folder / f"{keys[i]}.safetensors", encoded, row)
        return [self.load(folder / f"{k}.safetensors") for k in keys]

    @staticmethod
    def save(path: Path, encoded: Tokens, row: int) -> None:
        real = encoded.mask[row]
        tensors = {"values": encoded.values[row][real].to(torch.float16).cpu().contiguous()}
        meta = {"grid": json.dumps(encoded.grid), "seconds_per_token": json.dumps(encoded.seconds_per_token),
                "token_strings": json.dumps(encoded.token_strings[row] if encoded.token_strings else None)}
        tmp = path.with_suffix(".tmp")
        save_file(tensors, tmp, metadata=meta)
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> dict:
        # Read into memory rather than memory-map: a training split holds tens of thousands of these
        # files, and one mapping each runs into the kernel's limit (vm.max_map_count, 65,530 by default).
        raw = path.read_bytes()
        header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
        meta = {k: json.loads(v) for k, v in header.get("__metadata__", {}).items()}
        return {"values": load(raw)["values"], **meta}


def collate(items: list[dict | None], dim: int | None = None, device="cpu") -> Tokens | None:
    """Cached items (None = absent in that row) -> a padded Tokens batch, or None if all are absent.

    The token width is the items' own (``dim``, the model's width, is kept for callers: a fine-tuning
    prefix can be narrower than the tokens it becomes).
    """
    if all(item is None for item in items):
        return None
    length = max(item["values"].shape[0] for item in items if item is not None)
    dim = next(item for item in items if item is not None)["values"].shape[-1]
    values = torch.zeros(len(items), length, dim)
    mask = torch.zeros(len(items), length, dtype=torch.bool)
    for row, item in enumerate(items):
        if item is not None:
            n = item["values"].shape[0]
            values[row, :n], mask[row, :n] = item["values"].float(), True
    first = next(item for item in items if item is not None)
    grid = tuple(first["grid"]) if first.get("grid") else None
    pooled = masked_mean(values, mask)
    return Tokens(values.to(device), mask.to(device), pooled.to(device), grid, first.get("seconds_per_token"),
                  [item.get("token_strings") or [] if item else [] for item in items])
