"""Fusion models on the Hugging Face Hub: ``FusionModel.from_pretrained("user/repo")`` and ``push_to_hub``.

A model repository holds what a model folder holds (``config.json``, ``model.safetensors``) and a
generated model card whose YAML front matter the Hub reads (license, tags,
library, base models, metrics). Reading uses the local hub cache unless downloads are allowed
(``fusion.encoders.hub.downloads_allowed``), so a config can never make the app fetch anything by itself.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .errors import CheckpointError, HubError

MODEL_FILES = ["config.json", "*.safetensors", "README.md"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_repo_id(name: str | Path) -> bool:
    """"user/name" that is not a folder here: a hub repository id."""
    return isinstance(name, str) and bool(_REPO_ID.match(name)) and not Path(name).exists()


def download_model(repo_id: str, revision: str | None = None) -> Path:
    """A hub model repository -> its snapshot folder (from the local cache unless downloads are allowed)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from .encoders.hub import downloads_allowed

    allowed = downloads_allowed()
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES,
                                      local_files_only=not allowed))
    except LocalEntryNotFoundError:
        hint = "" if allowed else " (set FUSION_ALLOW_DOWNLOAD=1 to download it)"
        raise CheckpointError(f"Model {repo_id!r} is not in the local Hugging Face cache{hint}.") from None
    except (HfHubHTTPError, OSError) as error:
        raise CheckpointError(f"Model {repo_id!r} could not be downloaded: {str(error).splitlines()[0]}") from None


def model_card(config: dict) -> str:
    """A README.md for a model repository: Hub YAML metadata, then what the model is and how to use it."""
    from .encoders.hub import shipped_weights

    encoders, known = config["encoders"], shipped_weights()
    bases = [hub.repo_id for spec in encoders.values() if (hub := known.get(spec["name"], ([], None))[1])]
    training, tuned = config.get("training", {}), config.get("finetuned", {})
    best = training.get("best_val_mean_subset_acc")
    lines = ["---", "license: mit", "library_name: fusion-lens", "tags:", "- multimodal", "- multimodal-fusion",
             f"- {config['strategy']}-fusion", *(f"- {m}" for m in encoders)]
    if bases:
        lines += ["base_model:", *(f"- {b}" for b in bases)]
    if best is not None:
        lines += ["metrics:", "- accuracy"]
    lines += ["---", "", f"# Fusion Lens model: {config['strategy']} fusion of {', '.join(encoders)}", "",
              f"Classes: {', '.join(map(str, config['labels']))}.", "",
              f"Encoders ({'pretrained' if tuned else 'frozen, pretrained'}): "
              + ", ".join(f"{m} `{spec['name']}`" for m, spec in encoders.items())
              + f". Only the fusion model {'and the fine-tuned blocks are' if tuned else 'is'} in this repository; "
              "the encoders load from their own.", "",
              *[f"Fine-tuned: the last {e['blocks']} block{'s' if e['blocks'] > 1 else ''} of the {m} encoder, in "
                f"`{e['weights']}` (applied over its pretrained weights when loading).\n" for m, e in tuned.items()],
              "```python", "import fusion", "", 'model = fusion.load_model("<this repo id>")',
              'print(fusion.predict(model, text="...").label)', "```"]
    if best is not None:
        lines += ["", f"Validation: mean accuracy over every subset of the inputs {best:.4f} "
                  f"({training.get('train_rows', '?')} training rows)."]
    return "\n".join(lines) + "\n"


def push_model(model, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Upload a ``FusionModel`` with a generated model card -> the repository's URL.

    The token comes from ``token``, else ``HF_TOKEN`` or ``hf auth login``, as huggingface_hub finds it.
    """
    with tempfile.TemporaryDirectory(prefix="fusion-push-") as tmp:
        folder = model.save_pretrained(tmp)
        (folder / "README.md").write_text(model_card(model.config))
        return upload(folder, repo_id, "model", token, private, "Upload a Fusion Lens model")


def upload(folder: Path, repo_id: str, repo_type: str, token: str | None, private: bool, message: str,
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
