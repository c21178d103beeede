"""The one predict path, ``fusion.predict``: the app, the CLI, the evaluation and the tests all use it.

load a model folder and its (shared) encoders -> decode the inputs (``fusion.inputs``) -> batch ->
encode -> fuse -> explain, as a ``Prediction``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from . import modalities as registry
from .encoders import Encoder, resolve_device, shared_encoder
from .errors import CheckpointError
from .finetune import apply_overlay
from .modalities import decode_inputs
from .model import FusionModel, decode_options


def find_assets() -> Path:
    """The shipped models and examples: inside the installed package (a wheel puts them in ``fusion/assets``),
    else beside it (a checkout or a Space folder)."""
    here = Path(__file__).resolve().parent
    return here / "assets" if (here / "assets" / "models").is_dir() else here.parent / "assets"


ASSETS_DIR = find_assets()
MODELS_DIR = ASSETS_DIR / "models"
# The shipped strategy that did best on the robustness and conflict tests (assets/models/README.md).
DEFAULT_STRATEGY = "attention"
DEFAULT_MODEL = MODELS_DIR / f"digits-{DEFAULT_STRATEGY}"


@dataclass
class LoadedModel:
    """A fusion model with the encoders its config names, ready to predict."""

    fusion: FusionModel
    encoders: dict[str, Encoder]
    device: torch.device
    path: Path

    @property
    def labels(self) -> list[str]:
        return self.fusion.labels

    @property
    def strategy(self) -> str:
        return self.fusion.strategy_name

    @property
    def decode_options(self) -> dict:
        """What this model's task tells the decoders (``decode_inputs``): the digits models' text aliases."""
        return decode_options(self.fusion.config)


def load_model(path: str | Path | None = None, device=None) -> LoadedModel:
    """Load a model folder or hub repository id (None = the shipped default) and its encoders on ``device``.

    Encoders are cached per (modality, spec, device), so several models share one set; a model trained with
    ``--finetune`` gets a copy of that encoder with its own blocks (``fusion.finetune.apply_overlay``).
    """
    path = path if path is not None else DEFAULT_MODEL
    device = resolve_device(device)
    fusion = FusionModel.from_pretrained(path, device=device)
    path = Path(path)
    encoders = {}
    for modality, spec in fusion.config["encoders"].items():
        try:
            encoders[modality] = shared_encoder(modality, spec, device)
        except Exception as error:  # loaders of hub backbones raise many types (missing files, pickles)
            reason = str(error).splitlines()[0] if str(error) else "it is not a loadable encoder"
            raise CheckpointError(f"config field 'encoders.{modality}' ({spec}) cannot be loaded here: "
                                  f"{reason}") from None
        if modality in fusion.finetuned_state:  # a copy with the model's own blocks; the shared one is unchanged
            entry = fusion.config["finetuned"][modality]
            encoders[modality] = apply_overlay(encoders[modality], modality, entry["blocks"],
                                               fusion.finetuned_state[modality], entry["weights"])
        expected = fusion.config["encoder_dims"][modality]
        if encoders[modality].dim != expected:
            raise CheckpointError(f"config field 'encoder_dims.{modality}' is {expected}, "
                                  f"but the encoder gives {encoders[modality].dim}.")
    return LoadedModel(fusion, encoders, device, path)


@dataclass
class Prediction:
    """One prediction and its explanations, as plain Python.

    ``label`` is None when the model abstains (``FusionModel.abstains``; models trained with negatives): its
    calibrated confidence is below the threshold of the inputs given, or no input alone shows a class;
    ``guess`` is then the most probable class all the same, and a note says so. ``class_noun`` names what
    the classes are ("digit"), for saying so.

    ``unimodal`` {modality: {"label", "prob", "evidence"}} is what each input says alone; ``evidence`` is
    False when the input is evidence for no class (``Modality.no_evidence``: a text naming "42" to a digits
    model; or, for a model calibrated with negatives, that input alone below its threshold), and a note
    says why.

    ``to_dict`` is the JSON the CLI prints and the API returns. ``views`` holds, per modality, what the
    page draws on (``Modality.view``: the decoded photo and the network's crop, the 16-kHz waveform, the
    text) and is not serialised.
    """

    label: str | None
    probs: dict[str, float]
    strategy: str
    modalities: list[str]
    modality_weights: dict[str, float] | None
    contributions: dict[str, float] | None
    unimodal: dict[str, dict]
    token_weights: dict[str, dict]
    subsets: list[dict]
    timings_ms: dict[str, float]
    notes: list[str] = field(default_factory=list)
    class_noun: str = "class"
    views: dict[str, dict] = field(default_factory=dict, repr=False)

    @property
    def guess(self) -> str:
        """The most probable class, also when the model abstains."""
        return max(self.probs, key=self.probs.get)

    @property
    def answer(self) -> str:
        """What to show as the prediction: the label, or "no digit" (the class noun) when abstaining."""
        return self.label if self.label is not None else f"no {self.class_noun}"

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: -kv[1])[:k]

    def alone(self, modality: str) -> str:
        """What the fusion answers from ``modality`` alone (its subset, as in ``subsets``): "7 (91%)", or
        "no digit" where it would abstain (the probability of a class it would not answer says nothing)."""
        subset = next(s for s in self.subsets if s["modalities"] == [modality])
        return f"no {self.class_noun}" if subset["label"] is None else f"{subset['label']} ({subset['prob']:.0%})"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("label", "probs", "strategy", "modalities", "modality_weights",
                                              "contributions", "unimodal", "token_weights", "subsets",
                                              "timings_ms", "notes")}


def predict(model: LoadedModel, image=None, audio=None, text=None, explain: bool = True,
            corruption: dict | None = None, **others) -> Prediction:
    """Predict from any subset of image (path, PIL or RGB array), audio (path or (rate, array)) and text,
    and of any other registered modality the model has (``others``: {modality name: raw value}).

    Raises ``InputError`` (a message for the user) when nothing usable is given.
    """
    start = time.perf_counter()
    items, notes = decode_inputs(model.encoders, corruption, decode_options=model.decode_options, image=image,
                                 audio=audio, text=text, **others)
    decoded = time.perf_counter()
    prediction = predict_items(model, [items], explain)[0]
    prediction.notes = notes + prediction.notes
    prediction.timings_ms["decode"] = round((decoded - start) * 1000, 2)
    prediction.timings_ms["total"] = round((time.perf_counter() - start) * 1000, 2)
    return prediction


@torch.inference_mode()
def predict_items(model: LoadedModel, batch: list[dict], explain: bool = True) -> list[Prediction]:
    """Decoded inputs for B requests (each {modality: canonical input}) -> B predictions.

    Each encoder runs once over the rows that have its modality; rows without it get an all-False mask.
    """
    timings, tokens = {}, {}
    for modality, encoder in model.encoders.items():
        rows = [i for i, items in enumerate(batch) if modality in items]
        if not rows:
            continue
        t0 = time.perf_counter()
        encoded = encoder.encode([batch[i][modality] for i in rows])
        tokens[modality] = scatter_rows(encoded, rows, len(batch))
        if encoder.device.type == "cuda":
            torch.cuda.synchronize()
        timings[modality] = round((time.perf_counter() - t0) * 1000, 2)
    t0 = time.perf_counter()
    out = model.fusion(tokens, contributions=explain)
    out_cpu = to_cpu(out)
    timings["fusion"] = round((time.perf_counter() - t0) * 1000, 2)
    return [build_prediction(model, out_cpu, tokens, i, batch[i], dict(timings)) for i in range(len(batch))]


def scatter_rows(tokens, rows: list[int], batch: int):
    """Tokens of a subset of rows -> Tokens for the whole batch, absent rows fully masked."""
    if len(rows) == batch:
        return tokens
    index = torch.tensor(rows, device=tokens.values.device)
    values = tokens.values.new_zeros(batch, *tokens.values.shape[1:]).index_copy(0, index, tokens.values)
    mask = tokens.mask.new_zeros(batch, tokens.mask.shape[1]).index_copy(0, index, tokens.mask)
    pooled = tokens.pooled.new_zeros(batch, tokens.pooled.shape[1]).index_copy(0, index, tokens.pooled)

    def spread(per_row: list | None, empty) -> list | None:
        if per_row is None:
            return None
        full = [empty] * batch
        for row, item in zip(rows, per_row):
            full[row] = item
        return full

    return replace(tokens, values=values, mask=mask, pooled=pooled, token_strings=spread(tokens.token_strings, []),
                   token_spans=spread(tokens.token_spans, []), crops=spread(tokens.crops, None))


def to_cpu(out):
    """Move every tensor of a FusionOutput to the CPU once (the per-row reads then stay cheap)."""
    def move(x):
        if isinstance(x, torch.Tensor):
            return x.detach().float().cpu() if x.is_floating_point() else x.cpu()
        if isinstance(x, dict):
            return {k: move(v) for k, v in x.items()}
        return x

    return type(out)(**{k: move(v) for k, v in vars(out).items()})


def build_prediction(model: LoadedModel, out, tokens: dict, row: int, items: dict, timings: dict) -> Prediction:
    fusion, labels = model.fusion, model.labels
    noun = fusion.config.get("class_noun", "class")
    present = [m for i, m in enumerate(fusion.modalities) if bool(out.present[row, i])]
    probs = out.probs[row]
    label = labels[int(probs.argmax())]

    def per_modality(matrix):
        return None if matrix is None else {m: round(float(matrix[row, i]), 6)
                                            for i, m in enumerate(fusion.modalities) if m in present}

    notes, unimodal, token_weights, views = [], {}, {}, {}
    for m in present:
        kind = registry.modality(m)
        p = out.unimodal_logits[m][row].softmax(-1)
        no_evidence = kind.no_evidence(items[m], tokens[m], row, fusion.config)
        if no_evidence is None and not fusion.shows_evidence(m, float(p.max())):
            no_evidence = f"The {m} alone shows no {noun} the model knows."
        unimodal[m] = {"label": labels[int(p.argmax())], "prob": round(float(p.max()), 6),
                       "evidence": no_evidence is None}
        if m in out.token_weights:
            token_weights[m] = kind.explain(tokens[m], row, out.token_weights[m][row], fusion.config)
        views[m] = kind.view(items[m], tokens[m], row)
        notes += kind.encoded_notes(items[m], tokens[m], row) + ([no_evidence] if no_evidence else [])

    evidence = {m: u["evidence"] for m, u in unimodal.items()}
    subsets = []
    for kept, subset_probs in out.subset_probs.items():
        if kept and set(kept) <= set(present):
            p = subset_probs[row]
            subsets.append({"modalities": list(kept), "prob": round(float(p.max()), 6),
                            "label": None if fusion.abstains(kept, float(p.max()), evidence)
                            else labels[int(p.argmax())]})

    abstained = fusion.abstains(present, float(probs.max()), evidence)
    if abstained:
        below = fusion.abstain_below(present)
        why = (f"no class reaches the {below:.0%} this model needs to answer" if float(probs.max()) < below
               else f"no input alone shows a {noun}")
        notes.insert(0, f"No {noun} recognised: {why}.")
    return Prediction(
        label=None if abstained else label, class_noun=noun,
        probs={lab: round(float(p), 6) for lab, p in zip(labels, probs)}, strategy=model.strategy,
        modalities=present, modality_weights=per_modality(out.modality_weights),
        contributions=per_modality(out.contributions), unimodal=unimodal, token_weights=token_weights,
        subsets=subsets, timings_ms=timings, notes=notes, views=views)
