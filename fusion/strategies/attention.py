"""Modality-level attention: attention pooling within each modality, then a learned multi-head query
attends over the present modalities."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..encoders.base import masked_mean
from .layers import AttentionPool, ModalityTokens, StrategyOutput, UnimodalClassifiers, masked_softmax
from .registry import StrategyConfig, register_strategy


@dataclass(frozen=True)
class AttentionConfig(StrategyConfig):
    heads: int = 4  # query heads over the modalities; must divide d_model
    bounds = {"heads": (1, 64)}


@register_strategy("attention")
class ModalityAttentionFusion(nn.Module):
    """a_{h,m} = softmax_m(q_h · k_{h,m} / sqrt(d_h) + s_h · log agreement_m) over present modalities;
    z = W_o concat_h Σ_m a_{h,m} v_{h,m}.

    The query is a learned vector plus a projection of the mean of the present modalities' summaries.
    Each modality's summary also has its own classifier (what it alone predicts); ``agreement_bias``
    turns those predictions into the evidence of a disagreement, which a dot-product query over
    summaries cannot see on its own, and the learned per-head scale s_h decides how much it counts.
    Unlike TorchMultimodal's AttentionFusion the weights are returned: modality_weights (B, M) is the
    mean over heads of each head's weights; absent modalities get 0.
    """

    has_unimodal_classifiers = True
    Config = AttentionConfig
    audio_pool = 4

    def __init__(self, modalities: tuple[str, ...], d_model: int, num_classes: int, dropout: float = 0.1,
                 config: AttentionConfig | None = None):
        super().__init__()
        config = config or AttentionConfig()
        heads = config.heads
        if d_model % heads:
            raise ValueError(f"d_model {d_model} must be divisible by heads {heads}")
        self.modalities, self.heads, self.head_dim = modalities, heads, d_model // heads
        self.pools = nn.ModuleDict({m: AttentionPool(d_model) for m in modalities})
        self.query = nn.Parameter(torch.randn(heads, self.head_dim) * 0.02)
        self.context_query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.classifiers = UnimodalClassifiers(modalities, d_model, num_classes, dropout)
        self.agreement_scale = nn.Parameter(torch.ones(heads))

    def forward(self, tokens: dict[str, ModalityTokens]) -> StrategyOutput:
        pooled, token_weights = {}, {}
        for m in self.modalities:
            pooled[m], token_weights[m] = self.pools[m](tokens[m])
        summaries = torch.stack([pooled[m] for m in self.modalities], dim=1)  # (B, M, d)
        present = torch.stack([tokens[m].present for m in self.modalities], dim=1)  # (B, M)
        batch, num_modalities, _ = summaries.shape
        keys = self.key(summaries).view(batch, num_modalities, self.heads, self.head_dim)
        values = self.value(summaries).view(batch, num_modalities, self.heads, self.head_dim)
        context = masked_mean(summaries, present)  # (B, d): the consensus of the present modalities
        query = self.query + self.context_query(context).view(batch, self.heads, self.head_dim)
        scores = torch.einsum("bhd,bmhd->bhm", query, keys) / math.sqrt(self.head_dim)
        unimodal, bias = self.classifiers(pooled, present)  # bias (B, M)
        scores = scores + self.agreement_scale[None, :, None] * bias[:, None, :]
        head_weights = masked_softmax(scores, present[:, None, :])  # (B, H, M)
        fused = torch.einsum("bhm,bmhd->bhd", head_weights, values).reshape(batch, -1)
        return StrategyOutput(features=self.out(fused),
                              modality_weights=head_weights.mean(1),
                              token_weights=token_weights, unimodal_logits=unimodal)
