"""Where does audio-alone accuracy go? Per-voice accuracy on the digits data, for a model and for audio-only heads.

    python bench/audio_voices.py --data data/digits [--model assets/models/digits-cross] [--heads]

1. The model's audio-only prediction on the test split, by voice (``audio/<split>_<row>_<voice>.wav``), with
   each voice's most frequent confusions.
2. With ``--heads``: audio-only heads trained on the clean training clips alone, no fusion, built from the
   fusion's own layers (projection, then mean or attention pooling, then the classifier), 12 epochs,
   the epoch with the best validation accuracy kept. If they do no better than the fusion model on the
   test voices, the fusion training is not what holds audio back.

Features come from the feature cache beside the manifests (``.features``), as training makes them.
Measured on the default build (Whisper base, 4 layers): the shipped attention soup 0.973 on test (flite slt
0.953, the six espeak-ng voices 0.960-1.000; a single run before it 0.964, slt 0.940), cross 0.972 (slt
0.943); heads alone 0.975 with mean pooling
and 0.970 with attention (slt 0.943 / 0.940). With Whisper tiny.en: late 0.958 (slt 0.899), heads 0.968 / 0.962.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion.data.manifest import read_manifest  # noqa: E402
from fusion.encoders.base import masked_mean  # noqa: E402
from fusion.evaluate import run  # noqa: E402
from fusion.features import FeatureCache, collate  # noqa: E402
from fusion.pipeline import load_model  # noqa: E402
from fusion.strategies.layers import AttentionPool, ModalityProjection, classifier, pool_frames  # noqa: E402
from fusion.train import load_split, with_modalities  # noqa: E402


def voice_of(audio_path: str) -> str:
    return Path(audio_path).stem.split("_", 2)[2]


def by_voice(rows: list[dict], pred: np.ndarray, label: np.ndarray) -> None:
    """Print accuracy and the top confusions per voice; ``pred``/``label`` are class indices in row order."""
    groups = collections.defaultdict(list)
    for row, p, y in zip(rows, pred, label):
        groups[voice_of(row["audio"])].append((int(p), int(y)))
    print(f"  {'voice':<32}{'n':>5}{'acc':>8}   top confusions (said -> heard)")
    for voice, pairs in sorted(groups.items()):
        wrong = collections.Counter((y, p) for p, y in pairs if p != y).most_common(4)
        confusions = ", ".join(f"{y}->{p} x{n}" for (y, p), n in wrong)
        print(f"  {voice:<32}{len(pairs):>5}{np.mean([p == y for p, y in pairs]):>8.3f}   {confusions}")


class AudioHead(nn.Module):
    """Projection, pooling ("mean" or "attention") and classifier: (B, T, D) tokens -> (B, C) logits."""

    def __init__(self, dim: int, classes: int, pooling: str, d_model: int = 256):
        super().__init__()
        self.project = ModalityProjection(dim, d_model)
        self.pool = AttentionPool(d_model) if pooling == "attention" else None
        self.classify = classifier(d_model, classes, 0.1)

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        tokens = self.project(values, mask)
        pooled = self.pool(tokens)[0] if self.pool else masked_mean(tokens.values, tokens.mask)
        return self.classify(pooled)


def train_head(pooling: str, data: dict, classes: int, epochs: int = 12, batch: int = 64) -> np.ndarray:
    """Train on data["train"], keep the best epoch on data["val"]; returns its test predictions."""
    torch.manual_seed(0)
    (x, m, y), dim = data["train"], data["train"][0].shape[-1]
    head = AudioHead(dim, classes, pooling)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    steps = epochs * (len(y) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-3, total_steps=steps)

    @torch.no_grad()
    def predict(split: str) -> np.ndarray:
        head.eval()
        xs, ms, _ = data[split]
        out = torch.cat([head(xs[i:i + 500], ms[i:i + 500]).argmax(-1) for i in range(0, len(xs), 500)])
        head.train()
        return out.numpy()

    best_val, best_test = -1.0, None
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y) - batch + 1, batch):
            rows = order[start:start + batch]
            loss = F.cross_entropy(head(x[rows], m[rows]), y[rows], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        val = float(np.mean(predict("val") == data["val"][2].numpy()))
        if val > best_val:
            best_val, best_test = val, predict("test")
    return best_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder built by `python -m fusion data digits`")
    parser.add_argument("--model", default=None, help="a model folder (default: the shipped default)")
    parser.add_argument("--heads", action="store_true", help="also train audio-only heads on clean clips")
    args = parser.parse_args()
    loaded = load_model(args.model, "cpu")
    model, modalities = loaded.fusion, list(loaded.fusion.modalities)
    data = {}
    for split in ("train", "val", "test") if args.heads else ("test",):
        manifest = Path(args.data) / f"{split}.csv"
        rows = [row for row in read_manifest(manifest) if row["audio"]]
        cache = FeatureCache(manifest.resolve().parent / ".features", loaded.encoders)
        data[split] = (rows, load_split(cache, rows, loaded.labels, ["audio"], augment=False, name=split))

    rows, features = data["test"]
    result = run(model, with_modalities(features, ("audio",), modalities), list(range(len(rows))))
    accuracy = np.mean(result["pred"] == result["label"])
    print(f"{args.model or 'the default model'}: audio alone on test {accuracy:.3f}")
    by_voice(rows, result["pred"], result["label"])
    if not args.heads:
        return

    # The same tokens the fusion model reads: cached, padded in a batch, averaged over audio_pool frames.
    tensors = {}
    for split, (_, features) in data.items():
        tokens = collate(features.clean["audio"], model.config["encoder_dims"]["audio"])
        values, mask = pool_frames(tokens.values, tokens.mask, model.config["audio_pool"])
        tensors[split] = (values, mask, features.labels)
    for pooling in ("mean", "attention"):
        pred = train_head(pooling, tensors, len(loaded.labels))
        label = tensors["test"][2].numpy()
        print(f"audio-only head, {pooling} pooling, clean clips: test {np.mean(pred == label):.3f}")
        by_voice(data["test"][0], pred, label)


if __name__ == "__main__":
    main()
