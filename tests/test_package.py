"""The package as a user installs it: a wheel built from the checkout, installed into a fresh venv (with the
heavy dependencies from this environment), run from a folder outside the checkout."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "requirements.txt", "requirements-dev.txt", "fusion", "assets")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the built wheel (``--no-deps``); -> its bin folder."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("fusion_lens-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], check=True)
    bin_dir = tmp / "venv" / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    return bin_dir


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_installed_package_runs_outside_the_checkout(installed, tmp_path):
    where = run(installed, "python", "-c", "import fusion, fusion.pipeline as p; print(fusion.__file__, p.MODELS_DIR)",
                cwd=tmp_path)
    package, models = where.stdout.split()
    assert "site-packages" in package and not package.startswith(str(ROOT)), where.stdout
    assert models.endswith("fusion/assets/models") and Path(models, "digits-attention", "model.safetensors").is_file()

    usage = run(installed, "fusion-lens", "--help", cwd=tmp_path)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: fusion-lens"), usage.stderr
    predicted = run(installed, "python", "-m", "fusion", "predict", "--text", "it's a seven", cwd=tmp_path)
    assert predicted.returncode == 0 and predicted.stdout.startswith("prediction: 7"), predicted.stderr
