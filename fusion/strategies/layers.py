"""Building blocks shared by the fusion strategies: projection to the shared width and attention pooling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModalityTokens:
    """One modality's tokens after projection to the shared width d.

    values:  (B, T, d) projected tokens plus the modality embedding.
    mask:    (B, T) bool, real tokens.
    present: (B,) bool, rows where this modality was given (a row with no real token is absent).
    """

    values: torch.Tensor
    mask: torch.Tensor
    present: torch.Tensor


@dataclass
class StrategyOutput:
    """What a strategy returns; ``FusionModel`` turns it into a ``FusionOutput``.

    features: (B, d) the fused representation, which the model's injected head maps to classes; or, for
    a decision-level strategy (``decides = True``: it mixes per-modality predictions), logits: (B, C).
    modality_weights: (B, M) over the model's modalities, or None.
    token_weights: {modality: (B, T_m)}.
    unimodal_logits: {modality: (B, C)} when the strategy has its own per-modality classifiers (else the
        model's auxiliary heads read each modality's mean token).
    """

    features: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    modality_weights: torch.Tensor | None = None
    token_weights: dict[str, torch.Tensor] | None = None
    unimodal_logits: dict[str, torch.Tensor] | None = None


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` restricted to ``mask``; rows with nothing allowed give all zeros (not NaN)."""
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    return torch.nan_to_num(weights, nan=0.0)


def agreement_bias(unimodal_logits: torch.Tensor, present: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """log of how well each modality's own prediction agrees with the others', (B, M, C), (B, M) -> (B, M).

    agreement_m = max over the other present modalities n of Σ_c p_m(c) p_n(c), in [0, 1]: about 1 when
    m names the same class as some other modality, about 0 when it names a class no other does (a
    conflict, or noise). A modality with no present partner has nothing to disagree with: agreement 1.
    Returned as log(max(agreement, floor)) in [log floor, 0], detached: the unimodal classifiers are
    trained on their own labels, not to sway the weights. Strategies add it, times a learned scale, to
    their modality scores, so the weights can learn to follow the evidence of a disagreement.
    """
    probs = unimodal_logits.detach().softmax(-1)
    overlap = torch.einsum("bmc,bnc->bmn", probs, probs)  # (B, M, M)
    eye = torch.eye(present.shape[1], dtype=torch.bool, device=present.device)
    partners = present[:, :, None] & present[:, None, :] & ~eye  # (B, M, M)
    best = overlap.masked_fill(~partners, 0.0).amax(-1)
    agreement = torch.where(partners.any(-1), best, torch.ones_like(best))
    return agreement.clamp(min=floor).log()


def pool_frames(values: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average every ``stride`` consecutive tokens (masked), (B, T, D) -> (B, ceil(T/stride), D).

    Windows start at fixed positions, so a row pools the same way alone or padded in a batch.
    """
    if stride <= 1:
        return values, mask
    length = values.shape[1]
    pad = (-length) % stride
    weights = F.pad(mask.to(values.dtype), (0, pad))
    summed = F.pad(values * mask.unsqueeze(-1), (0, 0, 0, pad))
    windows = weights.shape[1] // stride
    counts = weights.view(-1, windows, stride).sum(-1)
    pooled = summed.view(values.shape[0], windows, stride, -1).sum(2) / counts.clamp(min=1.0).unsqueeze(-1)
    return pooled, counts > 0


class ModalityProjection(nn.Module):
    """LayerNorm + Linear from an encoder's width to d, plus a learned modality embedding.

    For a fixed token layout (an image's feature grid, ``positions`` cells) the Linear is one per
    position (a locally connected layer, (T, D, d) weights): a mean or attention-weighted sum of the
    projected tokens is then any linear function of the whole grid, as a flattened read-out is. With one
    shared Linear plus a position embedding it could only add "what" and "where", not tie them, and a
    digit is exactly which strokes are where (the model card has the probes).
    """

    def __init__(self, in_dim: int, d_model: int, positions: int = 0):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.embedding = nn.Parameter(torch.zeros(d_model))
        nn.init.normal_(self.embedding, std=0.02)
        self.positions = positions
        if positions:
            bound = 1 / in_dim**0.5  # nn.Linear's default initialisation, per position
            self.weight = nn.Parameter(torch.empty(positions, in_dim, d_model).uniform_(-bound, bound))
            self.bias = nn.Parameter(torch.empty(positions, d_model).uniform_(-bound, bound))
        else:
            self.linear = nn.Linear(in_dim, d_model)

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> ModalityTokens:
        normed = self.norm(values)
        if not self.positions:
            projected = self.linear(normed)
        elif values.shape[1] == self.positions:
            projected = torch.einsum("btd,tde->bte", normed, self.weight) + self.bias
        elif mask.any():  # an all-absent placeholder has no layout; real tokens must match it
            raise ValueError(f"expected {self.positions} tokens in a fixed layout, got {values.shape[1]}")
        else:
            projected = values.new_zeros(*values.shape[:2], self.embedding.shape[0])
        projected = (projected + self.embedding) * mask.unsqueeze(-1)
        return ModalityTokens(projected, mask, mask.any(1))


class AttentionPool(nn.Module):
    """Additive attention pooling over one modality's tokens: weights sum to 1 under the mask.

    (B, T, d), (B, T) -> pooled (B, d), weights (B, T).
    """

    def __init__(self, d_model: int):
        super().__init__()
        # No bias on the last layer: a softmax ignores a shift shared by all tokens.
        self.score = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, 1, bias=False))

    def forward(self, tokens: ModalityTokens) -> tuple[torch.Tensor, torch.Tensor]:
        weights = masked_softmax(self.score(tokens.values).squeeze(-1), tokens.mask)
        return torch.einsum("bt,btd->bd", weights, tokens.values), weights


def classifier(d_model: int, num_classes: int, dropout: float) -> nn.Sequential:
    """A classification head: (B, d) -> (B, C) (the model's head, and each modality's own)."""
    return nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(d_model, num_classes))


class UnimodalClassifiers(nn.ModuleDict):
    """One ``classifier`` per modality on that modality's own summary: what it alone predicts.

    forward: pooled {modality: (B, d)}, present (B, M) -> (logits {modality: (B, C)}, agreement (B, M)),
    where agreement is ``agreement_bias`` of those predictions: the evidence of a disagreement that
    attention, cross and late add (times a learned scale) to their modality scores.
    """

    def __init__(self, modalities: tuple[str, ...], d_model: int, num_classes: int, dropout: float):
        super().__init__({m: classifier(d_model, num_classes, dropout) for m in modalities})

    def forward(self, pooled: dict[str, torch.Tensor], present: torch.Tensor):
        logits = {m: head(pooled[m]) for m, head in self.items()}
        return logits, agreement_bias(torch.stack(list(logits.values()), dim=1), present)
