"""Pretrained encoders, one per modality, behind the ``Tokens`` interface.

An encoder spec is a dict ``{"name": ..., **options}`` (a bare string means ``{"name": string}``):

- image: ``efficientnet-lite0`` (options ``size``, ``preprocessing`` = "digit" | "center", ``blocks``)
- audio: ``whisper-base`` or ``whisper-tiny.en`` (option ``layers``)
- text:  ``all-minilm-l6-v2``
- any:   ``hf:<repo id or local folder>``, a transformers backbone for that modality;
- a registered modality's own names, built by its ``Modality.build`` (``fusion.modalities``).
"""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING

from .. import modalities as registry

if TYPE_CHECKING:
    from .base import Encoder

_ENCODER_CACHE: dict[tuple[str, str, str], Encoder] = {}

# The built-in modalities, their default encoders and those encoders' token widths (so a config can be
# written without loading the weights; a test checks them against the loaded encoders).
MODALITIES = ("image", "audio", "text")
DEFAULT_SPECS = {m: dict(registry.modality(m).encoder) for m in MODALITIES}
DEFAULT_DIMS = {m: registry.modality(m).dim for m in MODALITIES}

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
    """Build one encoder from its spec: ``hf:`` backbones here, anything else by the modality's ``build``
    (unknown names raise a ValueError that lists the known ones)."""
    from .base import resolve_device

    spec = normalize_spec(spec)
    name, options = spec.pop("name"), spec
    device = resolve_device(device)
    if name.startswith("hf:"):
        from .hf import HF_ENCODERS

        return HF_ENCODERS[modality](name[3:], device=device, **options)
    return registry.modality(modality).build(options, name, device)


def load_encoders(device=None, specs: dict | None = None) -> dict[str, Encoder]:
    """The three encoders keyed by modality ("image", "audio", "text"); ``specs`` overrides any of them.

    A spec of ``None`` leaves that modality out (a model trained without it).
    """
    specs = {**DEFAULT_SPECS, **(specs or {})}
    unknown = set(specs) - set(registry.names())
    if unknown:
        raise ValueError(f"Unknown modalities {sorted(unknown)}; expected some of {registry.names()}.")
    return {m: load_encoder(m, spec, device) for m, spec in specs.items() if spec is not None}


def shared_encoder(modality: str, spec, device=None) -> Encoder:
    """One encoder instance per (modality, spec, device) in this process."""
    from .base import resolve_device

    device = resolve_device(device)
    key = (modality, json.dumps(spec, sort_keys=True), str(device))
    if key not in _ENCODER_CACHE:
        _ENCODER_CACHE[key] = load_encoder(modality, spec, device)
    return _ENCODER_CACHE[key]
