"""Cross-modal transformer ("cross-encoder"): [CLS] + all modality tokens through pre-LN encoder layers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..encoders.base import masked_mean
from .layers import ModalityTokens, StrategyOutput, UnimodalClassifiers
from .registry import StrategyConfig, register_strategy


@dataclass(frozen=True)
class CrossConfig(StrategyConfig):
    heads: int = 4  # attention heads per layer; must divide d_model
    layers: int = 2
    mlp_ratio: int = 2  # the MLP's width as a multiple of d_model
    bounds = {"heads": (1, 64), "layers": (1, 12), "mlp_ratio": (1, 8)}


class EncoderLayer(nn.Module):
    """Pre-LN transformer encoder layer that also returns its attention probabilities (B, H, L, L)."""

    def __init__(self, d_model: int, heads: int, dropout: float, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_ratio * d_model, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, d), key_bias (B, L) added to every query's score for that key (-inf = padding)."""
        h = self.norm1(x)
        heads, length = self.attention.num_heads, x.shape[1]
        mask = key_bias[:, None, None, :].expand(-1, heads, length, -1).reshape(-1, length, length)
        attended, probs = self.attention(h, h, h, attn_mask=mask, need_weights=True, average_attn_weights=False)
        x = x + attended
        return x + self.mlp(self.norm2(x)), probs


def attention_rollout(attentions: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): (B, H, L, L) per layer -> (B, L, L).

    Each layer's head-averaged attention is mixed with the identity for the residual path,
    0.5·A + 0.5·I, rows renormalised, and the layers multiplied from first to last.
    """
    rollout = None
    for probs in attentions:
        mixed = 0.5 * probs.mean(1) + 0.5 * torch.eye(probs.shape[-1], device=probs.device, dtype=probs.dtype)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout


@register_strategy("cross")
class CrossEncoderFusion(nn.Module):
    """[CLS] + every modality's tokens (each carries its modality embedding; padding is masked) through
    ``layers`` pre-LN layers; the head reads [CLS]. The MLP is 2× wide rather than the usual 4×: a third
    less compute on a CPU for no measurable loss on the digits task.

    Each modality's mean token also has its own classifier (what it alone predicts); in every layer a
    key of modality m gets s_l · log agreement_m added to its attention scores (``agreement_bias``, s_l
    learned per layer), so a modality whose prediction no other modality shares can be attended less.

    Token weights are the rollout from [CLS] to each token, renormalised within a modality; a modality's
    weight is the rollout mass on its tokens, renormalised over the present modalities.
    """

    has_unimodal_classifiers = True
    Config = CrossConfig
    audio_pool = 8  # it attends over every token: 0.16 s per audio token keeps that cheap

    def __init__(self, modalities: tuple[str, ...], d_model: int, num_classes: int, dropout: float = 0.1,
                 config: CrossConfig | None = None):
        super().__init__()
        config = config or CrossConfig()
        heads, layers, mlp_ratio = config.heads, config.layers, config.mlp_ratio
        self.modalities = modalities
        self.cls = nn.Parameter(torch.randn(d_model) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, dropout, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.classifiers = UnimodalClassifiers(modalities, d_model, num_classes, dropout)
        self.agreement_scale = nn.Parameter(torch.ones(layers))

    def forward(self, tokens: dict[str, ModalityTokens]) -> StrategyOutput:
        parts = [tokens[m] for m in self.modalities]
        batch = parts[0].values.shape[0]
        x = torch.cat([self.cls.expand(batch, 1, -1)] + [p.values for p in parts], dim=1)
        real = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=x.device)] + [p.mask for p in parts], 1)
        pooled = {m: masked_mean(p.values, p.mask) for m, p in zip(self.modalities, parts)}
        present = torch.stack([p.present for p in parts], dim=1)
        unimodal, bias = self.classifiers(pooled, present)  # bias (B, M)
        token_bias = torch.cat([x.new_zeros(batch, 1)] + [bias[:, i:i + 1].expand(-1, p.mask.shape[1])
                                                            for i, p in enumerate(parts)], dim=1)  # (B, L)
        padding = torch.zeros_like(token_bias).masked_fill(~real, float("-inf"))
        attentions = []
        for scale, layer in zip(self.agreement_scale, self.layers):
            x, probs = layer(x, scale * token_bias + padding)
            attentions.append(probs)
        cls_rollout = attention_rollout(attentions)[:, 0]  # (B, L)

        token_weights, mass, start = {}, [], 1
        for m, part in zip(self.modalities, parts):
            share = cls_rollout[:, start:start + part.mask.shape[1]] * part.mask
            start += part.mask.shape[1]
            total = share.sum(1, keepdim=True)
            token_weights[m] = share / total.clamp(min=1e-12)
            mass.append(total.squeeze(1) * part.present)
        mass = torch.stack(mass, dim=1)
        return StrategyOutput(features=self.norm(x[:, 0]),
                              modality_weights=mass / mass.sum(1, keepdim=True).clamp(min=1e-12),
                              token_weights=token_weights, unimodal_logits=unimodal)
