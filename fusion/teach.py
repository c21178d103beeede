"""Teach your own classes: a few examples per class, a fusion head trained on the frozen encoders' tokens.

A ``Project`` is one person's task: 2-10 named classes, examples (any non-empty subset of the modalities,
files copied into the project's own folder), their tokens (encoded once, when the example is added, into
the project's feature cache) and, once trained, a ``FusionModel`` with a ``TeachReport``: cross-validated
accuracy for every subset of modalities and each modality's mean weight per class. What makes a few
examples enough: the encoders are pretrained and frozen, and the head is small (d_model 64), strongly
regularised (weight decay, dropout, modality dropout) and trained for a fixed 150 steps.

Examples of none of the classes (label ``None``, shown as ``NONE``: a face, the room, other words) teach
the model to say so. Its abstention thresholds are then calibrated on the cross-validation folds'
held-out examples (``fusion.train.abstention_thresholds``, as training calibrates on a validation file);
without such examples a taught model always answers one of its classes.

A project travels as a zip (``save_zip`` / ``Project.from_zip``): ``model/`` (config, safetensors, model
card), ``examples/`` and ``manifest.csv`` in the CLI's manifest format, so ``python -m fusion train
--manifest project.zip`` and ``fusion.load_model("project.zip")`` read it too.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import modalities as registry
from .config import TrainConfig
from .data.manifest import read_manifest_or_zip, write_manifest
from .errors import InputError
from .features import FeatureCache
from .inputs import present_inputs
from .modalities import decode_inputs

MIN_CLASSES, MAX_CLASSES = 2, 10
MAX_EXAMPLES_PER_CLASS = 40
MAX_TRAIN_SECONDS = 90
MAX_NAME_CHARS = 40
MAX_PROJECT_BYTES = 200 * 2**20  # a session's examples, their tokens and downloads together, on the server's disk
MAX_RESTORE_SECONDS = 180  # encoding a project zip's examples; its row counts are checked before any is encoded
NONE = "none of these"  # the examples of no class, as the page lists them (not a class name)
# Few examples: a narrow, strongly regularised head, trained for a fixed number of steps (no examples
# to spare for validation).
FEW_SHOT = TrainConfig(batch_size=16, lr=3e-3, weight_decay=0.05, ema_decay=0.0, reliability=0.0,
                       corrupted_copies=False)
FEW_SHOT_WIDTH = 64
FEW_SHOT_STEPS = 150
TRAIN_THREADS = 1  # a head of this size gains little from more
# What projects share with the server, by id: its encoders and its stop event. A project pickles without
# them (ZeroGPU hands a handler's arguments to a forked process and its result back, ``fusion.gpu``) and
# finds them here on the other side; a fork inherits this table with the objects at the same ids.
SHARED: dict[int, object] = {}


def share(obj) -> int:
    """Register ``obj`` for projects that travel between processes -> its key."""
    SHARED[id(obj)] = obj
    return id(obj)


@dataclass
class Example:
    """One taught example: its class (None: none of the classes) and the inputs it has (file paths inside
    the project, or the text)."""

    id: int
    label: str | None
    inputs: dict[str, str]  # {modality: file path or text}


@dataclass
class TeachReport:
    """What training found. cv_accuracy: {"image+text": accuracy on held-out examples of the classes (None:
    too few to hold any out)}; weights: {class: {modality: mean weight}}; seconds: training time;
    abstention: the calibrated abstention on held-out examples ({"negatives_abstained": {subset: share of
    the none-of-these examples}, "positives_given_up": {subset: share of the classes' examples}}), None
    when the model was not calibrated to abstain."""

    cv_accuracy: dict[str, float | None]
    weights: dict[str, dict[str, float]]
    seconds: float
    folds: int
    examples: int = 0
    notes: list[str] = field(default_factory=list)
    abstention: dict | None = None


class Project:
    """One person's taught task. ``encoders``: the frozen encoders to use ({modality: Encoder}, shared)."""

    def __init__(self, encoders: dict, specs: dict, dims: dict, image_positions: int = 0, parent=None, stop=None):
        """parent: the folder to make the project's own folder in (default: the system's temporary folder);
        stop: a ``threading.Event`` that, once set (the server stopping), cuts a training or a restore short."""
        self.encoders, self.specs, self.dims, self.image_positions = encoders, specs, dims, image_positions
        self.stop = stop or threading.Event()
        share(self.encoders)
        share(self.stop)
        self.folder = Path(tempfile.mkdtemp(prefix="fusion-teach-", dir=parent))
        (self.folder / "examples").mkdir(parents=True, exist_ok=True)
        self.cache = FeatureCache(self.folder / ".features", encoders)
        self.classes: list[str] = []
        self.examples: list[Example] = []
        self.model = None
        self.report: TeachReport | None = None
        self.next_id = 0

    def __getstate__(self) -> dict:
        """Everything but the shared encoders and stop event (their ``SHARED`` keys instead) and the feature
        cache (its folder): a project pickles in milliseconds, its examples and model included."""
        state = dict(self.__dict__)
        state.update(encoders=share(self.encoders), stop=share(self.stop),
                     cache=(str(self.cache.root), self.cache.decode_options))
        return state

    def __setstate__(self, state: dict) -> None:
        try:
            encoders, stop = SHARED[state["encoders"]], SHARED[state["stop"]]
        except KeyError:
            raise InputError("This session's project belongs to another server process: upload it again.") from None
        root, options = state["cache"]
        self.__dict__.update(state, encoders=encoders, stop=stop, cache=FeatureCache(root, encoders, options))

    @classmethod
    def like(cls, loaded, parent=None, stop=None) -> Project:
        """A new project with the encoders of a ``LoadedModel`` (the shipped model's, already in memory), in a
        folder of its own under ``parent``."""
        config = loaded.fusion.config
        return cls(loaded.encoders, config["encoders"], config["encoder_dims"], config.get("image_positions", 0),
                   parent, stop)

    # ------------------------------------------------------------ classes and examples

    def add_class(self, name: str) -> str:
        name = " ".join(str(name or "").split())
        if not name:
            raise InputError("Give the class a name first.")
        if len(name) > MAX_NAME_CHARS:
            raise InputError(f"A class name can have at most {MAX_NAME_CHARS} characters.")
        if name in self.classes:
            raise InputError(f"There is already a class called {name!r}.")
        if name.lower() == NONE:
            raise InputError(f"{NONE!r} is where examples of none of the classes go; name the class otherwise.")
        if len(self.classes) >= MAX_CLASSES:
            raise InputError(f"At most {MAX_CLASSES} classes can be taught.")
        self.classes.append(name)
        return name

    def remove_class(self, name: str | None) -> None:
        """Remove a class and its examples (None: the examples of none of the classes)."""
        for example in [e for e in self.examples if e.label == name]:
            self.remove_example(example.id)
        self.classes = [c for c in self.classes if c != name]

    def count(self, label: str | None) -> int:
        return sum(e.label == label for e in self.examples)

    def add_example(self, label: str | None, **values) -> tuple[Example, list[str]]:
        """Add an example of ``label`` (None: of none of the classes) from raw values (paths, arrays, text)
        -> (the example, notes).

        Each value is decoded as a prediction would decode it (same limits and messages), file inputs are
        copied into the project, and every modality is encoded now, so training reads cached tokens.
        """
        if label is not None and label not in self.classes:
            raise InputError("Choose the class this example belongs to (add a class first).")
        if self.count(label) >= MAX_EXAMPLES_PER_CLASS:
            raise InputError(f"{label or NONE!r} has {MAX_EXAMPLES_PER_CLASS} examples, the most a class can have.")
        given = {m: v for m, v in present_inputs(values).items() if m in self.encoders}
        if not given:
            raise InputError("An example needs at least one input: a picture, a recording or a text.")
        incoming = sum(Path(v).stat().st_size for m, v in given.items() if registry.modality(m).files
                       and isinstance(v, (str, os.PathLike)) and Path(v).is_file())
        if self.disk_bytes() + incoming > MAX_PROJECT_BYTES:
            raise InputError(f"This project already holds {self.disk_bytes() / 2**20:.0f} MB, close to the "
                             f"{MAX_PROJECT_BYTES // 2**20} MB a session may keep: remove some examples first.")
        _, notes = decode_inputs(self.encoders, **given)  # refuses what a prediction would refuse
        example = Example(self.next_id, label, {})
        for m, value in given.items():
            if registry.modality(m).files:
                source = Path(value)
                target = self.folder / "examples" / f"{example.id:04d}-{m}{source.suffix.lower()}"
                shutil.copyfile(source, target)
                example.inputs[m] = str(target)
            else:
                example.inputs[m] = str(value)
            self.cache.tokens(m, [example.inputs[m]])
        self.next_id += 1
        self.examples.append(example)
        return example, notes

    def remove_example(self, example_id: int) -> None:
        for example in [e for e in self.examples if e.id == example_id]:
            for m, value in example.inputs.items():
                if registry.modality(m).files:
                    Path(value).unlink(missing_ok=True)
        self.examples = [e for e in self.examples if e.id != example_id]

    def disk_bytes(self) -> int:
        """What the project's folder holds now: examples, their cached tokens, downloads."""
        return sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file())

    def modalities(self) -> list[str]:
        return [m for m in registry.names() if any(m in e.inputs for e in self.examples)]

    # ------------------------------------------------------------ training

    def split(self, examples: list[Example], modalities: list[str]):
        """Cached tokens of ``examples`` as the training code's ``SplitFeatures`` (clean inputs only)."""
        from .train import load_split

        rows = [{**{m: e.inputs.get(m) for m in modalities}, "label": e.label} for e in examples]
        return load_split(self.cache, rows, self.classes, modalities, augment=False, name="taught examples")

    def fit(self, examples: list[Example], strategy: str, seed: int, deadline: float):
        """A fusion head trained on ``examples`` (until they fit, or the deadline) -> FusionModel."""
        from .encoders import normalize_spec
        from .model import FusionModel, default_config
        from .train import NEGATIVE, fit, seed_everything

        modalities = self.modalities()
        seed_everything(seed)
        config = default_config(self.classes, strategy, encoders={m: normalize_spec(self.specs[m]) for m in modalities},
                                encoder_dims={m: self.dims[m] for m in modalities}, d_model=FEW_SHOT_WIDTH,
                                image_positions=self.image_positions if "image" in modalities else 0)
        model = FusionModel(config)
        data = self.split(examples, modalities)
        by_label = {c: {m: [i for i, e in enumerate(examples) if e.label == label and m in e.inputs]
                        for m in modalities} for c, label in [*enumerate(self.classes), (NEGATIVE, None)]}

        def stop_at_deadline(entry):
            if time.monotonic() > deadline or self.stop.is_set():
                raise TimeoutError

        epochs = max(10, math.ceil(FEW_SHOT_STEPS / math.ceil(len(examples) / FEW_SHOT.batch_size)))
        cfg = replace(FEW_SHOT, fusion=strategy, seed=seed, epochs=epochs)
        try:
            state, _, _ = fit(model, data, None, by_label, cfg, seed, on_epoch=stop_at_deadline)
        except TimeoutError:
            state = None
        if state is not None:
            model.load_state_dict(state)
        return model.eval()

    def train(self, strategy: str = "attention", seed: int = 0, progress=None,
              max_seconds: float = MAX_TRAIN_SECONDS) -> TeachReport:
        """Cross-validate (stratified folds over the examples) and train the final model on all of them,
        stopping at ``max_seconds``.

        progress: called with ((fits done, fits in all), what is happening), e.g. Gradio's ``gr.Progress()``,
            which shows it as "1/4 steps".
        Runs on ``TRAIN_THREADS`` threads (torch counts them per calling thread), so that in a server the
        other cores stay with other users' predictions.
        """
        previous = torch.get_num_threads()
        torch.set_num_threads(TRAIN_THREADS)
        try:
            return self.cross_validate_and_fit(strategy, seed, progress, max_seconds)
        finally:
            torch.set_num_threads(previous)

    def cross_validate_and_fit(self, strategy: str, seed: int, progress,
                               max_seconds: float = MAX_TRAIN_SECONDS) -> TeachReport:
        from .train import validation_score

        short = [c for c in self.classes if self.count(c) == 0]
        if len(self.classes) < MIN_CLASSES or short:
            none = ""
            if short:
                names = f"{', '.join(short[:-1])} and {short[-1]} have" if len(short) > 1 else f"{short[0]} has"
                none = f" ({names} none)"
            raise InputError(f"Teach at least {MIN_CLASSES} classes, each with at least one example{none}.")
        progress = progress or (lambda steps, desc=None: None)
        started = time.monotonic()
        deadline = started + max_seconds
        folds = min(5, min(self.count(c) for c in self.classes))
        steps = folds + 1 if folds >= 2 else 1  # a fit per fold, then the one on every example
        modalities = self.modalities()
        subsets = ["+".join(s) for s in registry.subsets(modalities)]
        correct, counted, notes, held_out = dict.fromkeys(subsets, 0.0), dict.fromkeys(subsets, 0), [], []
        if folds >= 2:
            fold_of = {}
            for label in [*self.classes, None]:  # stratified: each class's examples dealt round the folds
                for k, e in enumerate(e for e in self.examples if e.label == label):
                    fold_of[e.id] = k % folds
            for k in range(folds):
                progress((k, steps), f"cross-validation, fold {k + 1} of {folds}")
                held = [e for e in self.examples if fold_of[e.id] == k]
                model = self.fit([e for e in self.examples if fold_of[e.id] != k], strategy, seed, deadline)
                held_out.append((model, self.split(held, model.modalities)))
                for subset, accuracy in validation_score(*held_out[-1]).items():
                    n = sum(e.label is not None and any(m in e.inputs for m in subset.split("+"))
                            for e in held)  # as scored: the classes' examples
                    correct[subset] += accuracy * n
                    counted[subset] += n
        else:
            notes.append("Cross-validation needs at least 2 examples of every class; add more to see accuracy.")
        progress((steps - 1, steps), "training on every example")
        self.model = self.fit(self.examples, strategy, seed, deadline)
        if self.stop.is_set():
            raise InputError("The server is stopping, so the training was cut short: train again once it is back.")
        abstention = self.calibrate_abstention(held_out, notes)
        if time.monotonic() > deadline:
            notes.append(f"Training stopped at the {max_seconds:.0f}-s limit; the model is usable but may "
                         "be undertrained.")
        self.report = TeachReport({s: correct[s] / counted[s] if counted[s] else None for s in subsets},
                                  self.class_weights(), round(time.monotonic() - started, 2),
                                  folds if folds >= 2 else 0, len(self.examples), notes, abstention)
        progress((steps, steps), "done")
        return self.report

    def calibrate_abstention(self, held_out: list, notes: list[str]) -> dict | None:
        """Give the trained model abstention thresholds fitted on the folds' held-out examples ((fold model,
        split) pairs), when none-of-these examples are among them -> their abstention shares, or None
        (a note says why). A subset of inputs no held-out none example had gets no threshold (it never
        says none). The temperature stays 1: a few held-out examples are too few to fit one on."""
        from .train import NEGATIVE, abstention_shares, abstention_thresholds, subset_outputs

        if not any(e.label is None for e in self.examples):
            notes.append(f"The model always answers one of your classes. To let it say that an input is none "
                         f"of them, add examples of such things to “{NONE}” and train again.")
            return None
        if not any(bool((split.labels == NEGATIVE).any()) for _, split in held_out):
            notes.append(f"Saying “{NONE}” is calibrated on held-out examples: add at least 2 examples of "
                         f"every class and of “{NONE}”.")
            return None
        # Only where held-out none examples were seen: elsewhere a threshold would rest on the classes'
        # few examples alone and give up their least sure one.
        seen = [{key: pair for key, pair in outputs.items() if bool((pair[1] == NEGATIVE).any())}
                for outputs in subset_outputs(held_out)]
        calibration = abstention_thresholds(*seen)
        for model in [self.model, *(fold_model for fold_model, _ in held_out)]:
            model.set_calibration(calibration)
        return abstention_shares(held_out)

    @torch.no_grad()
    def class_weights(self) -> dict[str, dict[str, float]]:
        """Each modality's mean weight over the examples of each class that have every modality taught
        (all examples when none has them all); concatenation's weights are its |Shapley| shares."""
        from .features import collate

        modalities = list(self.model.modalities)
        full = [e for e in self.examples if all(m in e.inputs for m in modalities)] or self.examples
        data = self.split(full, modalities)
        tokens = {m: collate(data.clean[m], self.dims[m]) for m in modalities}
        out = self.model({m: t for m, t in tokens.items() if t is not None}, contributions=True)
        weights = out.modality_weights
        if weights is None:
            shares = out.contributions.abs()
            weights = shares / shares.sum(1, keepdim=True).clamp_min(1e-9)
        result = {}
        for c, label in enumerate(self.classes):
            rows = data.labels == c
            if rows.any():
                result[label] = {m: round(float(weights[rows, i].mean()), 4) for i, m in enumerate(modalities)}
        return result

    # ------------------------------------------------------------ as a zip

    def save_zip(self, path: str | Path) -> Path:
        """``path`` (a .zip): model/ (when trained), examples/, manifest.csv."""
        path = Path(path)
        with tempfile.TemporaryDirectory(prefix="fusion-teach-zip-") as tmp:
            root = Path(tmp)
            rows = [{**{m: f"examples/{Path(v).name}" if registry.modality(m).files else v
                        for m, v in e.inputs.items()}, "label": e.label} for e in self.examples]
            write_manifest(root / "manifest.csv", rows)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(root / "manifest.csv", "manifest.csv")
                for e in self.examples:
                    for m, value in e.inputs.items():
                        if registry.modality(m).files:
                            archive.write(value, f"examples/{Path(value).name}")
                if self.model is not None:
                    folder = root / "model"
                    self.model.save_pretrained(folder)  # with its model card
                    for file in sorted(folder.iterdir()):
                        archive.write(file, f"model/{file.name}")
        return path

    @classmethod
    def from_zip(cls, path: str | Path, loaded, parent=None, stop=None,
                 max_seconds: float = MAX_RESTORE_SECONDS) -> tuple[Project, list[str]]:
        """A project saved by ``save_zip`` (or any zip with a manifest.csv), re-encoded (for at most
        ``max_seconds``) -> (project, notes).

        Its manifest's files must lie inside the zip, its classes and examples within the limits (checked
        before anything is encoded) and its model's config within ``fusion.model``'s bounds (checked before
        the model is built). Nothing is left on disk when it is refused."""
        from .model import FusionModel

        project = cls.like(loaded, parent, stop)
        try:
            unpacked = project.folder / "upload"
            rows = read_manifest_or_zip(path, unpacked)
            check_counts(rows, Path(path).name)
            deadline = time.monotonic() + max_seconds
            for row in rows:
                if project.stop.is_set():
                    raise InputError("The server is stopping: upload the project again once it is back.")
                if time.monotonic() > deadline:
                    raise InputError(f"Restoring {Path(path).name} took over {max_seconds:.0f} s: upload a "
                                     "project with fewer or shorter examples.")
                if row["label"] is not None and row["label"] not in project.classes:
                    project.add_class(row["label"])
                project.add_example(row["label"], **{m: row[m] for m in registry.names() if row.get(m)})
            notes = []
            if (unpacked / "model" / "config.json").is_file():
                model = FusionModel.from_pretrained(unpacked / "model")
                differences = project.encoder_differences(model.config)
                if differences:
                    notes.append(f"The zip's model was trained on other encoders than this app serves "
                                 f"({'; '.join(differences)}): train again.")
                elif model.labels == project.classes:
                    project.model = model.eval()
                else:
                    notes.append("The zip's model was trained on other classes than its examples: train again.")
            shutil.rmtree(unpacked, ignore_errors=True)
        except BaseException:
            project.close()
            raise
        return project, notes

    def encoder_differences(self, config: dict) -> list[str]:
        """How the encoders a model config was trained on differ from the project's (the served ones), one phrase
        per modality; served on these, such a model would get features of another width or meaning."""
        from .encoders import normalize_spec

        differences = []
        for m, spec in config["encoders"].items():
            if m not in self.specs:
                differences.append(f"{m}, which this app has no encoder for")
            elif config["encoder_dims"][m] != self.dims[m]:
                differences.append(f"{m} features of width {config['encoder_dims'][m]}, the served {m} encoder "
                                   f"gives {self.dims[m]}")
            elif (trained := normalize_spec(spec)) != (served := normalize_spec(self.specs[m])):
                changed = [key for key in sorted(set(trained) | set(served)) if trained.get(key) != served.get(key)]
                options = ", ".join(f"{key} {trained.get(key)!r} (served: {served.get(key)!r})" for key in changed)
                differences.append(f"{m} encoder {options}")
        return differences

    def close(self) -> None:
        """Delete the project's files (its examples, cache and uploads)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def check_counts(rows: list[dict], name: str) -> None:
    """A project zip's manifest rows within the Teach limits, before any example is encoded."""
    labels = [row["label"] for row in rows]
    classes = {label for label in labels if label is not None}
    if len(classes) > MAX_CLASSES:
        raise InputError(f"{name} has {len(classes)} classes; at most {MAX_CLASSES} can be taught.")
    for label in [*classes, None]:
        if labels.count(label) > MAX_EXAMPLES_PER_CLASS:
            raise InputError(f"{name} has {labels.count(label)} examples of {label or NONE!r}; a class can have at "
                             f"most {MAX_EXAMPLES_PER_CLASS}.")


def plot_weights(report: TeachReport, classes: list[str]):
    """Each modality's mean weight per class, as stacked horizontal bars (a matplotlib Figure)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    labels = [c for c in classes if c in report.weights]
    modalities = list(next(iter(report.weights.values()))) if report.weights else []
    figure = Figure(figsize=(6, 0.45 * len(labels) + 1.2), layout="constrained")
    axes = figure.subplots()
    left = np.zeros(len(labels))
    for m in modalities:
        shares = np.array([report.weights[c][m] for c in labels])
        axes.barh(labels, shares, left=left, color=registry.modality(m).color, label=m)
        left += shares
    axes.set_xlim(0, 1)
    axes.invert_yaxis()
    axes.set_xlabel("mean weight in the fusion")
    axes.legend(ncols=len(modalities), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return figure
