"""Modalities: one registered ``Modality`` each, owning what is particular to it.

A modality says how a raw input is decoded (with its limits and notes for the user), how it is
corrupted on purpose, which encoder it gets by default and how that encoder is built, how the model
treats its tokens, and how the weights over its tokens are explained. The manifest reader, the feature
cache, training, the model, ``fusion.predict`` and evaluation read the registry, so a new modality is
one ``register_modality(Modality(...))`` call, with no edit to the package::

    register_modality(Modality("depth", decode=read_depth_map, corrupt=noisy_depth,
                               encoder={"name": "my-depth-net"}, dim=64, build=build_depth_encoder))
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import corrupt, inputs, textnorm
from .errors import InputError


def subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities``, smallest first, each in the given order:
    [("image",), ..., ("image", "audio"), ..., ("image", "audio", "text")]; joined with "+", the keys of
    per-subset scores and thresholds."""
    return [s for n in range(1, len(modalities) + 1) for s in itertools.combinations(modalities, n)]


def explain_weights(tokens, row: int, weights, config: dict) -> dict:
    """Default explanation: one weight per real token of the row."""
    return {"weights": weights[:int(tokens.mask[row].sum())].round(decimals=6).tolist()}


def explain_image(tokens, row: int, weights, config: dict) -> dict:
    rows, cols = tokens.grid
    return {"grid": [rows, cols], "weights": weights[:rows * cols].view(rows, cols).round(decimals=6).tolist()}


def explain_audio(tokens, row: int, weights, config: dict) -> dict:
    pool = config["audio_pool"]  # the model averages this many frames per token (pool_frames)
    n = int(np.ceil(int(tokens.mask[row].sum()) / pool))
    return {"seconds_per_token": tokens.seconds_per_token * pool, "weights": weights[:n].round(decimals=6).tolist()}


def explain_text(tokens, row: int, weights, config: dict) -> dict:
    strings = tokens.token_strings[row]
    out = {"tokens": strings, "weights": weights[:len(strings)].round(decimals=6).tolist()}
    if tokens.token_spans:
        out["spans"] = [list(span) for span in tokens.token_spans[row]]
    return out


def view_input(item, tokens, row: int) -> dict:
    """Default view: the decoded input, for the page to draw on."""
    return {"input": item}


def view_image(item, tokens, row: int) -> dict:
    """The decoded RGB photo, and the network's input crop with the photo box it came from (hf: backbones
    have no crop of their own)."""
    view = {"input": item}
    if tokens.crops:
        view["crop"], view["field"] = tokens.crops[row]
    return view


def view_audio(item, tokens, row: int) -> dict:
    return {"input": item[1]}  # the 16-kHz waveform (N,)


def no_notes(item, tokens, row: int) -> list[str]:
    return []


def text_notes(item: str, tokens, row: int) -> list[str]:
    """Say so when the encoder read only the start of a long text."""
    if not tokens.token_spans:
        return []
    read_up_to = max((end for _, end in tokens.token_spans[row]), default=0)
    if textnorm.visible(item[read_up_to:]):  # trailing zero-width characters are not text left unread
        return [f"The text is longer than the text encoder reads: only its first {read_up_to} characters "
                f"(of {len(item)}) were used."]
    return []


def always_evidence(item, tokens, row: int, config: dict) -> None:
    return None


def text_no_evidence(item: str, tokens, row: int, config: dict) -> str | None:
    """A number the model has no class for, or a text the encoder mostly cannot read (``textnorm.no_evidence``)."""
    return textnorm.no_evidence(item, tokens.token_strings[row] if tokens.token_strings else [], config["labels"])


def image_widget():
    import gradio as gr

    # Not mirrored: a mirrored capture would hand the model a flipped picture.
    return gr.Image(sources=["webcam", "upload"], type="filepath", label="Show it (webcam or a picture)", height=220,
                    elem_id="image-input", webcam_options=gr.WebcamOptions(
                        mirror=False, constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}))


def audio_widget():
    import gradio as gr

    return gr.Audio(sources=["microphone", "upload"], type="filepath", elem_id="audio-input",
                    label=f"Say it (up to {inputs.MAX_AUDIO_SECONDS:.0f} s)")


def text_widget():
    import gradio as gr

    return gr.Textbox(label="Type it (Enter fuses)", placeholder="e.g. “it's a seven”", lines=1, elem_id="text-input")


@dataclass(frozen=True)
class Modality:
    """Everything particular to one kind of input.

    name: the key everywhere (manifest column, ``predict`` keyword, checkpoint fields).
    decode: raw value, and as keywords what the model's task tells it (``fusion.model.decode_options``) ->
        (canonical input or None when it holds nothing usable, notes); raises InputError.
    corrupt: (canonical input, severity in [0, 1], np.random.Generator) -> degraded input (1 = no content).
    encoder, dim: the default encoder spec and its token width D.
    build: (spec dict without "name", name, device) -> Encoder, for encoder names this modality defines.
    files: manifest cells are file paths (relative to the CSV) rather than the value itself.
    pool_frames: the model averages ``config["audio_pool"]`` consecutive tokens first (long sequences).
    positional: with a fixed token count, each position gets its own projection (image grids).
    explain: (Tokens, row, weights (T,), model config) -> JSON-ready token weights for ``Prediction``.
    view: (canonical input, Tokens, row) -> what the page and the report draw on (``Prediction.views``).
    encoded_notes: (canonical input, Tokens, row) -> notes for the user once encoded (e.g. text cut short).
    no_evidence: (canonical input, Tokens, row, model config) -> a note when the input, though decoded, is
        evidence for no class (a text naming "42" to the digits models), else None; ``Prediction.unimodal``
        then marks it ``"evidence": False``.
    widget: () -> the Gradio input component the page shows for it (None: not on the page).
    corruption: what ``corrupt`` does, as the page's slider says it.
    color: how the page draws it.
    hub_task: the Hugging Face Hub task of a classifier of this input alone (a model card's tags), or None.
    """

    name: str
    decode: Callable[[Any], tuple[Any, list[str]]]
    corrupt: Callable[[Any, float, np.random.Generator], Any]
    encoder: dict
    dim: int
    build: Callable | None = None
    files: bool = True
    pool_frames: bool = False
    positional: bool = False
    explain: Callable = explain_weights
    view: Callable = view_input
    encoded_notes: Callable = no_notes
    no_evidence: Callable = always_evidence
    widget: Callable | None = None
    corruption: str = "corruption"
    color: str = "#7F7F7F"
    hub_task: str | None = None


REGISTRY: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    if modality.name in REGISTRY or modality.name == "label":
        raise ValueError(f"modality {modality.name!r} is already registered (or reserved)")
    REGISTRY[modality.name] = modality
    return modality


def unregister_modality(name: str) -> None:
    """Remove a registered modality (tests register toy ones)."""
    REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered modalities, in registration order (the built-ins first)."""
    return tuple(REGISTRY)


def modality(name: str) -> Modality:
    from .errors import UserError

    if name not in REGISTRY:
        raise UserError(f"Unknown modality {name!r}: registered are {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def build_image(options: dict, name: str, device):
    if name != "efficientnet-lite0":
        raise ValueError(f"Unknown image encoder {name!r}: use 'efficientnet-lite0' or 'hf:<repo id or folder>'.")
    from .encoders.image import EfficientNetImageEncoder

    return EfficientNetImageEncoder(device=device, **options)


def build_audio(options: dict, name: str, device):
    from .encoders.whisper_weights import WHISPER_MODELS

    if name not in WHISPER_MODELS:
        raise ValueError(f"Unknown audio encoder {name!r}: use {', '.join(map(repr, WHISPER_MODELS))} "
                         "or 'hf:<repo id or folder>'.")
    from .encoders.audio import WhisperAudioEncoder

    return WhisperAudioEncoder(name, device=device, **options)


def build_text(options: dict, name: str, device):
    if name != "all-minilm-l6-v2":
        raise ValueError(f"Unknown text encoder {name!r}: use 'all-minilm-l6-v2' or 'hf:<repo id or folder>'.")
    from .encoders.text import MiniLMTextEncoder

    return MiniLMTextEncoder(device=device, **options)


register_modality(Modality(
    "image", inputs.decode_image, corrupt.corrupt_image, positional=True, explain=explain_image, view=view_image,
    widget=image_widget, corruption="noise + blur", color="#4C72B0", hub_task="image-classification",
    encoder={"name": "efficientnet-lite0", "size": 128, "preprocessing": "digit", "blocks": 15}, dim=192,
    build=build_image))
register_modality(Modality(
    "audio", inputs.decode_audio, corrupt.corrupt_audio, pool_frames=True, explain=explain_audio, view=view_audio,
    widget=audio_widget, corruption="noise", color="#DD8452", hub_task="audio-classification",
    encoder={"name": "whisper-base", "layers": 4}, dim=512, build=build_audio))
register_modality(Modality(
    "text", inputs.decode_text, corrupt.corrupt_text, files=False, explain=explain_text,
    encoded_notes=text_notes, no_evidence=text_no_evidence, widget=text_widget, corruption="typos", color="#55A868",
    hub_task="text-classification", encoder={"name": "all-minilm-l6-v2"}, dim=384, build=build_text))


def decode_inputs(encoders: dict, corruption: dict | None = None, seed: int = 0, decode_options: dict | None = None,
                  **inputs) -> tuple[dict, list[str]]:
    """Raw inputs {modality: value} -> {modality: canonical input} for the modalities ``encoders`` has,
    plus notes. Each registered modality (``fusion.modalities``) decodes its own.

    ``encoders``: {modality: encoder} of the model (only its keys are read). ``corruption`` {modality:
    severity in [0, 1]} degrades an input on purpose (the app's sliders, evaluation, training copies).
    ``decode_options``: {modality: keyword arguments for its decoder}, what the model's task tells them
    (``fusion.model.decode_options``: the text aliases of the digits models).
    """
    notes, items = [], {}
    for name, value in inputs.items():
        if value is None:
            continue
        if name not in encoders:
            notes.append(f"This model has no {name} encoder; the {name} was ignored.")
            continue
        try:
            item, item_notes = modality(name).decode(value, **(decode_options or {}).get(name, {}))
        except InputError as error:
            error.modality = name  # the page's advice names the box to clear
            raise
        notes += item_notes
        if item is not None:
            items[name] = item
    rng = np.random.default_rng(seed)
    for name, severity in (corruption or {}).items():
        if name in items and severity > 0:
            items[name] = modality(name).corrupt(items[name], float(severity), rng)
    if not items:
        wanted = ", ".join(encoders)
        raise InputError(f"Nothing to predict from: give at least one of {wanted}." +
                         (f" ({' '.join(notes)})" if notes else ""))
    return items, notes
