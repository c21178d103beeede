"""Fusion models on the Hugging Face Hub, by huggingface_hub's contract.

``FusionModel`` is a ``PyTorchModelHubMixin``: ``save_pretrained`` writes ``config.json``, ``model.safetensors``
and a model card, ``from_pretrained("user/repo")`` downloads a repository like every Hub library does (from the
local hub cache alone when ``HF_HUB_OFFLINE`` is on) and ``push_to_hub`` uploads one. This module holds what
the model delegates: the snapshot download, the model card (``ModelCardData`` with a ``model-index`` made
from ``evaluate`` reports) and the upload, whose refusals become one ``HubError`` sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from . import modalities as registry
from .errors import CheckpointError, HubError, OptionError

MODEL_FILES = ["config.json", "*.safetensors", "README.md"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
TAGS = ["fusion-lens", "multimodal", "multimodal-fusion"]


def is_repo_id(name: str | Path) -> bool:
    """"user/name" that is not a folder here: a hub repository id."""
    return isinstance(name, str) and bool(_REPO_ID.match(name)) and not Path(name).exists()


def download_model(repo_id: str, revision: str | None = None, **hub_options) -> Path:
    """A hub model repository -> its snapshot folder (``snapshot_download`` of the model's files).

    hub_options: ``snapshot_download``'s own (token, cache_dir, force_download, local_files_only).
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES, **hub_options))
    except LocalEntryNotFoundError:
        why = ("offline mode is on (HF_HUB_OFFLINE)" if constants.is_offline_mode()
               else "downloads are off (local_files_only)" if hub_options.get("local_files_only")
               else "the Hub could not be reached")
        raise CheckpointError(f"Model {repo_id!r} is not in the local Hugging Face cache and {why}.") from None
    except (HfHubHTTPError, OSError) as error:
        raise CheckpointError(f"Model {repo_id!r} could not be downloaded: {str(error).splitlines()[0]}") from None


def read_reports(folders: Iterable[str | Path]) -> list[dict]:
    """The ``metrics.json`` of each ``evaluate`` report folder (for a model card's ``model-index``)."""
    reports = []
    for folder in folders:
        path = Path(folder) / "metrics.json"
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            raise OptionError(f"{folder} is no report folder: it has no readable metrics.json (write one "
                                  "with `python -m fusion evaluate`).") from None
    return reports


def reports_beside(model_folder: str | Path) -> list[dict]:
    """The ``evaluate`` reports in ``reports/`` beside ``model_folder`` that were made on it (their metrics name
    it), as the shipped models keep theirs."""
    folder = Path(model_folder)
    reports = [json.loads(path.read_text()) for path in sorted((folder.parent / "reports").glob("*/metrics.json"))]
    return [r for r in reports if Path(str(r.get("model", ""))).name == folder.name]


def pipeline_tag(modalities: Iterable[str]) -> str | None:
    """The Hub task of a model on ``modalities``: its modality's classification task when it has one input;
    None for several, as no Hub task is multimodal classification (the card's tags name each input's)."""
    tasks = [registry.modality(m).hub_task for m in modalities]
    return tasks[0] if len(tasks) == 1 else None


def eval_results(config: dict, reports: list[dict]):
    """``EvalResult``s for the card's ``model-index``: the validation score training recorded, and the
    accuracy of every subset of the inputs in each ``evaluate`` report (its data: a test split, a check set)."""
    from huggingface_hub import EvalResult

    task = pipeline_tag(config["encoders"]) or "multimodal-classification"
    best = config.get("training", {}).get("best_val_mean_subset_acc")
    results = [] if best is None else [EvalResult(
        task_type=task, dataset_type="validation", dataset_name="validation split", dataset_split="validation",
        metric_type="accuracy", metric_name="mean accuracy over every subset of the inputs", metric_value=best)]
    for report in reports:
        data = Path(report["data"]).stem if "data" in report else "evaluation"
        for subset, scores in report.get("subsets", {}).items():
            if scores.get("accuracy") is not None:
                results.append(EvalResult(
                    task_type=task, dataset_type=data, dataset_name=f"{data} ({report['rows']:,} rows)",
                    dataset_split=data, metric_type="accuracy", metric_name=f"accuracy, {subset.replace('+', ' + ')}",
                    metric_value=round(scores["accuracy"], 4)))
    return results


def model_card(config: dict, repo_id: str | None = None, reports: list[dict] = (), mixin_tags: list[str] = ()):
    """The model card (``huggingface_hub.ModelCard``) of a model with ``config``, for ``repo_id``; mixin_tags:
    the ones ``PyTorchModelHubMixin`` gives every card it makes.

    Its metadata is a ``ModelCardData``: licence, tags, the encoders as ``base_model`` with
    ``base_model_relation: adapter`` (the repository holds weights added to those frozen models, not a merge
    of them), ``pipeline_tag`` where one fits, and a ``model-index`` from ``eval_results``.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from .encoders.weights import shipped_weights

    encoders, known = config["encoders"], shipped_weights()
    bases = [hub.repo_id for spec in encoders.values() if (hub := known.get(spec["name"], ([], None))[1])]
    bases += [spec["name"][3:] for spec in encoders.values() if spec["name"].startswith("hf:")
              and is_repo_id(spec["name"][3:])]
    name = repo_id.split("/")[-1] if repo_id else f"fusion-lens-{config['strategy']}"
    results = eval_results(config, list(reports))
    tasks = [task for m in encoders if (task := registry.modality(m).hub_task)]
    tags = [*TAGS, f"{config['strategy']}-fusion", *encoders, *tasks, *mixin_tags]
    data = ModelCardData(
        license="mit", tags=tags, pipeline_tag=pipeline_tag(encoders), base_model=bases or None,
        base_model_relation="adapter" if bases else None, model_name=name if results else None,
        eval_results=results or None, metrics=["accuracy"] if results else None)
    tuned = config.get("finetuned", {})
    snippet_id = repo_id or "path/to/this/model"
    body = [f"# {name}: {config['strategy']} fusion of {', '.join(encoders)}", "",
            f"A Fusion Lens model. Classes: {', '.join(map(str, config['labels']))}.", "",
            f"Encoders ({'pretrained' if tuned else 'frozen, pretrained'}): "
            + ", ".join(f"{m} `{spec['name']}`" for m, spec in encoders.items())
            + f". Only the fusion model {'and the fine-tuned blocks are' if tuned else 'is'} in this repository "
            "(hence `base_model_relation: adapter`); the encoders load from their own.", "",
            *[f"Fine-tuned: the last {e['blocks']} block{'s' if e['blocks'] > 1 else ''} of the {m} encoder, in "
              f"`{e['weights']}` (applied over its pretrained weights when loading).\n" for m, e in tuned.items()],
            "```python", "import fusion", "", f'model = fusion.load_model("{snippet_id}")',
            f"print(fusion.predict(model, {example_input(encoders)}).label)", "```"]
    if results:
        body += ["", "| data | metric | value |", "|---|---|---|",
                 *(f"| {r.dataset_name} | {r.metric_name} | {r.metric_value:.4f} |" for r in results)]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n")


def example_input(modalities) -> str:
    """A keyword argument of ``fusion.predict`` for the card's snippet: a text, else a file of the first input."""
    if "text" in modalities:
        return 'text="..."'
    first = next(iter(modalities))
    return f'{first}="path/to/{first}"' if registry.modality(first).files else f'{first}=...'


def upload(folder: Path, repo_id: str, repo_type: str, token: str | None, private: bool | None, message: str,
           **create_options) -> str:
    """Create (or reuse) the repository and upload ``folder`` to it -> its URL; the Hub's refusals
    (HTTP errors, no network) become a ``HubError`` with its reason."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not is_repo_id(repo_id):
        raise HubError(f"{repo_id!r} is not a repository id: give it as user/name.")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **create_options)
        api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=str(folder), commit_message=message)
    except (HfHubHTTPError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise HubError(f"The Hugging Face Hub did not take the upload to {repo_id}: {reason}") from None
    return str(url)
