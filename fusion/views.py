"""Pictures of a ``Prediction``: the weights chart, token maps over the image, the audio and the words.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state) and returned as
RGB arrays, so nothing stays open between requests.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .encoders import MODALITIES
from .predict import Prediction

COLORS = {"image": "#4C72B0", "audio": "#DD8452", "text": "#55A868"}
HEAT = colormaps["inferno"]


def figure_to_array(fig: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def weights_chart(p: Prediction, modalities=MODALITIES) -> np.ndarray:
    """Three panels per modality: attention weight, Shapley contribution, what it predicts alone."""
    fig = Figure(figsize=(7.2, 2.5), dpi=100)
    axes = fig.subplots(1, 3, sharey=True)
    y = np.arange(len(modalities))
    absent = [m not in p.modalities for m in modalities]
    colors = [COLORS[m] for m in modalities]

    weights = [0.0 if p.modality_weights is None else p.modality_weights.get(m, 0.0) for m in modalities]
    axes[0].barh(y, weights, color=colors)
    axes[0].set(xlim=(0, 1), xticks=[0, 0.5, 1], title="attention weight" if p.modality_weights is not None
                else "attention weight (none: concat)")
    contributions = [p.contributions.get(m, 0.0) if p.contributions else 0.0 for m in modalities]
    axes[1].barh(y, contributions, color=colors)
    span = max(0.5, max(abs(c) for c in contributions) * 1.15)
    axes[1].set(xlim=(-span, span), xticks=[-round(span, 1), 0, round(span, 1)],
                title=f"contribution to log p({p.label})")
    axes[1].axvline(0, color="k", lw=0.6)
    alone = [p.unimodal[m]["prob"] if m in p.unimodal else 0.0 for m in modalities]
    axes[2].barh(y, alone, color=colors, alpha=0.6)
    axes[2].set(xlim=(0, 1), xticks=[0, 0.5, 1], title="alone it says")
    for i, m in enumerate(modalities):
        if m in p.unimodal:
            u = p.unimodal[m]
            axes[2].text(0.02, i, f"{u['label']}  ({u['prob']:.0%})", va="center", fontsize=10, weight="bold")
        for ax in axes:
            if absent[i]:
                ax.barh(i, ax.get_xlim()[1] - ax.get_xlim()[0], left=ax.get_xlim()[0], color="none",
                        edgecolor="#bbbbbb", hatch="//", lw=0)
                ax.text(np.mean(ax.get_xlim()), i, "absent", ha="center", va="center", color="#888888", fontsize=9)
    axes[0].set_yticks(y, modalities)
    axes[0].invert_yaxis()
    for ax in axes:
        ax.tick_params(labelsize=9)
        ax.title.set_fontsize(10)
        ax.grid(axis="x", alpha=0.3)
    # Fixed margins and few fixed ticks: layout passes and tick generation dominate the draw time.
    fig.subplots_adjust(left=0.09, right=0.975, top=0.88, bottom=0.11, wspace=0.22)
    return figure_to_array(fig)


def heat_rgb(weights: np.ndarray, width: int, height: int) -> np.ndarray:
    """A (rows, cols) weight grid, scaled to its maximum and upsampled smoothly -> height×width×3 colours."""
    grid = weights / max(float(weights.max()), 1e-12)
    heat = np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize((width, height),
                                                                           Image.Resampling.BICUBIC))
    return HEAT(heat / 255.0)[..., :3] * 255


def image_maps(p: Prediction) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(token weights over the network's input, the same weights over the matching part of your photo)."""
    if "image" not in p.views:
        return None, None
    crop, weights = p.views.get("image_input"), p.token_weights.get("image")
    if crop is None or weights is None:
        return crop, p.views["image"]
    grid = np.asarray(weights["weights"], dtype=np.float32)
    big = np.asarray(Image.fromarray(crop).resize((256, 256), Image.Resampling.NEAREST), dtype=np.float32)
    on_crop = 0.45 * big + 0.55 * heat_rgb(grid, 256, 256)

    photo = p.views["image"].astype(np.float32)
    top, left, bottom, right = (int(round(v)) for v in p.views["image_field"])
    heat = heat_rgb(grid, max(1, right - left), max(1, bottom - top))
    # The field can reach past the photo's edges (the digit is centred by mass): clip both sides alike.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(bottom, photo.shape[0]), min(right, photo.shape[1])
    if y1 > y0 and x1 > x0:
        region = photo[y0:y1, x0:x1]
        photo[y0:y1, x0:x1] = 0.5 * region + 0.5 * heat[y0 - top:y1 - top, x0 - left:x1 - left]
    return on_crop.astype(np.uint8), np.clip(photo, 0, 255).astype(np.uint8)


def audio_plot(p: Prediction, sample_rate: int = 16000) -> np.ndarray | None:
    """The waveform with the per-token weights drawn over time."""
    if "audio" not in p.views:
        return None
    wave = p.views["audio"]
    t = np.arange(len(wave)) / sample_rate
    fig = Figure(figsize=(7.2, 1.9), dpi=100)
    ax = fig.subplots()
    step = max(1, len(wave) // 4000)  # plotting every sample of 30 s is slow and looks the same
    ax.plot(t[::step], wave[::step], color="#999999", lw=0.6)
    duration = max(t[-1] if len(t) else 1.0, 1e-3)
    ax.set(xlim=(0, duration), xticks=np.round(np.linspace(0, duration, 5), 1), xlabel="seconds", yticks=[])
    weights = p.token_weights.get("audio")
    if weights:
        w = np.asarray(weights["weights"])
        edges = np.arange(len(w) + 1) * weights["seconds_per_token"]
        twin = ax.twinx()
        twin.stairs(w, edges, fill=True, color=COLORS["audio"], alpha=0.45)
        twin.set(ylim=(0, max(float(w.max()) * 1.1, 1e-6)), yticks=[], ylabel="weight")
        ax.set_title("where in the recording the model looked", fontsize=10)
    fig.subplots_adjust(left=0.03, right=0.95, top=0.85, bottom=0.25)
    return figure_to_array(fig)


def text_highlights(p: Prediction) -> list[tuple[str, float | None]]:
    """Words with their weight scaled to [0, 1] (word pieces merged, special tokens dropped)."""
    weights = p.token_weights.get("text")
    if not weights:
        return [(p.views["text"], None)] if "text" in p.views else []
    words: list[list] = []
    for token, w in zip(weights["tokens"], weights["weights"]):
        if token in ("[CLS]", "[SEP]", "[PAD]"):
            continue
        if token.startswith("##") and words:
            words[-1][0] += token[2:]
            words[-1][1] += w
        else:
            words.append([token, w])
    top = max((w for _, w in words), default=1.0) or 1.0
    out = []
    for i, (word, w) in enumerate(words):
        out.append((word, round(w / top, 3)))
        if i < len(words) - 1:
            out.append((" ", None))
    return out


def what_if_rows(p: Prediction) -> list[list]:
    """One row per non-empty subset of the present modalities: what the fusion predicts with only those."""
    rows = sorted(p.subsets, key=lambda s: (-len(s["modalities"]), s["modalities"]))
    return [[" + ".join(s["modalities"]), s["label"], f"{s['prob']:.1%}"] for s in rows]


def compare_chart(predictions: dict[str, Prediction], modalities=MODALITIES) -> np.ndarray:
    """Strategies side by side: their modality weights (or contributions for concat) and prediction."""
    fig = Figure(figsize=(7.2, 2.6), dpi=100)
    axes = fig.subplots(1, 2)
    names = list(predictions)
    x = np.arange(len(names))
    width = 0.8 / len(modalities)
    for i, m in enumerate(modalities):
        w = [predictions[n].modality_weights.get(m, 0.0) if predictions[n].modality_weights else np.nan for n in names]
        c = [predictions[n].contributions.get(m, 0.0) if predictions[n].contributions else 0.0 for n in names]
        axes[0].bar(x + i * width, w, width, color=COLORS[m], label=m)
        axes[1].bar(x + i * width, c, width, color=COLORS[m], label=m)
    for ax, title in zip(axes, ("attention weight", "Shapley contribution")):
        ax.set_xticks(x + width, [f"{n}\n→ {predictions[n].label} ({predictions[n].probs[predictions[n].label]:.0%})"
                                  for n in names], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, 1)
    axes[1].axhline(0, color="k", lw=0.6)
    axes[0].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return figure_to_array(fig)
