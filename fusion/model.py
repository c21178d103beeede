"""``FusionModel``: encoder tokens of any subset of modalities -> prediction with its explanations.

A model is one folder: ``config.json`` (labels, encoder specs, strategy and hyper-parameters, class
prior, format version) + ``model.safetensors`` (fusion weights only; encoders come from their packages),
and for a model trained with ``--finetune`` one ``<modality>.finetune.safetensors`` per fine-tuned encoder
(its changed blocks only, named in the config's ``finetuned`` field; see ``fusion.finetune``).
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_file, save_file
from torch import nn

from . import modalities as registry
from .encoders import DEFAULT_SPECS, Tokens, normalize_spec
from .encoders.base import masked_mean
from .errors import CheckpointError
from .strategies import STRATEGIES, ModalityTokens
from .strategies.layers import ModalityProjection, classifier, pool_frames

FORMAT_VERSION = 1
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
MAX_WIDTH = 2048  # d_model; encoder widths up to 4x (the whole model is bounded by MAX_PARAMETERS)
MAX_LABELS = 10_000
MAX_PARAMETERS = 20_000_000  # ~80 MB of float32, about ten times the shipped models
MAX_ALIASES = 1_000  # other words in text_aliases, each at most MAX_ALIAS_CHARS long
MAX_ALIAS_CHARS = 100


@dataclass
class FusionOutput:
    """Everything one forward pass says, for B rows, C classes, M = the model's modalities.

    logits: (B, C); probs: (B, C) softmax of logits.
    modality_weights: (B, M) attention weight of each modality (0 when absent), None for ``concat``.
    token_weights: {modality: (B, T_m)} weights over that modality's (pooled) tokens, sum 1 when present.
    unimodal_logits: {modality: (B, C)} what each modality alone predicts (auxiliary heads).
    present: (B, M) bool, which modalities each row had.
    contributions: (B, M) exact Shapley values (see ``FusionModel.shapley``), when asked for.
    subset_probs: {modalities kept: (B, C)} the fused prediction with only those modalities (the
        Shapley coalitions, computed alongside contributions; a row lacking one of them is meaningless).
    """

    logits: torch.Tensor
    probs: torch.Tensor
    present: torch.Tensor
    modality_weights: torch.Tensor | None = None
    token_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    unimodal_logits: dict[str, torch.Tensor] = field(default_factory=dict)
    contributions: torch.Tensor | None = None
    subset_probs: dict[tuple[str, ...], torch.Tensor] = field(default_factory=dict)


class FusionModel(nn.Module, PyTorchModelHubMixin):
    """Projection per modality -> a fusion strategy -> logits, plus auxiliary unimodal heads.

    config keys: labels, strategy, strategy_config (its hyper-parameters), d_model, dropout,
    encoders {modality: spec}, encoder_dims {modality: D_m}, audio_pool (frames averaged per audio
    token), image_positions (cells of a fixed image grid, each with its own projection; 0 = none), class_prior
    (training label frequencies, for Shapley's empty coalition), and optionally text_aliases {word the text
    was written with in training: [other ways to write it]}, which the text decoder maps to that word (the
    digits task's; see ``decode_options``).
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = config = validate_config(config)
        self.labels: list[str] = config["labels"]
        self.modalities: tuple[str, ...] = tuple(m for m in registry.names() if m in config["encoder_dims"])
        d_model, num_classes = config["d_model"], len(self.labels)
        positions = {m: config.get("image_positions", 0) if registry.modality(m).positional else 0
                     for m in self.modalities}
        self.projections = nn.ModuleDict({m: ModalityProjection(config["encoder_dims"][m], d_model, positions[m])
                                          for m in self.modalities})
        strategy = STRATEGIES[config["strategy"]]
        self.strategy = strategy(self.modalities, d_model, num_classes, config["dropout"],
                                 strategy.Config.from_dict(config["strategy_config"]))
        # As TorchMultimodal composes encoders, a fusion module and a head: the strategy fuses, the head
        # classifies (decision-level strategies classify per modality themselves).
        self.head = None if getattr(strategy, "decides", False) else classifier(d_model, num_classes,
                                                                                 config["dropout"])
        # attention, cross and late have per-modality classifiers of their own (they feed the agreement term).
        own_heads = getattr(self.strategy, "has_unimodal_classifiers", False)
        self.unimodal_heads = nn.ModuleDict({} if own_heads else {
            m: classifier(d_model, num_classes, config["dropout"]) for m in self.modalities})
        self.register_buffer("log_prior", torch.tensor(config["class_prior"], dtype=torch.float32).log(),
                             persistent=False)
        self.register_buffer("temperature", torch.tensor(1.0), persistent=False)
        self.set_calibration(config.get("calibration", {}))
        # {modality: {encoder parameter name: tensor}}: the fine-tuned encoder blocks config["finetuned"] names,
        # applied to a copy of the encoder by ``fusion.load_model`` (``fusion.finetune.apply_overlay``).
        self.finetuned_state: dict[str, dict[str, torch.Tensor]] = {}

    def set_calibration(self, calibration: dict) -> None:
        """Use ``calibration`` (``fusion.train.calibrate``'s: temperature, abstention thresholds), kept in the
        config; {} is none (temperature 1, never abstains)."""
        check_calibration(calibration, self.config["encoders"])
        self.temperature.fill_(float(calibration.get("temperature", 1.0)))
        if calibration:
            self.config["calibration"] = calibration
        else:
            self.config.pop("calibration", None)

    def abstain_below(self, given) -> float | None:
        """The calibrated confidence below which this model abstains when ``given`` these modalities (in
        the model's order), or None: a model calibrated without negatives never abstains."""
        return self.config.get("calibration", {}).get("abstain_below", {}).get("+".join(given))

    def shows_evidence(self, modality: str, prob: float) -> bool:
        """Whether ``modality``'s own top probability ``prob`` shows a class (True without its threshold)."""
        below = self.config.get("calibration", {}).get("unimodal_abstain_below", {}).get(modality)
        return below is None or prob >= below

    def abstains(self, given, confidence: float, evidence: dict[str, bool]) -> bool:
        """Whether this model answers "none of the classes" when ``given`` these modalities (model order)
        with fused top probability ``confidence`` and ``evidence`` {modality: it alone shows a class}: below
        the subset's threshold, or no input shows a class (an answer would rest on nothing). Never for a
        model calibrated without negatives."""
        below = self.abstain_below(given)
        return below is not None and (confidence < below or not any(evidence[m] for m in given))

    def abstained(self, out: FusionOutput) -> torch.Tensor:
        """``abstains`` for every row of a forward pass's output, each input's evidence from its own
        prediction -> (B,) bool."""
        confidence = out.probs.max(-1).values.tolist()
        alone = {m: out.unimodal_logits[m].softmax(-1).max(-1).values.tolist() for m in self.modalities}
        return torch.tensor([self.abstains([m for m, g in zip(self.modalities, given) if g], confidence[b],
                                           {m: self.shows_evidence(m, alone[m][b]) for m in self.modalities})
                             for b, given in enumerate(out.present.tolist())], dtype=torch.bool)

    @property
    def strategy_name(self) -> str:
        return self.config["strategy"]

    def project(self, tokens: dict[str, Tokens]) -> dict[str, ModalityTokens]:
        """Encoder tokens of the given modalities -> projected tokens of every model modality.

        A modality missing from ``tokens`` (or a row whose mask is all False) is absent.
        """
        given = [t for m, t in tokens.items() if m in self.modalities and t is not None]
        if not given:
            raise ValueError(f"No modality given: pass at least one of {list(self.modalities)}.")
        batch, device = given[0].values.shape[0], given[0].values.device
        projected = {}
        for m in self.modalities:
            t = tokens.get(m)
            if t is None:
                values = torch.zeros(batch, 1, self.config["encoder_dims"][m], device=device)
                mask = torch.zeros(batch, 1, dtype=torch.bool, device=device)
            else:
                values, mask = t.values.float(), t.mask
                if registry.modality(m).pool_frames:
                    values, mask = pool_frames(values, mask, self.config["audio_pool"])
            projected[m] = self.projections[m](values, mask)
        if not torch.stack([p.present for p in projected.values()], 1).any(1).all():
            raise ValueError("Every row needs at least one modality; got a row with none.")
        return projected

    def forward(self, tokens: dict[str, Tokens], contributions: bool = False) -> FusionOutput:
        projected = self.project(tokens)
        out = self.strategy(projected)
        out.logits = self.classify(out)
        unimodal = out.unimodal_logits or {m: self.unimodal_heads[m](masked_mean(p.values, p.mask))
                                           for m, p in projected.items()}
        result = FusionOutput(
            logits=out.logits, probs=out.logits.softmax(-1),
            present=torch.stack([projected[m].present for m in self.modalities], 1),
            modality_weights=out.modality_weights, token_weights=out.token_weights or {}, unimodal_logits=unimodal,
        )
        if contributions:
            result.contributions, result.subset_probs = self.shapley(projected, result.logits.argmax(-1))
        return result

    def classify(self, out) -> torch.Tensor:
        """A ``StrategyOutput`` -> logits (B, C): the head on the fused features, or the strategy's own,
        divided by the calibrated temperature (1 in training)."""
        return (out.logits if self.head is None else self.head(out.features)) / self.temperature

    @torch.no_grad()
    def shapley(self, projected: dict[str, ModalityTokens], target: torch.Tensor):
        """Exact Shapley value of each modality for log p(target) (B,) -> (B, M), and the coalitions'
        predictions {modalities kept: (B, C) probs}.

        Value function: v(S) = log p(target | only the modalities in S), computed by masking the
        already-computed tokens (encoders are not re-run; all non-empty coalitions go through the
        strategy in one batch); v(∅) = log prior(target), the training label frequency. The players of
        a row are its present modalities: absent ones get 0, and Σ_m φ_m = v(all present) - v(∅).
        """
        batch, num = target.shape[0], len(self.modalities)
        present = torch.stack([projected[m].present for m in self.modalities], 1)  # (B, M)
        coalitions = [c for c in itertools.product([False, True], repeat=num) if any(c)]
        keep = torch.tensor(coalitions, device=target.device)  # (K, M)
        # Row r of coalition k keeps modality m iff coalition k has m and row r has m.
        stacked = {}
        for i, m in enumerate(self.modalities):
            p = projected[m]
            row_keep = (keep[:, i][:, None] & p.present[None, :]).reshape(-1)  # (K*B,)
            mask = p.mask.repeat(len(coalitions), 1) & row_keep[:, None]
            stacked[m] = ModalityTokens(p.values.repeat(len(coalitions), 1, 1), mask, mask.any(1))
        # A coalition disjoint from a row's modalities leaves that row empty; strategies return finite
        # logits for it and its value is never read.
        log_probs = torch.log_softmax(self.classify(self.strategy(stacked)), -1).view(len(coalitions), batch, -1)
        values = {c: log_probs[k].gather(1, target[:, None]).squeeze(1) for k, c in enumerate(coalitions)}
        values[(False,) * num] = self.log_prior[target]
        subset_probs = {tuple(m for m, kept in zip(self.modalities, c) if kept): log_probs[k].exp()
                        for k, c in enumerate(coalitions)}

        phi = torch.zeros(batch, num, device=target.device)
        for row in range(batch):
            players = [i for i in range(num) if present[row, i]]
            n = len(players)
            for i in players:
                others = [j for j in players if j != i]
                for size in range(len(others) + 1):
                    weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                    for subset in itertools.combinations(others, size):
                        without = tuple(j in subset for j in range(num))
                        with_i = tuple(j in subset or j == i for j in range(num))
                        phi[row, i] += weight * (values[with_i][row] - values[without][row])
        return phi, subset_probs

    # --- checkpoints -------------------------------------------------------------------------------

    def _save_pretrained(self, save_directory: Path) -> None:
        """The mixin's saving hook (``save_pretrained`` adds the model card): the config with its format,
        the fusion weights, and each fine-tuned encoder's blocks."""
        config = {**self.config, "format_version": FORMAT_VERSION, "weights": WEIGHTS_NAME}
        (save_directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, save_directory / WEIGHTS_NAME, metadata={"format": "pt"})
        for modality, entry in self.config.get("finetuned", {}).items():
            overlay = {k: v.detach().cpu().contiguous() for k, v in self.finetuned_state[modality].items()}
            save_file(overlay, save_directory / entry["weights"],
                      metadata={"format": "pt", "blocks": str(entry["blocks"])})

    def generate_model_card(self, repo_id: str | None = None, reports: list[dict] = ()):
        """The mixin's card hook: ``fusion.hub.model_card`` (``ModelCardData``, ``model-index`` from ``reports``,
        ``evaluate``'s metrics)."""
        from .hub import model_card

        return model_card(self.config, repo_id, reports, self._hub_mixin_info.model_card_data.tags)

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool | None = None,
                    commit_message: str = "Upload a Fusion Lens model", reports: list[dict] = ()) -> str:
        """As the mixin's: ``save_pretrained`` into a temporary folder (its card naming ``repo_id``), create the
        repository and upload the folder -> the repository's URL; the Hub's refusals become a ``HubError``.

        token: else ``HF_TOKEN`` or ``hf auth login``, as huggingface_hub finds it. reports: ``evaluate``
        metrics for the card's ``model-index`` (``fusion.hub.read_reports``).
        """
        from .hub import upload

        with tempfile.TemporaryDirectory(prefix="fusion-push-") as tmp:
            self.save_pretrained(tmp, model_card_kwargs={"repo_id": repo_id, "reports": reports})
            return upload(Path(tmp), repo_id, "model", token, private, commit_message)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, device=None, revision: str | None = None,
                        token: str | None = None, cache_dir=None, force_download: bool = False,
                        local_files_only: bool = False) -> FusionModel:
        """Load a model folder, a hub repository "user/name" (at ``revision``; downloaded unless
        ``HF_HUB_OFFLINE`` is on, as huggingface_hub does) or a zip holding a model (a Teach project's download:
        its ``model/``). JSON + safetensors only; pickles and paths leaving the folder are refused.

        token, cache_dir, force_download, local_files_only: huggingface_hub's, for a repository.
        """
        name = pretrained_model_name_or_path
        if Path(name).suffix.lower() == ".zip" and Path(name).is_file():
            return cls.from_zip(name, device)
        return cls._from_pretrained(model_id=str(name), revision=revision, cache_dir=cache_dir,
                                    force_download=force_download, local_files_only=local_files_only, token=token,
                                    map_location=device or "cpu")

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir, force_download: bool,
                         local_files_only: bool, token, map_location="cpu") -> FusionModel:
        """The mixin's loading hook: the repository's snapshot (or the folder ``model_id``), its config read
        and bounded before anything is built."""
        from .hub import download_model, is_repo_id

        folder = Path(model_id)
        if is_repo_id(model_id):
            folder = download_model(model_id, revision, cache_dir=cache_dir, force_download=force_download,
                                    local_files_only=local_files_only, token=token)
        return cls.load_folder(folder, map_location)

    @classmethod
    def load_folder(cls, folder: Path, device="cpu") -> FusionModel:
        """A model folder on this machine -> the model on ``device``, every file checked first."""
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            pickles = [p.name for p in folder.glob("*") if p.suffix in PICKLE_SUFFIXES] if folder.is_dir() else []
            hint = f" (found {pickles}: pickled checkpoints are refused)" if pickles else ""
            raise CheckpointError(f"{folder} is not a model folder: no {CONFIG_NAME}{hint}.")
        try:
            config = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{config_path} is not valid JSON: {error}") from None
        except RecursionError:
            raise CheckpointError(f"{config_path} is nested too deeply to be a model config.") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"{config_path} must hold a JSON object.")
        weights = resolve_inside(folder, config.get("weights", WEIGHTS_NAME), "weights")
        if weights.suffix != ".safetensors":
            raise CheckpointError(f"config field 'weights' must name a .safetensors file, got {weights.name!r}.")
        if not weights.is_file():
            raise CheckpointError(f"config field 'weights': {weights} does not exist.")
        try:
            with torch.device("meta"):  # shapes only: the size is known before any memory is allocated
                parameters = sum(p.numel() for p in cls(config).parameters())
            if parameters > MAX_PARAMETERS:
                raise CheckpointError(f"config fields 'd_model' / 'strategy_config' / 'labels' / 'encoder_dims' ask "
                                      f"for {parameters:,} weights; at most {MAX_PARAMETERS:,} are loaded.")
            model = cls(config)
        except CheckpointError:
            raise
        except (ValueError, TypeError, AssertionError, RuntimeError) as error:  # a strategy refusing its options
            message = f"config fields 'strategy_config' / 'd_model' do not build a model: {error}"
            raise CheckpointError(message) from None
        try:
            state = load_file(weights)
        except Exception as error:  # safetensors raises its own error types for truncated/corrupt files
            raise CheckpointError(f"{weights} is not a readable safetensors file: {error}") from None
        state = upgrade_state(state)
        expected = model.state_dict()
        for name, tensor in state.items():
            if not tensor.is_floating_point():
                raise CheckpointError(f"{weights.name}: {name} holds {tensor.dtype} values; weights must be floats.")
            if not torch.isfinite(tensor).all():
                raise CheckpointError(f"{weights.name}: {name} holds NaN or infinite values.")
            if name in expected and expected[name].shape != tensor.shape:
                raise CheckpointError(f"{misfit(state, config, name, tensor, expected[name])}: {name} has shape "
                                      f"{tuple(tensor.shape)} in {weights.name}, the config implies "
                                      f"{tuple(expected[name].shape)}.")
        missing, unexpected = set(expected) - set(state), set(state) - set(expected)
        if missing or unexpected:
            raise CheckpointError(f"{weights.name} does not fit config field 'strategy' ({config['strategy']!r}): "
                                  f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}.")
        model.load_state_dict(state)
        model.finetuned_state = read_overlays(folder, config)
        return model.eval().to(device)

    @classmethod
    def from_zip(cls, path: str | Path, device=None) -> FusionModel:
        """The model in a zip: its ``model/`` folder, or a model folder zipped at the top level."""
        from .data.manifest import extract_archive

        with tempfile.TemporaryDirectory(prefix="fusion-model-zip-") as unpacked:
            folder = extract_archive(path, unpacked)
            if not (folder / "model" / CONFIG_NAME).is_file() and not (folder / CONFIG_NAME).is_file():
                raise CheckpointError(f"{Path(path).name} holds no model: train one first (a project zip "
                                      "gets its model/ folder once trained).")
            return cls.from_pretrained(folder / "model" if (folder / "model").is_dir() else folder, device=device)


def misfit(state: dict, config: dict, name: str, tensor: torch.Tensor, wanted: torch.Tensor) -> str:
    """Which config field the weights contradict, with the value they were trained with; ``name``, a tensor of
    the wrong shape, decides only when the projections (whose shapes say d_model and each encoder's width)
    agree with the config."""
    for modality, width in config["encoder_dims"].items():
        norm = state.get(f"projections.{modality}.norm.weight")  # LayerNorm over the encoder's output
        if norm is not None and norm.dim() == 1 and norm.shape[0] != width:
            return (f"config field 'encoder_dims.{modality}' is {width}, but the weights were trained on "
                    f"{modality} features of width {norm.shape[0]}")
    for modality in config["encoder_dims"]:
        embedding = state.get(f"projections.{modality}.embedding")  # one vector of the fusion width
        if embedding is not None and embedding.dim() == 1 and embedding.shape[0] != config["d_model"]:
            return f"config field 'd_model' is {config['d_model']}, but the weights have width {embedding.shape[0]}"
    classes = len(config["labels"])
    if wanted.dim() > 0 and wanted.shape[0] == classes and tensor.dim() > 0 and tensor.shape[0] != classes:
        return f"config field 'labels' names {classes} classes, but the weights score {tensor.shape[0]}"
    return "config field 'strategy_config' does not match the weights"


def read_overlays(folder: Path, config: dict) -> dict[str, dict[str, torch.Tensor]]:
    """The fine-tuned blocks the config's ``finetuned`` field names: files inside the folder, safetensors,
    float and finite (their names and shapes are checked against the encoder when it is loaded)."""
    from .finetune import check_tensors

    overlays = {}
    for modality, entry in config.get("finetuned", {}).items():
        field_name = f"finetuned.{modality}.weights"
        path = resolve_inside(folder, entry["weights"], field_name)
        if path.suffix != ".safetensors" or path.name == WEIGHTS_NAME:
            raise CheckpointError(f"config field {field_name!r} must name a .safetensors file of its own, "
                                  f"got {path.name!r}.")
        if not path.is_file():
            raise CheckpointError(f"config field {field_name!r}: {path.name} does not exist in the model folder.")
        try:
            overlays[modality] = load_file(path)
        except Exception as error:  # safetensors raises its own error types for truncated/corrupt files
            raise CheckpointError(f"{path.name} (config field {field_name!r}) is not a readable safetensors "
                                  f"file: {str(error).splitlines()[0] if str(error) else type(error).__name__}") \
                from None
        check_tensors(overlays[modality], path.name)
    return overlays


def upgrade_state(state: dict) -> dict:
    """Checkpoints from before heads were injected keep the head inside the strategy: rename its keys."""
    return {("head." + k[len("strategy.head."):] if k.startswith("strategy.head.") else k): v
            for k, v in state.items()}


def resolve_inside(folder: Path, name, field_name: str) -> Path:
    """A file named by the config must stay inside the model folder."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"config field {field_name!r} must be a file name.")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise CheckpointError(f"config field {field_name!r} points outside the model folder: {name!r}.")
    return path


def default_config(labels: list[str], strategy: str = "attention", encoders: dict | None = None,
                   encoder_dims: dict | None = None, class_prior: list[float] | None = None, **overrides) -> dict:
    """A complete config with the defaults the shipped models use."""
    encoders = {m: normalize_spec(s) for m, s in (encoders or DEFAULT_SPECS).items() if s is not None}
    dims = encoder_dims or {m: registry.modality(m).dim for m in encoders}
    registered = STRATEGIES[strategy]
    config = {
        "format_version": FORMAT_VERSION, "labels": [str(label) for label in labels], "strategy": strategy,
        "strategy_config": asdict(registered.Config()), "d_model": 256, "dropout": 0.1, "encoders": encoders,
        "encoder_dims": {m: dims[m] for m in encoders}, "audio_pool": registered.audio_pool,
        "class_prior": class_prior or [1.0 / len(labels)] * len(labels),
    }
    config.update(overrides)
    return config


def decode_options(config: dict) -> dict:
    """What a model's task tells the decoders (``fusion.modalities.decode_inputs``): {modality: keyword arguments}.

    Only a config with ``text_aliases`` has any: the text decoder gets them with the labels (a text already
    naming a label keeps its aliases). Old configs, and taught tasks, have none.
    """
    aliases = config.get("text_aliases")
    return {"text": {"aliases": aliases, "labels": config["labels"]}} if aliases else {}


def is_int(value, low: int, high: int) -> bool:
    """A JSON whole number in [low, high] (booleans are not numbers here)."""
    return type(value) is int and low <= value <= high


def need(condition, field_name: str, message: str) -> None:
    """A config check: a CheckpointError naming the field unless ``condition`` holds."""
    if not condition:
        raise CheckpointError(f"config field {field_name!r}: {message}")


def check_calibration(calibration, encoders: dict) -> None:
    """A config's ``calibration`` field (``fusion.train.calibrate``'s), for a model with ``encoders``."""
    need(isinstance(calibration, dict), "calibration", "must be an object")
    temperature, below = calibration.get("temperature", 1.0), calibration.get("abstain_below")
    alone = calibration.get("unimodal_abstain_below", {})
    need(type(temperature) in (int, float) and 0.01 <= temperature <= 100, "calibration.temperature",
         "must be a number in 0.01..100")
    subsets = {"+".join(s) for s in registry.subsets([m for m in registry.names() if m in encoders])}
    need(below is None or (isinstance(below, dict) and set(below) <= subsets
                           and all(type(v) in (int, float) and 0 <= v <= 1 for v in below.values())),
         "calibration.abstain_below", "must map subsets of the model's modalities (\"image+text\") to probabilities")
    need(isinstance(alone, dict) and set(alone) <= set(encoders)
         and all(type(v) in (int, float) and 0 <= v <= 1 for v in alone.values()),
         "calibration.unimodal_abstain_below", "must map the model's modalities to probabilities")


def validate_config(config: dict) -> dict:
    """Check a config's fields, with bounds that keep a model buildable in memory; every error names the field."""
    need(config.get("format_version") == FORMAT_VERSION, "format_version",
         f"expected {FORMAT_VERSION}, got {config.get('format_version')!r}")
    known = {"format_version", "weights", "labels", "strategy", "strategy_config", "d_model", "dropout", "encoders",
             "encoder_dims", "audio_pool", "image_positions", "class_prior", "text_aliases", "class_noun",
             "calibration", "training", "finetuned"}
    need(set(config) <= known, "/".join(sorted(set(config) - known)) or "?", "unknown field")
    labels = config.get("labels")
    need(isinstance(labels, list) and 2 <= len(labels) <= MAX_LABELS and all(isinstance(x, str) for x in labels)
         and len(set(labels)) == len(labels), "labels", f"must be a list of 2 to {MAX_LABELS} distinct strings")
    need(config.get("strategy") in STRATEGIES, "strategy",
         f"unknown strategy {config.get('strategy')!r}; choose one of {sorted(STRATEGIES)}")
    options = STRATEGIES[config["strategy"]].Config.from_dict(config.get("strategy_config"))
    need(is_int(config.get("d_model"), 8, MAX_WIDTH), "d_model", f"must be a whole number in 8..{MAX_WIDTH}")
    need(config["d_model"] % getattr(options, "heads", 1) == 0, "d_model", "must be divisible by strategy_config.heads")
    need(type(config.get("dropout")) in (int, float) and 0 <= config["dropout"] < 1, "dropout", "in [0, 1)")
    need(is_int(config.get("audio_pool"), 1, 1500), "audio_pool", "a whole number in 1..1500")
    need(is_int(config.get("image_positions", 0), 0, 4096), "image_positions", "a whole number in 0..4096")
    encoders, dims = config.get("encoders"), config.get("encoder_dims")
    need(isinstance(encoders, dict) and encoders and set(encoders) <= set(registry.names()), "encoders",
         f"must map some of the registered modalities {registry.names()} to encoder specs")
    need(isinstance(dims, dict) and set(dims) == set(encoders)
         and all(is_int(v, 1, 4 * MAX_WIDTH) for v in dims.values()), "encoder_dims",
         f"must give a width in 1..{4 * MAX_WIDTH} for each encoder")
    prior = config.get("class_prior")
    need(isinstance(prior, list) and len(prior) == len(labels)
         and all(type(p) in (int, float) and math.isfinite(p) and p > 0 for p in prior),
         "class_prior", "must give one positive, finite frequency per label")
    aliases = config.get("text_aliases", {})
    lists = isinstance(aliases, dict) and all(isinstance(others, list) for others in aliases.values())
    others = [word for words in aliases.values() for word in words] if lists else []
    need(lists and len(others) <= MAX_ALIASES
         and all(isinstance(w, str) and 0 < len(w.strip()) <= MAX_ALIAS_CHARS for w in [*aliases, *others]),
         "text_aliases", f"must map words to lists of other words (at most {MAX_ALIASES}, each 1 to "
         f"{MAX_ALIAS_CHARS} characters)")
    noun = config.get("class_noun", "class")
    need(isinstance(noun, str) and 0 < len(noun.strip()) <= MAX_ALIAS_CHARS, "class_noun",
         f"must be a word of 1 to {MAX_ALIAS_CHARS} characters")
    check_calibration(config.get("calibration", {}), encoders)
    from .finetune import check_entries

    check_entries(config)
    return config
