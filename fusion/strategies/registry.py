"""The strategy registry: ``@register_strategy`` puts a fusion strategy and its typed options in one place.

As timm's ``@register_model``: a strategy class names its options in a frozen ``Config`` dataclass (its
defaults beside it, bounds checked on construction) and ``audio_pool``, the audio frames it averages per
token; the registry is what the model, the checkpoint validator, the CLI and the app read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from ..errors import CheckpointError

STRATEGIES: dict[str, type] = {}


@dataclass(frozen=True)
class StrategyConfig:
    """A strategy's options (none here). Subclasses add int fields and give each a (low, high) in ``bounds``."""

    bounds: ClassVar[dict[str, tuple[int, int]]] = {}

    def __post_init__(self):
        for f in fields(self):
            value, (low, high) = getattr(self, f.name), self.bounds[f.name]
            if type(value) is not int or not low <= value <= high:
                raise CheckpointError(f"config field 'strategy_config.{f.name}': must be a whole number in "
                                      f"{low}..{high}, got {value!r}.")

    @classmethod
    def from_dict(cls, options) -> StrategyConfig:
        """A checkpoint's ``strategy_config`` object -> the typed config; unknown or odd keys are refused."""
        names = [f.name for f in fields(cls)]
        if not isinstance(options, dict) or not set(options) <= set(names):
            raise CheckpointError(f"config field 'strategy_config': must be an object with some of {names}, "
                                  f"got {options!r:.80}.")
        return cls(**options)


def register_strategy(name: str):
    """Class decorator: ``@register_strategy("attention")`` registers the class under ``name``."""
    def register(cls):
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} is registered twice")
        cls.name = name
        STRATEGIES[name] = cls
        return cls
    return register
