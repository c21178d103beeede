"""Any transformers backbone as an encoder: the spec ``hf:<repo id or local folder>``.

This is how a practitioner brings a bigger backbone (ViT / CLIP-vision / ConvNeXt for images,
wav2vec2 / HuBERT / Whisper / AST for audio, BERT-like for text). Models load through the Auto*
classes, from a local folder or the Hub (the local hub cache only when ``HF_HUB_OFFLINE`` is on, which
transformers reads as huggingface_hub does). Remote code is never run (``trust_remote_code`` stays off).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel, AutoTokenizer

from .audio import load_audio
from .base import Encoder, Tokens, masked_mean, quiet_loading, resolve_device
from .image import to_rgb_array
from .text import MAX_TOKENS


def load_backbone(name: str) -> torch.nn.Module:
    with quiet_loading():
        model = AutoModel.from_pretrained(name)
    # Encoder-decoder speech models (Whisper) and dual encoders (CLIP) expose the part we need.
    if getattr(model.config, "is_encoder_decoder", False):
        model = model.get_encoder()
    elif hasattr(model, "vision_model"):
        model = model.vision_model
    return model


def hidden_width(config) -> int:
    for key in ("hidden_size", "d_model"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    sizes = getattr(config, "hidden_sizes", None)  # ConvNeXt
    if sizes:
        return sizes[-1]
    vision = getattr(config, "vision_config", None)
    if vision is not None:
        return hidden_width(vision)
    raise ValueError(f"Cannot tell the hidden width of {type(config).__name__}.")


def sequence_output(output) -> torch.Tensor:
    """last_hidden_state as (B, T, D); convolutional maps (B, D, H, W) are flattened."""
    hidden = output.last_hidden_state
    return hidden.flatten(2).transpose(1, 2) if hidden.ndim == 4 else hidden


class HFEncoder(Encoder):
    """Base for hf: encoders: loads the backbone once, eval mode, frozen, on ``device``."""

    def __init__(self, name: str, device=None):
        super().__init__()
        self.spec = f"hf:{name}"
        self.dim = hidden_width(AutoConfig.from_pretrained(name))
        self.model = load_backbone(name).eval().requires_grad_(False).to(resolve_device(device))

    def run(self, inputs: dict) -> torch.Tensor:
        inputs = {k: v.to(self.device) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        with torch.inference_mode(), self.autocast():
            return sequence_output(self.model(**inputs)).float()


class HFImageEncoder(HFEncoder):
    modality = "image"

    def __init__(self, name: str, device=None):
        super().__init__(name, device)
        self.processor = AutoImageProcessor.from_pretrained(name)

    def encode(self, batch: list) -> Tokens:
        values = self.run(self.processor(images=[to_rgb_array(item) for item in batch], return_tensors="pt"))
        # ViT-style models lead with a CLS token; the rest is a square patch grid.
        side = int(np.sqrt(values.shape[1]))
        if side * side != values.shape[1]:
            side = int(np.sqrt(values.shape[1] - 1))
            values = values[:, -side * side:]
        mask = torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)
        return Tokens(values, mask, values.mean(1), grid=(side, side))


class HFAudioEncoder(HFEncoder):
    modality = "audio"

    def __init__(self, name: str, device=None):
        super().__init__(name, device)
        self.extractor = AutoFeatureExtractor.from_pretrained(name)

    def encode(self, batch: list) -> Tokens:
        clips = [load_audio(item) for item in batch]
        inputs = self.extractor(clips, sampling_rate=16000, return_tensors="pt", padding=True)
        values = self.run(inputs)
        seconds = self.input_seconds(inputs) / values.shape[1]
        lengths = torch.tensor([min(values.shape[1], max(1, round(len(c) / 16000 / seconds))) for c in clips],
                               device=values.device)
        mask = torch.arange(values.shape[1], device=values.device)[None] < lengths[:, None]
        values = values * mask.unsqueeze(-1)
        return Tokens(values, mask, masked_mean(values, mask), seconds_per_token=seconds)

    def input_seconds(self, inputs) -> float:
        """Duration the (padded) model input covers: frames are spread evenly over it."""
        if "input_features" in inputs:  # Whisper-style log-mel, (B, mels, frames), padded to 30 s
            return inputs["input_features"].shape[-1] * self.extractor.hop_length / 16000
        if inputs["input_values"].ndim == 3:  # AST filterbanks (B, frames, mels), 10-ms shift
            return inputs["input_values"].shape[1] * 0.01
        return inputs["input_values"].shape[-1] / 16000  # raw waveform (wav2vec2, HuBERT)


class HFTextEncoder(HFEncoder):
    modality = "text"

    def __init__(self, name: str, device=None):
        super().__init__(name, device)
        self.tokenizer = AutoTokenizer.from_pretrained(name)

    def encode(self, batch: list[str]) -> Tokens:
        inputs = self.tokenizer([str(t) for t in batch], padding=True, truncation=True, max_length=MAX_TOKENS,
                                return_tensors="pt")
        values = self.run(inputs)
        mask = inputs["attention_mask"].bool().to(values.device)
        values = values * mask.unsqueeze(-1)
        strings = [self.tokenizer.convert_ids_to_tokens(ids[m].tolist())
                   for ids, m in zip(inputs["input_ids"], mask.cpu())]
        return Tokens(values, mask, masked_mean(values, mask), token_strings=strings)


HF_ENCODERS = {"image": HFImageEncoder, "audio": HFAudioEncoder, "text": HFTextEncoder}
