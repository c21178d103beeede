"""The fusion strategies: one focused module each, one interface (modality-keyed ``ModalityTokens`` in,
``StrategyOutput`` out)."""

from .attention import ModalityAttentionFusion
from .concat import ConcatFusion
from .cross import CrossEncoderFusion, attention_rollout
from .late import LateFusion
from .layers import ModalityTokens, StrategyOutput

STRATEGIES = {
    "concat": ConcatFusion,
    "attention": ModalityAttentionFusion,
    "cross": CrossEncoderFusion,
    "late": LateFusion,
}

__all__ = ["STRATEGIES", "ConcatFusion", "CrossEncoderFusion", "LateFusion", "ModalityAttentionFusion",
           "ModalityTokens", "StrategyOutput", "attention_rollout"]
