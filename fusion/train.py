"""Train a fusion head on frozen-encoder features from CSV manifests (any labels, any subset of columns).

    python -m fusion train --manifest TRAIN.csv --val VAL.csv --fusion attention --out DIR

What makes the weights mean something:
- modality dropout: each modality of a row is absent with p (never all), so every subset works;
- reliability training: with probability ``reliability`` one modality of a row is replaced by a
  pure-noise input, a corrupted copy of itself, or (when the other two agree) a sample of another
  class, while the label stays that of the rest, so the fusion learns whom to trust;
- auxiliary unimodal heads (they say what each modality alone predicts) and an optional
  consistency term pulling each unimodal distribution towards the fused one on clean rows.

``--finetune image:N`` also trains the last N blocks of that encoder (``fusion.finetune``): the cache then
holds what enters those blocks, for the clean, corrupted and noise copies alike, and every augmentation
above, the EMA and soups work as they do for the head alone.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import modalities as registry
from .calibration import reliability
from .config import TrainConfig
from .data.manifest import read_manifest_or_zip
from .encoders import normalize_spec, shared_encoder
from .errors import ManifestError, OptionError
from .features import FeatureCache, collate
from .finetune import EndToEnd, PrefixView
from .model import FusionModel, decode_options, default_config

VAL_FRACTION = 0.2  # held out of --manifest when no --val is given
# A calibrated abstention threshold abstains on ABSTAIN_NEGATIVES of the validation negatives where that gives
# up at most MAX_POSITIVES_GIVEN_UP of the positives; without negatives it gives up ABSTAIN_POSITIVES of them.
ABSTAIN_NEGATIVES, MAX_POSITIVES_GIVEN_UP, ABSTAIN_POSITIVES = 0.95, 0.05, 0.005


def hold_out(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A stratified split of ``rows`` -> (train, validation): ``fraction`` of each label's rows (at least
    one of each label that has two or more), chosen with ``seed``."""
    rng = random.Random(seed)
    train_rows, val_rows = [], []
    negatives = [None] if any(row["label"] is None for row in rows) else []
    for label in sort_labels(row["label"] for row in rows) + negatives:
        group = [row for row in rows if row["label"] == label]
        rng.shuffle(group)
        n = min(len(group) - 1, max(1, round(fraction * len(group))))
        val_rows += group[:n]
        train_rows += group[n:]
    if not val_rows:
        raise ManifestError("Too few rows to hold some out for validation: give --val.")
    return train_rows, val_rows


def sort_labels(labels) -> list[str]:
    """Numeric labels in numeric order, others alphabetically; negatives (None) are no class."""
    labels = sorted(set(labels) - {None})
    try:
        return sorted(labels, key=float)
    except ValueError:
        return labels


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


NEGATIVE = -1  # the label index of a negative row (none of the classes); a unimodal target of -1 likewise
IGNORED = -100  # a unimodal target that trains nothing (the modality is absent or was replaced by noise)


@dataclass
class SplitFeatures:
    """Cached tokens of a split: per modality one entry per row (None where the row lacks it)."""

    labels: torch.Tensor  # (N,) class indices, NEGATIVE for negative rows
    clean: dict[str, list]
    corrupted: dict[str, list]  # a corrupted copy per row (severity ~ U(0.1, 1)), training only
    noise: dict[str, list]  # pure-noise inputs (severity 1), training only


def load_split(cache: FeatureCache, rows: list[dict], labels: list[str], modalities: list[str],
               augment: bool, name: str) -> SplitFeatures:
    index = {label: i for i, label in enumerate(labels)} | {None: NEGATIVE}
    unknown = sorted({row["label"] for row in rows} - set(index))
    if unknown:
        raise ManifestError(f"{name} has labels the training manifest lacks: {unknown[:5]}")
    clean, corrupted, noise = {}, {}, {}
    rng = np.random.default_rng(1234)
    for m in modalities:
        have = [i for i, row in enumerate(rows) if row[m]]
        feats = cache.tokens(m, [rows[i][m] for i in have], progress=f"{name} {m}")
        clean[m] = [None] * len(rows)
        for i, f in zip(have, feats):
            clean[m][i] = f
        if augment and have:
            # Mild corruptions too: a gate that only ever saw heavy ones learns to drop any damaged input.
            severities = [float(s) for s in rng.uniform(0.1, 1.0, len(have))]
            feats = cache.tokens(m, [rows[i][m] for i in have], severities, have, progress=f"{name} {m} corrupted")
            corrupted[m] = [None] * len(rows)
            for i, f in zip(have, feats):
                corrupted[m][i] = f
            pool = have[:: max(1, len(have) // 256)]
            noise[m] = cache.tokens(m, [rows[i][m] for i in pool], 1.0, [10_000 + i for i in pool],
                                    progress=f"{name} {m} noise")
    return SplitFeatures(torch.tensor([index[row["label"]] for row in rows]), clean, corrupted, noise)


def make_batch(split: SplitFeatures, rows: list[int], model: FusionModel, cfg: TrainConfig | None,
               rng: random.Random | None, by_label: dict | None = None):
    """Tokens for a batch of rows with the training augmentations when ``cfg`` is given.

    Returns (tokens, labels, unimodal targets {m: (B,) class, NEGATIVE (that input shows no class) or
    IGNORED}, clean_rows (B,) bool: rows no reliability replacement touched). ``by_label``: {class index
    or NEGATIVE: {modality: rows having it}}.
    """
    modalities = model.modalities
    labels = split.labels[rows].clone()
    chosen = {m: [split.clean[m][i] for i in rows] for m in modalities}
    targets = {m: torch.where(torch.tensor([c is not None for c in chosen[m]]), labels, IGNORED) for m in modalities}
    clean_rows = torch.ones(len(rows), dtype=torch.bool)
    if cfg is not None:
        for b, i in enumerate(rows):
            have = [m for m in modalities if chosen[m][b] is not None]
            keep = [m for m in have if rng.random() >= cfg.modality_dropout] or [rng.choice(have)]
            for m in have:
                if m not in keep:
                    chosen[m][b], targets[m][b] = None, IGNORED
            if int(labels[b]) == NEGATIVE or rng.random() >= cfg.reliability:
                continue
            clean_rows[b] = False
            victim = rng.choice(keep)
            classes = [c for c in by_label if c != NEGATIVE]
            # A conflict is only decidable when the other two agree; otherwise an input that shows nothing
            # (a negative's, when training has them), noise, or a corrupted copy. A negative in place of
            # the only input makes the row a negative.
            if len(keep) >= 3 and rng.random() < 0.5:
                other = rng.choice([c for c in classes if c != int(labels[b])])
                j = rng.choice(by_label[other][victim])
                chosen[victim][b], targets[victim][b] = split.clean[victim][j], other
            elif by_label.get(NEGATIVE, {}).get(victim) and rng.random() < 0.5:
                j = rng.choice(by_label[NEGATIVE][victim])
                chosen[victim][b], targets[victim][b] = split.clean[victim][j], NEGATIVE
                if len(keep) == 1:
                    labels[b] = NEGATIVE
            elif rng.random() < 0.5 and cfg.corrupted_copies and split.corrupted.get(victim):
                chosen[victim][b] = split.corrupted[victim][i]
            elif split.noise.get(victim):
                chosen[victim][b], targets[victim][b] = rng.choice(split.noise[victim]), IGNORED
    tokens = {m: collate(chosen[m], model.config["encoder_dims"][m]) for m in modalities}
    return {m: t for m, t in tokens.items() if t is not None}, labels, targets, clean_rows


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, negative_weight: float) -> torch.Tensor:
    """Cross-entropy to the class of each row, and to the uniform distribution where the target is NEGATIVE
    (outlier exposure, Hendrycks et al. 2019: what shows no class should favour none), weighted by
    ``negative_weight``; IGNORED rows count for nothing. -> a scalar (0 when no row counts)."""
    positive, negative = targets >= 0, targets == NEGATIVE
    loss = logits.new_zeros(())
    if positive.any():
        loss = loss + F.cross_entropy(logits[positive], targets[positive], reduction="sum")
    if negative.any():
        loss = loss - negative_weight * logits[negative].log_softmax(-1).mean(-1).sum()
    return loss / max(1, int(positive.sum() + negative.sum()))


def loss_fn(model: FusionModel, tokens, labels, targets, clean_rows, cfg: TrainConfig) -> torch.Tensor:
    out = model(tokens)
    loss = cross_entropy(out.logits, labels, cfg.negative_weight)
    for m, logits in out.unimodal_logits.items():
        if (targets[m] != IGNORED).any():
            loss = loss + cfg.aux_weight * cross_entropy(logits, targets[m], cfg.negative_weight)
    clean_rows = clean_rows & (labels >= 0)
    if cfg.consistency_weight > 0 and clean_rows.any():
        # Pull each unimodal prediction towards the fused one (a stop-gradient target) on clean rows,
        # weighted by the share of those rows that have the modality.
        target = out.probs.detach()
        for m, logits in out.unimodal_logits.items():
            rows = clean_rows & (targets[m] >= 0)
            if rows.any():
                kl = F.kl_div(logits[rows].log_softmax(-1), target[rows], reduction="batchmean")
                loss = loss + cfg.consistency_weight * kl * rows.sum() / clean_rows.sum()
    return loss


def with_modalities(split: SplitFeatures, keep, modalities) -> SplitFeatures:
    """The clean features of ``split`` with only the modalities in ``keep``."""
    n = len(split.labels)
    return SplitFeatures(split.labels, {m: split.clean[m] if m in keep else [None] * n for m in modalities}, {}, {})


@torch.no_grad()
def validation_score(model: FusionModel, split: SplitFeatures) -> dict:
    """Accuracy on every non-empty subset of modalities (their mean selects the checkpoint)."""
    model.eval()
    rows = list(range(len(split.labels)))
    return {"+".join(subset): accuracy(model, with_modalities(split, subset, model.modalities), rows)
            for subset in registry.subsets(model.modalities)}


def accuracy(model: FusionModel, split: SplitFeatures, rows: list[int], batch: int = 256) -> float:
    """Accuracy on the positive rows among ``rows`` that have any of the model's modalities."""
    correct, counted = 0, 0
    for start in range(0, len(rows), batch):
        chunk = [i for i in rows[start:start + batch] if int(split.labels[i]) >= 0
                 and any(split.clean[m][i] is not None for m in model.modalities)]
        if not chunk:
            continue
        tokens, labels, _, _ = make_batch(split, chunk, model, None, None)
        correct += int((model(tokens).logits.argmax(-1) == labels).sum())
        counted += len(chunk)
    return correct / max(1, counted)


@torch.no_grad()
def subset_passes(model: FusionModel, split: SplitFeatures, batch: int = 256):
    """For every non-empty subset of the model's modalities, the rows of ``split`` that have all of it,
    through that subset in batches -> yields (subset, FusionOutput, labels (B,))."""
    model.eval()
    for subset in registry.subsets(model.modalities):
        kept = with_modalities(split, subset, model.modalities)
        rows = [i for i in range(len(split.labels)) if all(kept.clean[m][i] is not None for m in subset)]
        for start in range(0, len(rows), batch):
            tokens, y, _, _ = make_batch(kept, rows[start:start + batch], model, None, None)
            yield subset, model(tokens), y


def subset_outputs(held_out: list[tuple[FusionModel, SplitFeatures]]):
    """``subset_passes`` of (model, split) pairs (e.g. one per cross-validation fold), gathered ->
    ({"image+text": (fused logits (N_s, C), labels (N_s,))}, {modality: (its unimodal max probability,
    label) of the rows given that modality alone})."""
    fused, alone = {}, {}
    for model, split in held_out:
        for subset, out, y in subset_passes(model, split):
            fused.setdefault("+".join(subset), []).append((out.logits, y))
            if len(subset) == 1:
                alone.setdefault(subset[0], []).append((out.unimodal_logits[subset[0]].softmax(-1).max(-1).values,
                                                        y))
    joined = {key: tuple(map(torch.cat, zip(*parts))) for key, parts in fused.items()}
    return joined, {m: tuple(map(torch.cat, zip(*parts))) for m, parts in alone.items()}


def abstention_shares(held_out: list[tuple[FusionModel, SplitFeatures]]) -> dict:
    """How calibrated models abstain on their held-out splits (``FusionModel.abstained``, the rule
    ``predict`` follows), pooled, per subset of modalities -> {"negatives_abstained": {subset: share},
    "positives_given_up": ...}. ``held_out``: (model, split) pairs, e.g. one per cross-validation fold."""
    flags = {}
    for model, split in held_out:
        for subset, out, y in subset_passes(model, split):
            flags.setdefault("+".join(subset), []).append((model.abstained(out), y))
    shares = {"negatives_abstained": {}, "positives_given_up": {}}
    for key, parts in flags.items():
        abstained, y = map(torch.cat, zip(*parts))
        for name, rows in (("negatives_abstained", y < 0), ("positives_given_up", y >= 0)):
            if rows.any():
                shares[name][key] = round(float(abstained[rows].float().mean()), 4)
    return shares


def abstain_threshold(confidence: torch.Tensor, labels: torch.Tensor) -> float:
    """The confidence below which to abstain, from validation rows' (N,) confidences and labels (NEGATIVE
    for a negative): the one that abstains on ``ABSTAIN_NEGATIVES`` of the negatives, at most the
    ``MAX_POSITIVES_GIVEN_UP`` quantile of the positives' (abstaining is paid for in real examples given
    up, so the price is bounded; where negatives are far below the positives, none are given up).
    Without negatives: the ``ABSTAIN_POSITIVES`` quantile of the positives'."""
    positives, negatives = confidence[labels >= 0], confidence[labels < 0]
    if not len(negatives):
        return round(float(torch.quantile(positives, ABSTAIN_POSITIVES)), 4)
    wanted = float(torch.quantile(negatives, ABSTAIN_NEGATIVES))
    return round(min(wanted, float(torch.quantile(positives, MAX_POSITIVES_GIVEN_UP))), 4)


def calibrate(model: FusionModel, split: SplitFeatures, negatives: bool) -> dict:
    """Fit the model's calibration on a validation split (every subset of modalities pooled) -> a report.

    Temperature: the one that minimises the positives' negative log-likelihood (Guo et al., 2017). With
    negatives in training, also the probabilities below which the model abstains (``abstain_threshold``):
    one per subset of modalities, since one input alone is far less sure than three that agree, and each
    modality's own; the shares of validation negatives abstained on and positives given up by the calibrated
    model (both thresholds together, ``abstention_shares``) are reported.
    """
    model.set_calibration({})
    by_subset, alone = subset_outputs([(model, split)])
    logits, labels = (torch.cat(parts) for parts in zip(*by_subset.values()))
    positive = labels >= 0
    temperature = fit_temperature(logits[positive], labels[positive])
    confidence, guess = (logits / temperature).softmax(-1).max(-1)
    correct = guess == labels
    before = logits[positive].softmax(-1).max(-1).values
    report = {"ece_before": round(reliability(before.numpy(), correct[positive].numpy())["ece"], 4),
              "ece": round(reliability(confidence[positive].numpy(), correct[positive].numpy())["ece"], 4)}
    calibration = {"temperature": round(temperature, 4)}
    if negatives:
        calibration |= abstention_thresholds(by_subset, alone, temperature)
    model.set_calibration(calibration)
    if negatives:
        report |= abstention_shares([(model, split)])
    return {**calibration, "validation": report}


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature in [0.25, 8] that minimises the negative log-likelihood of ``labels`` (N,) under
    ``logits`` (N, C) divided by it (Guo et al., 2017)."""
    temperatures = torch.exp(torch.linspace(math.log(0.25), math.log(8.0), 200))
    nll = [F.cross_entropy(logits / t, labels) for t in temperatures]
    return float(temperatures[int(torch.stack(nll).argmin())])


def abstention_thresholds(by_subset: dict, alone: dict, temperature: float = 1.0) -> dict:
    """``abstain_threshold`` for every subset of modalities and for each modality's own prediction, from
    held-out outputs (``subset_outputs``' pair of dicts) -> {"abstain_below": {subset: probability},
    "unimodal_abstain_below": {modality: probability}} (subsets with no positive row left out)."""
    confidences = {key: ((subset_logits / temperature).softmax(-1).max(-1).values, y)
                   for key, (subset_logits, y) in by_subset.items()}
    return {"abstain_below": {key: abstain_threshold(*pair) for key, pair in confidences.items()
                              if (pair[1] >= 0).any()},
            "unimodal_abstain_below": {m: abstain_threshold(*pair) for m, pair in alone.items()
                                       if (pair[1] >= 0).any()}}


def recalibrate(model_dir: str | Path, val: str | Path, cache_dir=None, device: str = "cpu") -> dict:
    """Fit a trained model folder's calibration again on the validation manifest ``val`` (``calibrate``) and
    save it there: e.g. after a change to how thresholds are chosen, or on validation rows of one's own.
    Abstention thresholds only for a model trained with negatives. -> the calibration report."""
    from .pipeline import load_model

    loaded = load_model(model_dir, device)
    model = loaded.fusion.to("cpu")
    cache = FeatureCache(cache_dir or Path(val).resolve().parent / ".features", loaded.encoders,
                         loaded.decode_options)
    with tempfile.TemporaryDirectory(prefix="fusion-calibrate-") as unpacked:
        rows = read_manifest_or_zip(val, Path(unpacked))
        split = load_split(cache, rows, loaded.labels, list(model.modalities), augment=False, name="val")
    calibration = calibrate(model, split, negatives="abstain_below" in model.config.get("calibration", {}))
    if "training" in model.config:
        model.config["training"]["calibration"] = calibration["validation"]
    model.save_pretrained(model_dir)
    return calibration


def encoder_specs(cfg: TrainConfig, modalities) -> dict[str, dict]:
    """{modality: encoder spec} for a run: the config's encoder for image, audio and text, with the built-in
    encoders' options (image size, preprocessing and blocks; audio layers); an ``hf:`` backbone takes none.
    Other registered modalities get their registry default."""
    chosen = {"image": (cfg.image_encoder, {"size": cfg.image_size, "preprocessing": cfg.image_preprocessing,
                                             "blocks": cfg.image_blocks}),
              "audio": (cfg.audio_encoder, {"layers": cfg.audio_layers}), "text": (cfg.text_encoder, {})}
    specs = {}
    for m in modalities:
        name, options = chosen.get(m, (None, {}))
        specs[m] = (dict(registry.modality(m).encoder) if name is None
                    else {"name": name} if name.startswith("hf:") else {"name": name, **options})
    return specs


def train(manifest: str | Path, val: str | Path | None, out: str | Path, cfg: TrainConfig, cache_dir=None,
          device: str = "cpu") -> dict:
    """Train one strategy and save the best (by validation) model folder to ``out``; returns the log (and
    the trained model: a ``FusionModel``, or with ``cfg.finetune`` an ``EndToEnd`` of it and the blocks).

    manifest, val: CSV manifests, or zips holding one (the Teach tab's download). val None: a stratified
    ``VAL_FRACTION`` of ``manifest``'s rows is held out instead.
    """
    seed_everything(cfg.seed)
    with tempfile.TemporaryDirectory(prefix="fusion-train-") as unpacked:  # a zip's files, until encoded
        train_rows = read_manifest_or_zip(manifest, Path(unpacked) / "train")
        if val is None:
            train_rows, val_rows = hold_out(train_rows, VAL_FRACTION, cfg.seed)
            print(f"validation: {len(val_rows)} rows held out of {Path(manifest).name}", flush=True)
        else:
            val_rows = read_manifest_or_zip(val, Path(unpacked) / "val")
        labels = sort_labels(row["label"] for row in train_rows)
        modalities = [m for m in registry.names() if any(row[m] for row in train_rows)]
        specs, encoders = encoder_specs(cfg, modalities), {}
        for m in modalities:
            try:
                encoders[m] = shared_encoder(m, specs[m], device)
            except (ValueError, TypeError, OSError) as error:  # an unknown name, an option it refuses, no such model
                raise OptionError(f"{m}_encoder {specs[m]['name']!r}: {str(error).splitlines()[0]}") from None
        finetune, cuts = cfg.finetune_blocks, {}
        for m, blocks in finetune.items():
            if m not in modalities:
                raise OptionError(f"finetune names {m!r}, but the training manifest has no {m} inputs "
                                  f"(it has {', '.join(modalities)}).")
            try:
                cuts[m] = encoders[m].finetune_cut(blocks)
            except ValueError as error:  # an hf: backbone, or more blocks than the encoder has
                raise OptionError(f"finetune {m}:{blocks}: {error}") from None
        suffixes = {m: encoders[m].suffix(cut) for m, cut in cuts.items()}
        # The task's other words for its classes travel in the config, so serving decodes text as training did.
        task = {"text_aliases": importlib.import_module(f".data.{cfg.text_aliases}", __package__).TEXT_ALIASES} \
            if cfg.text_aliases else {}
        task["class_noun"] = cfg.class_noun
        # A fine-tuned encoder's cache holds the input of its first unfrozen block (PrefixView).
        cached = {m: PrefixView(encoders[m], cuts[m]) if m in cuts else encoders[m] for m in modalities}
        cache = FeatureCache(cache_dir or Path(manifest).resolve().parent / ".features", cached,
                             decode_options({**task, "labels": labels}))
        train_split = load_split(cache, train_rows, labels, modalities, augment=True, name="train")
        val_split = load_split(cache, val_rows, labels, modalities, augment=False, name="val")

    positives = train_split.labels[train_split.labels >= 0]
    counts = np.bincount(positives.numpy(), minlength=len(labels)).astype(float)
    # A fixed image grid (every image gives the same number of tokens) gets one projection per cell.
    grids = set()
    for m in modalities:
        if registry.modality(m).positional:
            items = [item for item in train_split.clean[m] if item is not None]
            cells = {item["values"].shape[0] for item in items}
            if m in suffixes and len(cells) == 1:  # cached: the prefix's cells; the tokens: the blocks' output
                with torch.no_grad():
                    cells = {suffixes[m](collate(items[:1])).values.shape[1]}
            grids |= cells
    config = default_config(labels, cfg.fusion, encoders={m: normalize_spec(specs[m]) for m in modalities},
                            encoder_dims={m: encoders[m].dim for m in modalities},
                            class_prior=[float(c) for c in (counts + 1) / (counts + 1).sum()],
                            image_positions=grids.pop() if len(grids) == 1 else 0, **task)
    model = FusionModel(config)
    if suffixes:  # the head and the unfrozen blocks, trained together (saved: the head + the blocks' overlay)
        model = EndToEnd(model, suffixes, finetune)
    by_label = {c: {m: [i for i in range(len(train_rows)) if int(train_split.labels[i]) == c
                        and train_split.clean[m][i] is not None] for m in modalities}
                for c in [*range(len(labels)), NEGATIVE]}
    # A soup (Wortsman et al., 2022): members start from the same weights and differ only in batch order,
    # augmentation and dropout draws, so they stay in one basin and averaging their weights loses nothing;
    # the soup gives the recipe's expected result instead of one run's draw of it (figures: the model card).
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    members = []
    for member in range(cfg.soup):
        model.load_state_dict(initial)
        members.append(fit(model, train_split, val_split, by_label, cfg, seed=cfg.seed + member,
                           label=f"member {member + 1}/{cfg.soup} " if cfg.soup > 1 else ""))
    if len(members) == 1:
        state, best_score, log = members[0]
        model.load_state_dict(state)
    else:
        state = {k: torch.stack([m[0][k].float() for m in members]).mean(0).to(initial[k].dtype) for k in initial}
        model.load_state_dict(state)
        scores = validation_score(model, val_split)
        best_score = float(np.mean(list(scores.values())))
        log = {"members": [m[2] for m in members],
               "soup": {"val_mean_subset_acc": round(best_score, 4),
                        "val": {subset: round(acc, 4) for subset, acc in scores.items()}}}
        print(json.dumps({"soup": log["soup"]}), flush=True)
    negatives = bool((train_split.labels == NEGATIVE).any())
    calibration = calibrate(model, val_split, negatives)
    print(json.dumps({"calibration": calibration}), flush=True)
    model.config["training"] = {"train_config": asdict(cfg), "train_manifest": Path(manifest).name,
                                "train_rows": len(train_rows), "best_val_mean_subset_acc": round(best_score, 4),
                                "epochs_run": [len(m[2]) for m in members] if cfg.soup > 1 else len(log),
                                "calibration": calibration["validation"]}
    model.save_pretrained(out)
    (Path(out) / "training_log.json").write_text(json.dumps(log, indent=1))
    return {"best_val": best_score, "log": log, "calibration": calibration, "model": model}


def fit(model: FusionModel, train_split: SplitFeatures, val_split: SplitFeatures | None, by_label: dict,
        cfg: TrainConfig, seed: int, label: str = "", on_epoch=None) -> tuple[dict, float, list]:
    """One training run from the model's current weights; returns (best state, its val score, epoch log).

    val_split None: no validation (nor early stop); the last weights are returned, with score None.
    on_epoch: called with each epoch's log entry instead of printing it and drawing progress bars.
    """
    from tqdm import tqdm

    torch.manual_seed(seed)
    # Fine-tuned encoder blocks (EndToEnd) learn at their own, lower rate.
    groups = model.param_groups(cfg.lr, cfg.blocks_lr) if hasattr(model, "param_groups") else model.parameters()
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_split.labels) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    # The average is what gets validated and saved: single-modality accuracy on unseen voices swings by
    # points from one epoch's weights to the next, and an average over the last few hundred steps does not.
    # Its window, 1 / (1 - decay) steps, is kept under a fifth of the run so a short run is not an average
    # of barely trained weights.
    decay = min(cfg.ema_decay, 1 - 5 / total)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True) if decay > 0 else None
    evaluated = averaged.module if averaged else model
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / steps_per_epoch) * 0.5 * (1 + math.cos(math.pi * step / total)))
    rng = random.Random(seed)
    best, best_score, stale, log = None, -1.0, 0, []
    for epoch in range(cfg.epochs):
        model.train()
        order = list(range(len(train_split.labels)))
        rng.shuffle(order)
        started, total_loss = time.time(), 0.0
        for start in tqdm(range(0, len(order), cfg.batch_size), desc=f"{label}epoch {epoch + 1}", leave=False,
                          disable=on_epoch is not None):
            tokens, y, targets, clean_rows = make_batch(train_split, order[start:start + cfg.batch_size], model, cfg,
                                                        rng, by_label)
            loss = loss_fn(model, tokens, y, targets, clean_rows, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            if averaged:
                averaged.update_parameters(model)
            total_loss += loss.item() * len(y)
        entry = {"epoch": epoch + 1, "loss": round(total_loss / len(order), 4)}
        if val_split is None:
            log.append(entry)
            if on_epoch is not None:
                on_epoch(entry)
            continue
        scores = validation_score(evaluated, val_split)
        score = float(np.mean(list(scores.values())))
        entry.update({"val_mean_subset_acc": round(score, 4), "val": {subset: round(acc, 4) for subset, acc in
                                                                      scores.items()},
                      "seconds": round(time.time() - started, 1)})
        log.append(entry)
        if on_epoch is None:
            print(json.dumps(entry), flush=True)
        else:
            on_epoch(entry)
        if score > best_score:
            best_score, stale = score, 0
            best = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
        else:
            stale += 1
            if stale >= cfg.patience:
                if on_epoch is None:
                    print(f"early stop: no val improvement for {cfg.patience} epochs", flush=True)
                break
    if val_split is None:
        return {k: v.detach().clone() for k, v in evaluated.state_dict().items()}, None, log
    return best, best_score, log
