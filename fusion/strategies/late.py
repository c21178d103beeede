"""Decision-level (late) fusion: one classifier per modality, log-probabilities mixed by a learned gate."""

from __future__ import annotations

import torch
from torch import nn

from ..encoders.base import masked_mean
from .layers import AttentionPool, ModalityTokens, StrategyOutput, UnimodalClassifiers, masked_softmax
from .registry import StrategyConfig, register_strategy


@register_strategy("late")
class LateFusion(nn.Module):
    """fused log p = Σ_m a_m log p_m, a = softmax over present modalities of gate(pooled_m) + s·log agreement_m.

    Each modality is attention-pooled (so it has token weights) and classified on its own; the gate
    scores each modality from its own summary next to the mean summary of the present modalities (how
    reliable an input looks), and the learned scale s weighs the evidence of a disagreement: whether the
    modality's own prediction matches another modality's (``agreement_bias``).
    """

    has_unimodal_classifiers = True
    decides = True  # returns logits (a mixture of the modalities' own predictions), so no head is injected

    Config = StrategyConfig  # no options of its own
    audio_pool = 4

    def __init__(self, modalities: tuple[str, ...], d_model: int, num_classes: int, dropout: float = 0.1,
                 config: StrategyConfig | None = None):  # the registry passes its (empty) options
        super().__init__()
        self.modalities = modalities
        self.pools = nn.ModuleDict({m: AttentionPool(d_model) for m in modalities})
        self.classifiers = UnimodalClassifiers(modalities, d_model, num_classes, dropout)
        self.gates = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(2 * d_model), nn.Linear(2 * d_model, 64),
                                                     nn.GELU(), nn.Linear(64, 1)) for m in modalities})
        self.agreement_scale = nn.Parameter(torch.ones(1))

    def forward(self, tokens: dict[str, ModalityTokens]) -> StrategyOutput:
        pooled, token_weights = {}, {}
        for m in self.modalities:
            pooled[m], token_weights[m] = self.pools[m](tokens[m])
        present = torch.stack([tokens[m].present for m in self.modalities], dim=1)
        logits, agreement = self.classifiers(pooled, present)
        context = masked_mean(torch.stack([pooled[m] for m in self.modalities], dim=1), present)  # (B, d)
        gate_scores = [self.gates[m](torch.cat([pooled[m], context], -1)).squeeze(-1) for m in self.modalities]
        stacked = torch.stack([logits[m] for m in self.modalities], dim=1)  # (B, M, C)
        scores = torch.stack(gate_scores, dim=1) + self.agreement_scale * agreement
        weights = masked_softmax(scores, present)  # (B, M)
        log_probs = torch.log_softmax(stacked, -1)
        fused = torch.einsum("bm,bmc->bc", weights, log_probs)
        return StrategyOutput(logits=fused, modality_weights=weights, token_weights=token_weights,
                              unimodal_logits=logits)
