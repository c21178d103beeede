"""Feature-level baseline: pooled embeddings concatenated -> MLP -> logits."""

from __future__ import annotations

import torch
from torch import nn

from ..encoders.base import masked_mean
from .layers import ModalityTokens, StrategyOutput
from .registry import StrategyConfig, register_strategy


@register_strategy("concat")
class ConcatFusion(nn.Module):
    """Concatenate each modality's mean-pooled tokens; an absent modality is a learned "absent" vector.

    No attention, so no modality or token weights: the explanation is the Shapley contributions.
    """

    Config = StrategyConfig  # no options of its own
    audio_pool = 4

    def __init__(self, modalities: tuple[str, ...], d_model: int, num_classes: int, dropout: float = 0.1,
                 config: StrategyConfig | None = None):  # the registry passes its (empty) options
        super().__init__()
        self.modalities = modalities
        self.absent = nn.ParameterDict({m: nn.Parameter(torch.zeros(d_model)) for m in modalities})
        self.mix = nn.Sequential(nn.Linear(len(modalities) * d_model, d_model), nn.GELU(), nn.Dropout(dropout))

    def forward(self, tokens: dict[str, ModalityTokens]) -> StrategyOutput:
        pooled = {m: masked_mean(tokens[m].values, tokens[m].mask) for m in self.modalities}
        parts = [torch.where(tokens[m].present[:, None], pooled[m], self.absent[m]) for m in self.modalities]
        return StrategyOutput(features=self.mix(torch.cat(parts, dim=-1)), token_weights={})
