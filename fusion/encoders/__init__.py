"""Pretrained encoders, one per modality, behind the ``Tokens`` interface.

An encoder spec is a dict ``{"name": ..., **options}`` (a bare string means ``{"name": string}``):

- image: ``efficientnet-lite0`` (options ``size``, ``preprocessing`` = "digit" | "center", ``blocks``)
- audio: ``whisper-base`` or ``whisper-tiny.en`` (option ``layers``)
- text:  ``all-minilm-l6-v2``
- any:   ``hf:<repo id or local folder>``, a transformers backbone for that modality.
"""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING

from .whisper_weights import WHISPER_MODELS

if TYPE_CHECKING:
    from .base import Encoder

_ENCODER_CACHE: dict[tuple[str, str, str], Encoder] = {}

MODALITIES = ("image", "audio", "text")
DEFAULT_SPECS = {
    "image": {"name": "efficientnet-lite0", "size": 128, "preprocessing": "digit", "blocks": 15},
    "audio": {"name": "whisper-base", "layers": 4},
    "text": {"name": "all-minilm-l6-v2"},
}
# Token width of each DEFAULT_SPECS encoder, so a config can be written without loading the weights
# (a test checks them against the loaded encoders).
DEFAULT_DIMS = {"image": 192, "audio": 512, "text": 384}

# Names that need torch load on first use, so that importing the package (the CLI's --help) stays fast.
_LAZY = {"Encoder": ".base", "Tokens": ".base", "WeightChecksumError": ".base", "resolve_device": ".base"}
__all__ = ["DEFAULT_DIMS", "DEFAULT_SPECS", "MODALITIES", "Encoder", "Tokens", "WeightChecksumError", "load_encoder",
           "load_encoders", "normalize_spec", "resolve_device", "shared_encoder"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def normalize_spec(spec) -> dict:
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ValueError(f"An encoder spec needs a 'name', got {spec!r}")
    return spec


def load_encoder(modality: str, spec, device=None) -> Encoder:
    """Build one encoder from its spec; unknown names raise a ValueError that lists the known ones."""
    from .base import resolve_device

    spec = normalize_spec(spec)
    name, options = spec.pop("name"), spec
    device = resolve_device(device)
    if name.startswith("hf:"):
        from .hf import HF_ENCODERS

        return HF_ENCODERS[modality](name[3:], device=device, **options)
    if modality == "image" and name == "efficientnet-lite0":
        from .image import EfficientNetImageEncoder

        return EfficientNetImageEncoder(device=device, **options)
    if modality == "audio":
        from .audio import WhisperAudioEncoder

        if name in WHISPER_MODELS:
            return WhisperAudioEncoder(name, device=device, **options)
    if modality == "text" and name == "all-minilm-l6-v2":
        from .text import MiniLMTextEncoder

        return MiniLMTextEncoder(device=device, **options)
    known = list(WHISPER_MODELS) if modality == "audio" else [DEFAULT_SPECS[modality]["name"]]
    raise ValueError(f"Unknown {modality} encoder {name!r}: use {', '.join(map(repr, known))} "
                     "or 'hf:<repo id or folder>'.")


def load_encoders(device=None, specs: dict | None = None) -> dict[str, Encoder]:
    """The three encoders keyed by modality ("image", "audio", "text"); ``specs`` overrides any of them.

    A spec of ``None`` leaves that modality out (a model trained without it).
    """
    specs = {**DEFAULT_SPECS, **(specs or {})}
    unknown = set(specs) - set(MODALITIES)
    if unknown:
        raise ValueError(f"Unknown modalities {sorted(unknown)}; expected some of {MODALITIES}.")
    return {m: load_encoder(m, specs[m], device) for m in MODALITIES if specs.get(m) is not None}


def shared_encoder(modality: str, spec, device=None) -> Encoder:
    """One encoder instance per (modality, spec, device) in this process."""
    from .base import resolve_device

    device = resolve_device(device)
    key = (modality, json.dumps(spec, sort_keys=True), str(device))
    if key not in _ENCODER_CACHE:
        _ENCODER_CACHE[key] = load_encoder(modality, spec, device)
    return _ENCODER_CACHE[key]
