"""The package as a user installs it: a wheel built from the checkout, installed into a fresh venv (with the
heavy dependencies from this environment, see ``tests/envs.py``), run from a folder outside the checkout.
Works on the system interpreter and inside a virtualenv (the second test makes sure of the latter)."""

import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from envs import venv_seeing_this_python

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "requirements.txt", "requirements-dev.txt", "fusion", "assets")


def build_wheel(source: Path, dist: Path) -> Path:
    """``pip wheel`` with this environment's setuptools when it meets pyproject's build requirement (no
    network), else with build isolation (pip fetches it: a Python 3.11 venv comes with setuptools 65)."""
    needed = int(re.search(r'"setuptools>=(\d+)', (ROOT / "pyproject.toml").read_text()).group(1))
    try:
        have = version("setuptools")
    except Exception:  # none here (a Python 3.12 venv has none)
        have = "0"
    isolated = int(have.split(".")[0]) < needed
    args = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *([] if isolated else ["--no-build-isolation"]),
            "-w", str(dist), str(source)]
    built = subprocess.run(args, capture_output=True, text=True)
    how = (f"setuptools {have} here is older than pyproject's setuptools>={needed}, so pip built with build "
           f"isolation; `pip install -r requirements-dev.txt` installs it here" if isolated else "")
    assert built.returncode == 0, f"building the wheel failed ({how or 'no build isolation'}):\n{built.stderr}"
    wheels = list(dist.glob("fusion_lens-*.whl"))
    assert len(wheels) == 1, f"pip wheel wrote {wheels} into {dist}"
    return wheels[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the built wheel (``--no-deps``) and seeing this environment's packages -> its bin."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheel = build_wheel(source, tmp / "dist")
    bin_dir = venv_seeing_this_python(tmp / "venv")
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"installing {wheel.name} into the venv failed:\n{done.stderr}"
    return bin_dir


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_installed_package_runs_outside_the_checkout(installed, tmp_path):
    where = run(installed, "python", "-c", "import fusion, fusion.pipeline as p; print(fusion.__file__, p.MODELS_DIR)",
                cwd=tmp_path)
    assert where.returncode == 0, f"the installed package does not import in {installed.parent}:\n{where.stderr}"
    package, models = where.stdout.split()
    assert "site-packages" in package and not package.startswith(str(ROOT)), where.stdout
    assert models.endswith("fusion/assets/models") and Path(models, "digits-attention", "model.safetensors").is_file()

    usage = run(installed, "fusion-lens", "--help", cwd=tmp_path)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: fusion-lens"), usage.stderr
    predicted = run(installed, "python", "-m", "fusion", "predict", "--text", "it's a seven", cwd=tmp_path)
    assert predicted.returncode == 0 and predicted.stdout.startswith("prediction: 7"), predicted.stderr


def test_a_venv_made_inside_a_venv_sees_that_venvs_packages(tmp_path):
    """The case above run from inside a virtualenv, in seconds: a module installed only into an outer venv is
    importable in the environment ``tests/envs.py`` makes from it, and so are this interpreter's packages;
    ``venv --system-site-packages`` from the outer venv would have neither the module nor torch."""
    outer = tmp_path / "outer"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(outer)], check=True)
    python = outer / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "only_in_the_outer_venv.py").write_text("WHERE = 'outer'\n")
    probe = "import importlib.util as u; print(u.find_spec('only_in_the_outer_venv') is not None, " \
            "u.find_spec('torch') is not None)"

    made = subprocess.run([str(python), str(ROOT / "tests" / "envs.py"), str(tmp_path / "inner"), "--without-pip"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    seen = run(Path(made.stdout.strip()), "python", "-c", probe, cwd=tmp_path)
    assert seen.stdout.split() == ["True", "True"], f"the inner venv misses packages:\n{seen.stdout}{seen.stderr}"

    subprocess.run([str(python), "-m", "venv", "--system-site-packages", "--without-pip", str(tmp_path / "plain")],
                   check=True)
    plain = run(tmp_path / "plain" / "bin", "python", "-c", probe, cwd=tmp_path)
    assert plain.stdout.split()[0] == "False"  # what the first test used to do, and why it failed in a venv
