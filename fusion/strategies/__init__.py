"""The fusion strategies: one focused module each, one interface (modality-keyed ``ModalityTokens`` in,
``StrategyOutput`` out), found through the registry (``@register_strategy``)."""

from ..config import STRATEGY_NAMES
from .attention import ModalityAttentionFusion
from .concat import ConcatFusion
from .cross import CrossEncoderFusion, attention_rollout
from .late import LateFusion
from .layers import ModalityTokens, StrategyOutput
from .registry import STRATEGIES, StrategyConfig, register_strategy

# The CLI lists the names without importing torch; they must be what registered itself.
assert sorted(STRATEGIES) == sorted(STRATEGY_NAMES), "fusion.config.STRATEGY_NAMES must list the strategies"

__all__ = ["STRATEGIES", "ConcatFusion", "CrossEncoderFusion", "LateFusion", "ModalityAttentionFusion",
           "ModalityTokens", "StrategyConfig", "StrategyOutput", "attention_rollout", "register_strategy"]
