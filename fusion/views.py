"""What the page shows of a ``Prediction``: small HTML panels (tables, bars, an SVG timeline, JPEG maps).

HTML rather than rendered figures: text stays text at the page's own size on any screen (and for screen
readers), the browser lays it out, and building a panel costs a fraction of a millisecond where a
matplotlib figure cost tens. The styles are ``CSS``, which ``app.py`` hands to the page.
"""

from __future__ import annotations

import base64
import io
import re
from html import escape

import numpy as np
from matplotlib import colormaps
from PIL import Image

from . import modalities as registry
from .encoders import MODALITIES
from .pipeline import Prediction

HEAT = (colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)  # a lookup table
WEIGHT_NAMES = {"attention": "attention over modalities", "cross": "attention rollout to [CLS]",
                "late": "the gate's share"}
LOW_CONFIDENCE = 0.5
_WORD = re.compile(r"\S+")
CSS = """
.fl-panel {font-size: var(--text-md); color: var(--body-text-color); line-height: 1.35}
.fl-panel table {border-collapse: collapse; width: 100%}
.fl-panel caption {text-align: left; font-weight: 600; padding: 2px 0 6px}
.fl-panel th, .fl-panel td {padding: 4px 6px; text-align: left; border-bottom: 1px solid var(--border-color-primary);
  white-space: nowrap}
.fl-panel td.num {text-align: right; font-variant-numeric: tabular-nums}
.fl-panel .fl-foot {margin: 6px 0 0; font-size: var(--text-sm)}
.fl-bar {display: inline-block; vertical-align: middle; width: 90px; height: 12px; margin-right: 6px;
  background: var(--background-fill-secondary); border-radius: 3px; position: relative; overflow: hidden}
.fl-bar > span {position: absolute; top: 0; bottom: 0; border-radius: 3px}
.fl-bar.fl-diverging::after {content: ""; position: absolute; left: 50%; top: 0; bottom: 0; width: 1px;
  background: var(--body-text-color)}
.fl-swatch {display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px}
.fl-maps {display: flex; flex-wrap: wrap; gap: 12px}
.fl-maps figure {margin: 0; flex: 1 1 150px; max-width: 220px}
.fl-maps figure.fl-audio {flex: 3 1 260px; max-width: none}
.fl-maps img {width: 100%; height: auto; border-radius: 4px; display: block}
.fl-maps figcaption {font-size: var(--text-sm); margin-top: 4px}
.fl-audio svg {width: 100%; height: 96px; display: block; background: var(--background-fill-secondary);
  border-radius: 4px}
.fl-ticks {display: flex; justify-content: space-between; font-size: var(--text-sm)}
.fl-words {line-height: 2}
.fl-words mark {padding: 2px 4px; border-radius: 4px; margin-right: 2px}
.fl-scroll {overflow-x: auto}
.fl-scroll-hint {display: none; font-size: var(--text-sm); margin: 0 0 4px}
@media (max-width: 600px) {
  .fl-scroll-hint {display: block}
  .fl-panel table {font-size: var(--text-sm)}
  .fl-bar {width: 24px; margin-right: 3px}
  .fl-panel th, .fl-panel td {padding: 3px 3px}
  .fl-panel thead th {white-space: normal}
  .fl-maps figure {flex: 1 1 120px; max-width: 170px}
}
"""


def color(name: str) -> str:
    """A modality's colour on the page (``Modality.color``)."""
    return registry.modality(name).color


def bar(fraction: float, fill: str) -> str:
    """A 0..1 bar (drawn, so it needs no text contrast; the number beside it is the text)."""
    return (f'<span class="fl-bar" aria-hidden="true"><span style="left:0;width:{100 * min(max(fraction, 0), 1):.1f}%;'
            f'background:{fill}"></span></span>')


def diverging_bar(value: float, span: float, fill: str) -> str:
    """A bar from the centre, right for positive values, left for negative ones, scaled to ``span``."""
    half = 50 * min(abs(value) / span, 1.0)
    left = 50 if value >= 0 else 50 - half
    return (f'<span class="fl-bar fl-diverging" aria-hidden="true"><span style="left:{left:.1f}%;width:{half:.1f}%;'
            f'background:{fill}"></span></span>')


def counted_html(p: Prediction, modalities=MODALITIES) -> str:
    """Per modality: its weight in the fusion, its Shapley contribution to log p(label), what it says alone."""
    has_weights = p.modality_weights is not None
    span = max([abs(c) for c in (p.contributions or {}).values()] + [0.5])
    rows = []
    for m in modalities:
        name = f'<th scope="row"><span class="fl-swatch" style="background:{color(m)}"></span>{m}</th>'
        if m not in p.modalities:
            rows.append(f"<tr>{name}<td colspan=3>not given</td></tr>")
            continue
        weight = p.modality_weights[m] if has_weights else None
        weight_cell = f"{bar(weight, color(m))}{weight:.2f}" if has_weights else "—"
        contribution = p.contributions[m]
        rows.append(f"<tr>{name}<td class=num>{weight_cell}</td>"
                    f"<td class=num>{diverging_bar(contribution, span, color(m))}{contribution:+.2f}</td>"
                    f"<td>{escape(p.alone(m))}</td></tr>")
    if has_weights:
        foot = f"Weight: {WEIGHT_NAMES.get(p.strategy, 'the modality weight')} (sums to 1). "
    else:
        foot = ("Concatenation has no weights: it joins the pooled features of every input, so only the "
                "contributions say what counted. ")
    foot += (f"Contribution: exact Shapley value of each input to log p({escape(p.guess)}) over every subset. "
             "Alone: what the fusion says from that input only.")
    target = f"“{escape(p.label)}”" if p.label is not None else \
        f"“{escape(p.guess)}” (the likeliest class; the answer is {escape(p.answer)})"
    return (f'<div class="fl-panel fl-scroll"><table><caption>How much each input counted for '
            f'{target}</caption><thead><tr><th scope="col">input</th><th scope="col">weight</th>'
            f'<th scope="col">contribution</th><th scope="col">alone it says</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table><p class="fl-foot">{foot}</p></div>')


def headline(p: Prediction) -> str:
    """One line saying what was predicted, and plainly when it is unsure."""
    if p.label is None:
        return f"**No {p.class_noun} recognised.**"
    prob = p.probs[p.label]
    if prob < LOW_CONFIDENCE:
        runner_up = p.top(2)[-1]
        return (f"**Not sure.** The best guess is **{p.label}** at only {prob:.0%} "
                f"(next: {runner_up[0]} at {runner_up[1]:.0%}); try a clearer picture, recording or text.")
    return f"**{p.label}**, {prob:.0%} sure, from {', '.join(p.modalities)}."


def jpeg_data_url(pixels: np.ndarray, max_side: int = 320) -> str:
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def heat_rgb(weights: np.ndarray, width: int, height: int) -> np.ndarray:
    """A (rows, cols) weight grid, scaled to its maximum and upsampled smoothly -> height×width×3 colours."""
    grid = weights / max(float(weights.max()), 1e-12)
    heat = np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize((width, height),
                                                                           Image.Resampling.BICUBIC))
    return HEAT[heat]


def image_maps(p: Prediction) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(token weights over the network's input, the same weights over the matching part of your photo)."""
    if "image" not in p.views:
        return None, None
    view = p.views["image"]
    crop, weights = view.get("crop"), p.token_weights.get("image")
    if crop is None or weights is None:
        return crop, view["input"]
    grid = np.asarray(weights["weights"], dtype=np.float32)
    big = np.asarray(Image.fromarray(crop).resize((192, 192), Image.Resampling.NEAREST), dtype=np.float32)
    on_crop = 0.45 * big + 0.55 * heat_rgb(grid, 192, 192)

    photo = Image.fromarray(view["input"])
    scale = min(1.0, 320 / max(photo.size))  # blend at display size: a 12-MP photo would cost ~100 ms
    photo = np.asarray(photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                                    Image.Resampling.BILINEAR), dtype=np.float32)
    top, left, bottom, right = (int(round(v * scale)) for v in view["field"])
    heat = heat_rgb(grid, max(1, right - left), max(1, bottom - top))
    # The field can reach past the photo's edges (the digit is centred by mass): clip both sides alike.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(bottom, photo.shape[0]), min(right, photo.shape[1])
    if y1 > y0 and x1 > x0:
        region = photo[y0:y1, x0:x1]
        photo[y0:y1, x0:x1] = 0.5 * region + 0.5 * heat[y0 - top:y1 - top, x0 - left:x1 - left]
    return on_crop.astype(np.uint8), np.clip(photo, 0, 255).astype(np.uint8)


def audio_svg(p: Prediction, sample_rate: int = 16000, bins: int = 240) -> str:
    """The recording's envelope with the per-token weights as shaded bands over time, and a seconds scale."""
    wave = p.views["audio"]["input"]
    duration = max(len(wave) / sample_rate, 1e-3)
    chunks = np.array_split(wave, min(bins, len(wave)))
    peak = max(float(np.abs(wave).max()), 1e-6)
    tops = [float(c.max()) / peak for c in chunks]
    bottoms = [float(c.min()) / peak for c in chunks]
    n = len(chunks)
    outline = [f"{i * bins / n:.1f},{30 - 27 * t:.1f}" for i, t in enumerate(tops)]
    outline += [f"{i * bins / n:.1f},{30 - 27 * b:.1f}" for i, b in reversed(list(enumerate(bottoms)))]
    bands = ""
    weights = p.token_weights.get("audio")
    if weights:
        w = np.asarray(weights["weights"], dtype=np.float64)
        w = w / max(float(w.max()), 1e-12)
        step = weights["seconds_per_token"] / duration * bins
        bands = "".join(f'<rect x="{i * step:.2f}" y="0" width="{step + 0.05:.2f}" height="60" '
                        f'fill="{color("audio")}" fill-opacity="{0.85 * v:.2f}"/>'
                        for i, v in enumerate(w) if v > 0.02)
    peak_at = (int(np.argmax(weights["weights"])) + 0.5) * weights["seconds_per_token"] if weights else None
    label = (f"The recording, {duration:.1f} s; the model looked most at {peak_at:.1f} s" if peak_at is not None
             else f"The recording, {duration:.1f} s")
    ticks = "".join(f"<span>{t:.1f} s</span>" for t in np.linspace(0, duration, 5))
    return (f'<figure class="fl-audio"><svg viewBox="0 0 {bins} 60" preserveAspectRatio="none" role="img" '
            f'aria-label="{label}">{bands}<polygon points="{" ".join(outline)}" fill="#555" fill-opacity="0.75"/>'
            f'</svg><div class="fl-ticks" aria-hidden="true">{ticks}</div><figcaption>Moments in the audio: '
            f'darker bands = more weight{"" if weights else " (none: concatenation has no token weights)"}'
            f'</figcaption></figure>')


def maps_html(p: Prediction) -> str:
    """Token maps over the image (the network's crop and your photo) and over time in the recording."""
    figures = []
    crop_map, photo_map = image_maps(p)
    if photo_map is not None:
        if crop_map is not None:
            figures.append(f'<figure><img src="{jpeg_data_url(crop_map)}" alt="Image regions weighted by the '
                           f'model, on the crop it saw"><figcaption>Image regions (what the network saw)</figcaption>'
                           f'</figure>')
        figures.append(f'<figure><img src="{jpeg_data_url(photo_map)}" alt="The same regions on your picture">'
                       f'<figcaption>Your picture</figcaption></figure>')
    if "audio" in p.views:
        figures.append(audio_svg(p))
    if not figures:
        return ""
    return f'<div class="fl-panel fl-maps">{"".join(figures)}</div>'


def word_weights(p: Prediction) -> list[tuple[str, float | None]]:
    """The text's own words (split at whitespace) with their share of the token weight scaled to [0, 1];
    weights None when the strategy has none. Word pieces and punctuation fold into the word they are in."""
    text = p.views["text"]["input"] if "text" in p.views else ""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    weights = p.token_weights.get("text")
    if not weights or "spans" not in weights:
        return [(text[a:b], None) for a, b in words]
    totals = np.zeros(len(words))
    starts = np.array([a for a, _ in words])
    for (start, end), w in zip(weights["spans"], weights["weights"]):
        if end > start and len(words):
            totals[max(int(np.searchsorted(starts, start, side="right")) - 1, 0)] += w
    top = max(float(totals.max()) if len(totals) else 0.0, 1e-12)
    return [(text[a:b], float(t / top)) for (a, b), t in zip(words, totals)]


def words_html(p: Prediction) -> str:
    """The words, shaded by weight (explicit text colours, so every shade keeps its contrast)."""
    if "text" not in p.views:
        return ""
    shaded = []
    for word, w in word_weights(p):
        if w is None:
            shaded.append(escape(word))
            continue
        # From pale to dark green; white text once the background is dark enough for it.
        background = np.array([241, 248, 243]) * (1 - w) + np.array([27, 94, 54]) * w
        color = "#ffffff" if w > 0.45 else "#111111"
        shaded.append(f'<mark style="background:rgb({",".join(str(int(c)) for c in background)});color:{color}" '
                      f'title="weight {w:.2f}">{escape(word)}</mark>')
    has_weights = "text" in p.token_weights
    caption = ("Words: darker = more weight" if has_weights
               else "Words (no weights: concatenation mean-pools every token alike)")
    return (f'<div class="fl-panel"><p class="fl-foot"><strong>{caption}</strong></p>'
            f'<p class="fl-words">{" ".join(shaded)}</p></div>')


def what_if_html(p: Prediction) -> str:
    """One row per non-empty subset of the given inputs: what the fusion predicts from only those."""
    rows = sorted(p.subsets, key=lambda s: (-len(s["modalities"]), s["modalities"]))
    body = "".join(f"<tr><td>{' + '.join(s['modalities'])}</td><td>{escape(s['label'] or 'none')}</td>"
                   f"<td class=num>{s['prob']:.1%}</td></tr>" for s in rows)
    return (f'<div class="fl-panel fl-scroll"><table><caption>What if an input were missing?</caption><thead><tr>'
            f'<th scope="col">only these inputs</th><th scope="col">prediction</th><th scope="col">confidence</th>'
            f'</tr></thead><tbody>{body}</tbody></table></div>')


def compare_html(predictions: dict[str, Prediction], modalities=MODALITIES) -> str:
    """Strategies side by side: prediction, each input's weight and contribution, time."""
    rows = []
    for name, p in predictions.items():
        weights = "—" if p.modality_weights is None else "<br>".join(
            f"{bar(p.modality_weights[m], color(m))}{m} {p.modality_weights[m]:.2f}" for m in p.modalities)
        contributions = "<br>".join(f"{m} {p.contributions[m]:+.2f}" for m in p.modalities)
        rows.append(f"<tr><th scope=row>{name}</th><td>{escape(p.answer)}</td><td class=num>{p.probs[p.guess]:.1%}</td>"
                    f"<td>{weights}</td><td>{contributions}</td><td class=num>{p.timings_ms['total']:.0f}</td></tr>")
    return ('<div class="fl-panel fl-scroll"><p class="fl-scroll-hint">The table scrolls sideways: swipe it for '
            'the contributions and timings.</p><table><caption>Every strategy on the same inputs</caption><thead><tr>'
            f'<th scope="col">strategy</th><th scope="col">prediction</th><th scope="col">confidence</th>'
            f'<th scope="col">weights</th><th scope="col">contributions</th><th scope="col">ms</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table><p class="fl-foot">Concatenation has no weights (—): it joins '
            f'the pooled features of every input.</p></div>')

