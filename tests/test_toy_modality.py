"""A fourth modality added from outside the package: a short vector of numbers, defined and registered in
this file only, trained with ``fusion.train`` next to text on a tiny manifest and predicted with
``fusion.predict``, Shapley values and token weights included."""

import numpy as np
import pytest
import torch
from torch import nn

import fusion
from fusion.config import TrainConfig
from fusion.data.manifest import read_manifest, write_manifest
from fusion.encoders.base import Encoder, Tokens, masked_mean
from fusion.errors import InputError
from fusion.modalities import Modality, register_modality, unregister_modality
from fusion.train import train

MAX_NUMBERS = 64


def decode_vector(value) -> tuple[np.ndarray, list[str]]:
    """ "0.1 0.9 0.3" (a manifest cell or API string) or a list/array -> float32 (N,)."""
    try:
        numbers = np.asarray(value.split() if isinstance(value, str) else value, dtype=np.float32).ravel()
    except (TypeError, ValueError):
        raise InputError("A vector must be numbers separated by spaces.") from None
    if not 1 <= numbers.size <= MAX_NUMBERS or not np.isfinite(numbers).all():
        raise InputError(f"A vector needs 1 to {MAX_NUMBERS} finite numbers.")
    return numbers, []


def corrupt_vector(numbers: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Mix towards uniform noise: at severity 1 nothing of the input is left."""
    return ((1 - severity) * numbers + severity * rng.uniform(0, 1, numbers.shape)).astype(np.float32)


class VectorEncoder(Encoder):
    """Each number is one token: a fixed random feature map of it (8-d), so the fusion head learns."""

    modality, dim = "vector", 8

    def __init__(self, device=None, seed: int = 0):
        super().__init__()
        self.spec = "random-features"
        self.features = nn.Linear(1, self.dim)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.features.weight.copy_(torch.randn(self.dim, 1, generator=generator) * 3)
            self.features.bias.copy_(torch.randn(self.dim, generator=generator))
        self.requires_grad_(False).to(device or "cpu")

    @torch.inference_mode()
    def encode(self, batch: list[np.ndarray]) -> Tokens:
        length = max(len(v) for v in batch)
        x = torch.zeros(len(batch), length, 1, device=self.device)
        mask = torch.zeros(len(batch), length, dtype=torch.bool, device=self.device)
        for row, numbers in enumerate(batch):
            x[row, :len(numbers), 0], mask[row, :len(numbers)] = torch.as_tensor(numbers), True
        values = torch.sin(self.features(x)) * mask.unsqueeze(-1)
        return Tokens(values, mask, masked_mean(values, mask))


def build_vector(options: dict, name: str, device) -> VectorEncoder:
    if name != "random-features":
        raise ValueError(f"Unknown vector encoder {name!r}: use 'random-features'.")
    return VectorEncoder(device=device, **options)


def vector_widget():
    import gradio as gr

    return gr.Textbox(label="Numbers, separated by spaces", elem_id="vector-input")


@pytest.fixture
def vector_modality():
    registered = register_modality(Modality("vector", decode_vector, corrupt_vector, files=False,
                                            encoder={"name": "random-features"}, dim=VectorEncoder.dim,
                                            build=build_vector, widget=vector_widget, corruption="uniform noise"))
    yield registered
    unregister_modality("vector")


def rows(n: int, seed: int) -> list[dict]:
    """'high' when the numbers are large; half the rows also say so in words, some have words only."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        high = i % 2 == 0
        numbers = rng.uniform(0.6, 1.0, 5) if high else rng.uniform(0.0, 0.4, 5)
        text = ("the values are high" if high else "the values are low") if i % 4 < 2 else None
        vector = " ".join(f"{x:.3f}" for x in numbers) if i % 8 != 7 else None
        out.append({"vector": vector, "text": text if vector or text else "the values are low",
                    "label": "high" if high else "low"})
    return out


def test_a_registered_modality_trains_and_predicts(vector_modality, tmp_path):
    train_csv = write_manifest(tmp_path / "train.csv", rows(48, 0))
    val_csv = write_manifest(tmp_path / "val.csv", rows(16, 1))
    assert train_csv.read_text().splitlines()[0] == "text,vector,label"  # registration order: built-ins first
    assert read_manifest(train_csv)[0]["vector"].startswith("0.")

    cfg = TrainConfig(fusion="attention", epochs=6, batch_size=16, patience=6, ema_decay=0.0)
    train(train_csv, val_csv, tmp_path / "model", cfg, cache_dir=tmp_path / "cache")
    model = fusion.load_model(tmp_path / "model", device="cpu")
    assert model.fusion.modalities == ("text", "vector") and set(model.encoders) == {"vector", "text"}

    both = fusion.predict(model, vector="0.9 0.8 0.95 0.7", text="the values are high")
    assert both.modalities == ["text", "vector"] and both.label == "high"
    assert set(both.contributions) == {"vector", "text"} and len(both.subsets) == 3
    assert len(both.token_weights["vector"]["weights"]) == 4
    assert fusion.predict(model, vector=[0.05, 0.1, 0.2]).label == "low"  # alone, as a list
    assert fusion.predict(model, vector="0.9 0.8 0.95 0.7", corruption={"vector": 0.5}).modalities == ["vector"]
    with pytest.raises(InputError, match="numbers separated by spaces"):
        fusion.predict(model, vector="high please")

    # The page iterates over the registry too: the same model served, its inputs laid out from the widgets.
    from app import build_demo
    from fusion.serving import FusionService

    service = FusionService({"toy": tmp_path / "model"}, device="cpu")
    assert service.modalities == ("text", "vector")
    label, info, counted, *_ = service.fuse("toy", "the values are high", "0.9 0.8 0.95", True, True, 0.0, 0.0)
    assert max(label, key=label.get) == "high" and "vector" in counted and "text" in counted
    labels = [c["props"].get("label") for c in build_demo(service).config["components"]]
    assert "Numbers, separated by spaces" in labels and "vector: uniform noise" in labels
