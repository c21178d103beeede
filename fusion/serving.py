"""What the web app's events call: inputs from the page in, finished outputs (or a friendly message) out.

``app.py`` only lays out components and wires them to these methods. Every handler goes through
``fusion.predict``; a user's mistake becomes a ``gr.Warning`` and empty outputs, an unexpected failure is
logged server-side and shown as a short apology, never as a traceback.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import gradio as gr
import numpy as np

from .data.manifest import read_manifest
from .inputs import InputError
from .predict import (
    DEFAULT_MODEL,
    DEFAULT_STRATEGY,
    MODELS_DIR,
    LoadedModel,
    Prediction,
    decode_inputs,
    load_model,
    predict,
    predict_items,
)
from .views import audio_plot, compare_chart, image_maps, text_highlights, weights_chart, what_if_rows

log = logging.getLogger("fusion.serving")
STRATEGY_ORDER = ("attention", "cross", "late", "concat")
APP_AUDIO_SECONDS = 10.0
STRATEGY_DIAGRAM = """### The four fusion strategies

```
 image ─ EfficientNet-Lite0 (15 blocks) ─ 4×4 tokens ─┐  every modality: LayerNorm + Linear to d=256
 audio ─ Whisper base (4 layers) ─────── 50 /s ───────┼─► + modality embedding (image: one Linear per cell)
 text ── MiniLM-L6 ───────────────────── words ───────┘

 concat     mean-pool each ─► [img | aud | txt] (absent = learned vector) ─► MLP ─► digit
 attention  attention-pool each ─► query (learned + consensus) attends over modalities ─► a_m ─► head
 cross      [CLS] img… aud… txt… ─► 2 transformer layers ─► head on [CLS];  weights = attention rollout
 late       attention-pool ─► classifier per modality ─► Σ a_m · log p_m, a = gate(summary, consensus)

 attention, cross, late: each modality's own prediction is compared with the others'; s · log agreement
 is added to its scores (to the keys of its tokens for cross), so an odd one out is weighted down

 explanations: a_m (attention / rollout / gate) · exact Shapley over the 7 subsets · unimodal heads
```"""


def shipped_models(models_dir: Path = MODELS_DIR) -> dict[str, Path]:
    """{strategy: folder} of the shipped ``digits-<strategy>`` models, the default first."""
    found = {p.name.split("-", 1)[1]: p for p in sorted(models_dir.glob("digits-*")) if (p / "config.json").is_file()}
    order = (DEFAULT_STRATEGY,) + STRATEGY_ORDER
    return {s: found[s] for s in sorted(found, key=lambda s: order.index(s) if s in order else len(order))}


def log_request(kind: str, strategy: str, modalities: list[str], outcome: str, started: float) -> None:
    """One structured line per request: timings, modalities, outcome; never the user's content."""
    log.info(json.dumps({"event": kind, "strategy": strategy, "modalities": modalities, "outcome": outcome,
                         "ms": round((time.perf_counter() - started) * 1000, 1)}))


def attempt(kind: str, fn):
    """Run a page handler's work -> (result or None, outcome); failures become a gr.Warning, never a trace.

    A user's mistake (InputError) is shown as is; anything else is logged here and shown as an apology,
    so the page keeps working whatever happens.
    """
    try:
        return fn(), "ok"
    except InputError as error:
        gr.Warning(str(error))
        return None, "input_error"
    except Exception:
        log.exception("%s failed", kind)
        gr.Warning("Sorry, something went wrong with that input. Please try again or try another one.")
        return None, "error"


class FusionService:
    """Holds the loaded models (encoders shared) and answers the page's events."""

    def __init__(self, model_paths: dict[str, Path], device=None):
        if not model_paths:
            raise FileNotFoundError(f"No model found; expected folders like {DEFAULT_MODEL}.")
        self.models: dict[str, LoadedModel] = {name: load_model(path, device) for name, path in model_paths.items()}
        self.default = next(iter(self.models))

    @property
    def device(self):
        return self.models[self.default].device

    def inputs(self, image, audio, text, use: tuple[bool, bool, bool]) -> dict:
        given = dict(zip(("image", "audio", "text"), (image, audio, text)))
        return {m: v for (m, v), on in zip(given.items(), use) if on and v is not None and not
                (m == "text" and not str(v).strip())}

    def run(self, strategy: str, image, audio, text, use, corruption) -> Prediction:
        model = self.models.get(strategy) or self.models[self.default]
        given = self.inputs(image, audio, text, use)
        if not given:
            raise InputError("Nothing to fuse yet: take a picture, record a number or type some text "
                             "(and keep its “use” box ticked).")
        return predict(model, **given, corruption=dict(zip(("image", "audio", "text"), corruption)))

    def fuse(self, strategy, image, audio, text, use_image, use_audio, use_text, corrupt_image, corrupt_audio,
             corrupt_text):
        """The Fuse button: (top-3 label, weights chart, image maps ×2, audio plot, words, what-if, notes)."""
        started = time.perf_counter()
        p, outcome = attempt("fuse", lambda: self.run(strategy, image, audio, text, (use_image, use_audio, use_text),
                                                      (corrupt_image, corrupt_audio, corrupt_text)))
        log_request("fuse", strategy, p.modalities if p else [], outcome, started)
        if p is None:
            return None, None, None, None, None, None, None, ""
        crop_map, original_map = image_maps(p)
        notes = " ".join(p.notes)
        timing = f"{p.timings_ms['total']:.0f} ms on {self.device.type.upper()}"
        return ({label: prob for label, prob in p.top(3)}, weights_chart(p), crop_map, original_map, audio_plot(p),
                text_highlights(p), what_if_rows(p), f"{timing}. {notes}".strip())

    def fuse_example(self, image, audio, text):
        """Clicking an example: the default strategy, every modality used, nothing corrupted."""
        return self.fuse(self.default, image, audio, text, True, True, True, 0.0, 0.0, 0.0)

    @staticmethod
    def examples(folder: Path) -> list[list]:
        """Rows of ``examples.csv`` (the manifest format) as [image, audio, text] for gr.Examples."""
        manifest = folder / "examples.csv"
        if not manifest.is_file():
            return []
        return [[row["image"], row["audio"], row["text"]] for row in read_manifest(manifest)]

    def about_markdown(self) -> str:
        card = MODELS_DIR / "README.md"
        served = ", ".join(f"`{name}` ({m.path})" for name, m in self.models.items())
        body = card.read_text() if card.is_file() else "No model card found next to the models."
        return f"**Serving:** {served} on {self.device.type.upper()}.\n\n{STRATEGY_DIAGRAM}\n\n{body}"

    def report_plots(self) -> list[str]:
        """The default model's evaluation plots from the model card's reports folder."""
        return [str(p) for p in sorted((MODELS_DIR / "reports" / self.default).glob("*.png"))]

    def compare(self, image, audio, text, use_image, use_audio, use_text, corrupt_image, corrupt_audio,
                corrupt_text):
        """Every shipped strategy on the same inputs: (table rows, side-by-side chart)."""
        started = time.perf_counter()
        predictions, outcome = attempt("compare", lambda: {
            s: self.run(s, image, audio, text, (use_image, use_audio, use_text),
                        (corrupt_image, corrupt_audio, corrupt_text)) for s in self.models})
        log_request("compare", "all", [], outcome, started)
        if predictions is None:
            return None, None
        rows = [[s, p.label, f"{p.probs[p.label]:.1%}",
                 ", ".join(f"{m} {w:.2f}" for m, w in p.modality_weights.items()) if p.modality_weights else "—",
                 ", ".join(f"{m} {c:+.2f}" for m, c in p.contributions.items()),
                 f"{p.timings_ms['total']:.0f}"] for s, p in predictions.items()]
        return rows, compare_chart(predictions)

    def api_predict(self, image, audio, text) -> dict:
        """/predict: (image, audio, text), each may be None -> ``Prediction.to_dict()``."""
        started = time.perf_counter()
        try:
            p = predict(self.models[self.default], image=image, audio=audio, text=text or None)
        except InputError as error:
            log_request("api", self.default, [], "input_error", started)
            raise gr.Error(str(error)) from None
        log_request("api", self.default, p.modalities, "ok", started)
        return p.to_dict()

    def api_predict_batch(self, images: list, audios: list, texts: list) -> tuple[list[dict]]:
        """Batched /predict for GPUs: concurrent requests share one pass through each encoder."""
        started, model = time.perf_counter(), self.models[self.default]
        results: list[dict | None] = [None] * len(images)
        decoded, rows = [], []
        for i, (image, audio, text) in enumerate(zip(images, audios, texts)):
            try:
                decoded.append(decode_inputs(model.encoders, image, audio, text or None)[0])
                rows.append(i)
            except InputError as error:
                results[i] = {"error": str(error)}
        if decoded:
            for i, p in zip(rows, predict_items(model, decoded)):
                results[i] = p.to_dict()
        log_request("api_batch", self.default, [str(len(images))], "ok", started)
        return (results,)


def audio_length_validator(audio_index: int):
    """A gradio validator refusing recordings over APP_AUDIO_SECONDS before they reach the queue."""
    def validator(*values):
        audio, duration = values[audio_index], 0.0
        if isinstance(audio, (tuple, list)) and len(audio) == 2 and np.asarray(audio[1]).size:
            duration = np.asarray(audio[1]).shape[0] / max(int(audio[0]), 1)
        message = f"Please keep recordings under {APP_AUDIO_SECONDS:.0f} s (this one is {duration:.1f} s)."
        return [gr.validate(i != audio_index or duration <= APP_AUDIO_SECONDS, message) for i in range(len(values))]

    return validator
