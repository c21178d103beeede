"""``TrainConfig``: everything a training run is told, in one dataclass passed whole (the CLI's defaults).

Plain data, importable without torch, so ``python -m fusion --help`` can show the defaults at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .errors import OptionError

STRATEGY_NAMES = ("attention", "cross", "late", "concat")  # what fusion.strategies registers, default first
TEXT_ALIAS_SETS = ("digits",)  # built-in tasks (modules of fusion.data) with a TEXT_ALIASES of their own
# Whole-number settings and their bounds (the CLI's options too): far beyond any useful run, yet a typo such as
# --soup 100000000 or --batch-size 10**9 is refused instead of allocating memory for it.
WHOLE_NUMBER_BOUNDS = {"epochs": (1, 1000), "patience": (1, 1000), "batch_size": (1, 4096), "soup": (1, 10),
                       "image_size": (1, 1024), "seed": (0, 2**32 - 1)}  # numpy seeds are 32-bit

MAX_BLOCKS = 64  # encoder blocks ``--finetune`` may train (fusion.finetune)


def parse_finetune(text: str | None) -> dict[str, int]:
    """"image:1,text:2" -> {"image": 1, "text": 2}; None or "" -> {}. OptionError names what is wrong."""
    if not text:
        return {}
    if not isinstance(text, str):
        raise OptionError(f"finetune must be a text like 'image:1,text:1'; got {text!r}.")
    blocks: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = part.strip().partition(":")
        if not sep or not name or not count.strip().isdigit() or not 1 <= int(count) <= MAX_BLOCKS:
            raise OptionError(f"finetune must be MODALITY:N[,MODALITY:N...] with N in 1..{MAX_BLOCKS} "
                              f"(e.g. image:1); got {text!r}.")
        if name in blocks:
            raise OptionError(f"finetune names {name!r} twice: {text!r}.")
        blocks[name] = int(count)
    return blocks


@dataclass
class TrainConfig:
    fusion: str = "attention"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    patience: int = 5
    ema_decay: float = 0.998  # validate and save an exponential moving average of the weights; 0: the raw weights
    modality_dropout: float = 0.3
    reliability: float = 0.3
    aux_weight: float = 0.5
    consistency_weight: float = 0.0
    corrupted_copies: bool = True
    seed: int = 0
    soup: int = 1  # runs from one initialisation (seeds seed, seed+1, ...) whose weights are averaged
    image_size: int = 128
    image_preprocessing: str = "digit"
    image_blocks: int | None = 15  # EfficientNet blocks whose output are the image tokens; None: the 1280-d head
    # Each modality's encoder: a built-in name, or "hf:<repo id or folder>" (a transformers backbone, which takes
    # none of the built-in encoders' options: image_size, image_preprocessing, image_blocks, audio_layers).
    image_encoder: str = "efficientnet-lite0"
    text_encoder: str = "all-minilm-l6-v2"
    audio_encoder: str = "whisper-base"
    audio_layers: int | None = 4  # Whisper layers whose output are the audio tokens; None: all of them
    negative_weight: float = 0.5  # outlier exposure: the weight of negatives' pull towards no class (uniform)
    class_noun: str = "class"  # what the classes are ("digit"): the model says "no digit recognised"
    text_aliases: str | None = None  # "digits": the model maps "oh", "nought" ... to "zero" (config text_aliases)
    finetune: str | None = None  # "image:1,text:1": also train the last N blocks of those encoders (fusion.finetune)
    finetune_lr: float | None = None  # those blocks' learning rate; None: a tenth of lr

    @property
    def finetune_blocks(self) -> dict[str, int]:
        """{modality: N} from ``finetune``."""
        return parse_finetune(self.finetune)

    @property
    def blocks_lr(self) -> float:
        return self.lr / 10 if self.finetune_lr is None else self.finetune_lr

    def __post_init__(self):
        """Refuse settings a run cannot use, naming the option (before any feature is computed)."""
        def need(condition, name, rule):
            if not condition:
                raise OptionError(f"{name} must be {rule}; got {getattr(self, name)!r}.")

        need(self.fusion in STRATEGY_NAMES, "fusion", f"one of {', '.join(STRATEGY_NAMES)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) or (f.type == "float" and isinstance(value, int)):
                need(math.isfinite(value) and value >= 0, f.name, "a finite number ≥ 0")
        for name, (low, high) in WHOLE_NUMBER_BOUNDS.items():
            need(type(getattr(self, name)) is int and low <= getattr(self, name) <= high, name,
                 f"a whole number from {low} to {high}")
        need(self.lr > 0, "lr", "> 0")
        for name in ("ema_decay", "modality_dropout"):
            need(getattr(self, name) < 1, name, "below 1")
        need(self.reliability <= 1, "reliability", "a probability, at most 1")
        need(self.image_preprocessing in ("digit", "center"), "image_preprocessing", "'digit' or 'center'")
        for name in ("image_encoder", "audio_encoder", "text_encoder"):
            need(isinstance(getattr(self, name), str) and getattr(self, name).strip(), name,
                 "an encoder name or hf:<repo id or folder>")
        need(self.text_aliases in (None, *TEXT_ALIAS_SETS), "text_aliases", f"None or one of {TEXT_ALIAS_SETS}")
        need(self.finetune_lr is None or self.finetune_lr > 0, "finetune_lr", "None or > 0")
        self.finetune_blocks  # noqa: B018 (parses "image:1,text:1", an OptionError naming the option otherwise)
        for name in ("image_blocks", "audio_layers"):
            need(getattr(self, name) is None or (type(getattr(self, name)) is int and getattr(self, name) >= 1),
                 name, "None or a whole number ≥ 1")
