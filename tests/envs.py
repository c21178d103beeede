"""A fresh virtualenv that also sees the packages of the interpreter running the tests (standard library
only, so that any Python can run it: ``tests/test_package.py`` runs it from a venv of its own).

``python -m venv --system-site-packages`` is not that: run from a virtualenv it inherits the *base*
interpreter's site-packages, not the virtualenv's, so whatever was installed into the virtualenv (torch,
gradio, ...) is missing. Here the new environment is an isolated venv whose ``outer.pth`` adds the running
interpreter's own site-packages (``site.getsitepackages()``, which inside a venv lists the venv's and, with
``--system-site-packages``, the base's too; and the user site when it is on) after its own, with their
``.pth`` files processed, so what is installed into the new venv comes first.
"""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path


def outer_site_dirs() -> list[str]:
    """The running interpreter's site-packages folders, in its order."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def venv_seeing_this_python(dest: Path, with_pip: bool = True) -> Path:
    """Create the venv ``dest`` (with pip unless ``with_pip`` is false) that also sees this interpreter's
    packages -> its bin folder."""
    args = [sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(dest)]
    made = subprocess.run(args, capture_output=True, text=True)
    assert made.returncode == 0, f"{' '.join(args)} failed:\n{made.stdout}{made.stderr}"
    bin_dir = dest / ("Scripts" if sys.platform == "win32" else "bin")
    python = bin_dir / ("python.exe" if sys.platform == "win32" else "python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # One `import` line: site runs it when the new venv starts (a plain folder line would skip their .pth files).
    Path(purelib, "outer.pth").write_text(f"import site; list(map(site.addsitedir, {outer_site_dirs()!r}))\n")
    return bin_dir


if __name__ == "__main__":  # python tests/envs.py DEST: what tests/test_package.py runs from a venv of its own
    print(venv_seeing_this_python(Path(sys.argv[1]), with_pip="--without-pip" not in sys.argv))
