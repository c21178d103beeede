"""End-to-end learning (``train --finetune``): prefix + trained blocks reproduce the encoder, the model folder
keeps only the changed blocks, loading applies them to a copy of the shared encoder, and broken overlays are
``CheckpointError``s naming the field or file."""

import json
import math
from pathlib import Path

import pytest
import torch
from corpus import INTERNALS
from safetensors.torch import load, load_file, save_file

import fusion
from fusion.config import TrainConfig
from fusion.data.manifest import read_manifest, write_manifest
from fusion.encoders import DEFAULT_SPECS, shared_encoder
from fusion.errors import CheckpointError, OptionError
from fusion.features import FeatureCache, encoder_key
from fusion.finetune import PrefixView
from fusion.modalities import decode_inputs
from fusion.model import FusionModel, default_config
from fusion.train import load_split, make_batch, train

SAMPLE = Path(__file__).resolve().parent / "data" / "digits_sample" / "test.csv"

LABELS = [str(i) for i in range(10)]
IMAGE_TEXT = {m: DEFAULT_SPECS[m] for m in ("image", "text")}


@pytest.fixture(scope="module")
def sample_split(tmp_path_factory):
    """The committed 50-row sample without its audio (image + text are the cheap encoders): 3 rows of each
    digit to train on, 2 to validate; and the same rows with their text only."""
    folder = tmp_path_factory.mktemp("sample")
    rows = [{**row, "audio": None} for row in read_manifest(SAMPLE)]
    seen: dict[str, int] = {}
    train_rows, val_rows = [], []
    for row in rows:
        seen[row["label"]] = seen.get(row["label"], 0) + 1
        (train_rows if seen[row["label"]] <= 3 else val_rows).append(row)
    text_only = [[{**row, "image": None} for row in split] for split in (train_rows, val_rows)]
    return (write_manifest(folder / "train.csv", train_rows), write_manifest(folder / "val.csv", val_rows),
            [write_manifest(folder / f"{name}-text.csv", rows) for name, rows in zip(("train", "val"), text_only)])


@pytest.fixture(scope="module")
def image_encoder():
    return shared_encoder("image", DEFAULT_SPECS["image"], "cpu")


def decoded(encoder, rows, modality="image"):
    return [decode_inputs({modality: encoder}, **{modality: row[modality]})[0][modality] for row in rows]


def plain_sentence(error) -> str:
    message = str(error.value)
    assert message and "\n" not in message and not INTERNALS.search(message), message
    return message


@pytest.mark.parametrize("modality, blocks", [("image", 2), ("text", 1)])
def test_the_prefix_and_a_copy_of_the_last_blocks_give_the_encoders_tokens(sample_split, modality, blocks):
    """What training computes (cached prefix -> suffix) is what ``encode`` computes, and a row without the
    modality stays absent and finite (modality dropout)."""
    encoder = shared_encoder(modality, DEFAULT_SPECS[modality], "cpu")
    items = decoded(encoder, read_manifest(sample_split[1])[:4], modality)
    cut = encoder.finetune_cut(blocks)
    prefix = encoder.encode_prefix(items, cut)
    suffix = encoder.suffix(cut)
    assert suffix.cut == cut and len(suffix.blocks) == blocks
    assert all(p.requires_grad for p in suffix.blocks.parameters())
    with torch.no_grad():
        out = suffix(prefix)
        assert torch.allclose(out.values, encoder.encode(items).values, atol=1e-5)
        mask = prefix.mask.clone()
        mask[1] = False
        absent = suffix(type(prefix)(prefix.values.clone(), mask, prefix.pooled, prefix.grid))
    assert not absent.mask[1].any() and torch.isfinite(absent.values).all()
    assert torch.allclose(absent.values[0], out.values[0], atol=1e-5)
    # The suffix is a copy: the shared encoder's blocks are not its parameters.
    ids = {id(p) for p in encoder.parameters()}
    assert not any(id(p) in ids for p in suffix.parameters())


def test_finetune_image_saves_only_its_block_and_loading_reproduces_training(sample_split, image_encoder, tmp_path):
    train_csv, val_csv, _ = sample_split
    before = {k: v.clone() for k, v in image_encoder.state_dict().items()}
    val_rows = read_manifest(val_csv)[:10]
    items = decoded(image_encoder, val_rows)
    tokens_before = image_encoder.encode(items).values.clone()

    cfg = TrainConfig(fusion="attention", epochs=2, batch_size=10, finetune="image:1")
    result = train(train_csv, val_csv, tmp_path / "model", cfg, cache_dir=tmp_path / "cache")
    folder = tmp_path / "model"
    config = json.loads((folder / "config.json").read_text())
    assert config["finetuned"] == {"image": {"blocks": 1, "weights": "image.finetune.safetensors"}}
    assert config["training"]["train_config"]["finetune"] == "image:1"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "image.finetune.safetensors",
                                                        "model.safetensors", "training_log.json"]

    # Only block 14 (the last of the 15 that make the tokens), and nothing else of the encoder.
    overlay = load_file(folder / "image.finetune.safetensors")
    expected = image_encoder.finetune_parameters(1)
    assert set(overlay) == set(expected) and all(k.startswith("net._blocks.14.") for k in overlay)
    numbers = sum(t.numel() for t in overlay.values())
    assert numbers == sum(p.numel() for p in image_encoder.net._blocks[14].parameters())
    assert (folder / "image.finetune.safetensors").stat().st_size < 4 * numbers + 10_000  # fp32 + the header
    assert not any(k.startswith("net.") for k in load_file(folder / "model.safetensors"))
    assert any(not torch.equal(overlay[k], expected[k]) for k in overlay)  # training changed the block

    # Loading: the image encoder is a copy with the trained block; the shared one is unchanged.
    loaded = fusion.load_model(folder, device="cpu")
    tuned = loaded.encoders["image"]
    assert tuned is not image_encoder and loaded.encoders["text"] is shared_encoder("text", DEFAULT_SPECS["text"])
    assert all(torch.equal(v, before[k]) for k, v in image_encoder.state_dict().items())
    assert torch.equal(image_encoder.encode(items).values, tokens_before)
    assert encoder_key(tuned) != encoder_key(image_encoder)  # an evaluation never reads the base's cache

    # Exactly what the trained model computes from the prefix ...
    trained = result["model"].eval()
    cut = image_encoder.finetune_cut(1)
    with torch.no_grad():
        assert torch.allclose(tuned.encode(items).values,
                              trained.suffixes["image"](image_encoder.encode_prefix(items, cut)).values, atol=1e-5)
    # ... and the predictions of training (from the fp16 feature cache) are those of fusion.predict.
    cache = FeatureCache(tmp_path / "cache", {"image": PrefixView(image_encoder, cut),
                                              "text": loaded.encoders["text"]})
    split = load_split(cache, val_rows, LABELS, ["image", "text"], augment=False, name="val")
    tokens, _, _, _ = make_batch(split, list(range(len(val_rows))), trained, None, None)
    with torch.no_grad():
        at_training = trained(tokens).probs
    predictions = [fusion.predict(loaded, image=r["image"], text=r["text"]) for r in val_rows]
    served = torch.tensor([[p.probs[c] for c in LABELS] for p in predictions])
    assert torch.equal(served.argmax(1), at_training.argmax(1))
    assert torch.allclose(served, at_training, atol=5e-3)

    # A frozen model loaded alongside still gets the shared encoder, whose tokens are as before.
    frozen = tmp_path / "frozen"
    FusionModel(default_config(LABELS, "late", encoders=IMAGE_TEXT)).save_pretrained(frozen)
    other = fusion.load_model(frozen, device="cpu")
    assert other.encoders["image"] is image_encoder and other.fusion.finetuned_state == {}
    assert torch.equal(other.encoders["image"].encode(items).values, tokens_before)

    # A corrupted overlay file is a CheckpointError that names the file.
    (folder / "image.finetune.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(CheckpointError) as caught:
        fusion.load_model(folder, device="cpu")
    assert "image.finetune.safetensors" in plain_sentence(caught)


def test_finetune_with_a_soup_and_text(sample_split, tmp_path):
    """Soups and EMA still work with fine-tuned blocks (members start from the pretrained ones); text:1."""
    train_csv, val_csv = sample_split[2]
    cfg = TrainConfig(fusion="late", epochs=1, batch_size=10, soup=2, finetune="text:1", finetune_lr=3e-4)
    result = train(train_csv, val_csv, tmp_path / "model", cfg, cache_dir=tmp_path / "cache")
    assert len(result["log"]["members"]) == 2
    loaded = fusion.load_model(tmp_path / "model", device="cpu")
    assert set(load_file(tmp_path / "model" / "text.finetune.safetensors")) == set(
        loaded.encoders["text"].finetune_parameters(1))
    assert all(k.startswith("model.encoder.layer.5.") for k in loaded.fusion.finetuned_state["text"])
    assert loaded.fusion.modalities == ("text",) and fusion.predict(loaded, text="seven").label in LABELS


@pytest.mark.parametrize("finetune, phrase", [("audio:1", "no audio inputs"), ("image:16", "1..15"),
                                              ("smell:1", "no smell inputs")])
def test_finetune_options_a_run_cannot_use(sample_split, tmp_path, finetune, phrase):
    train_csv, val_csv, _ = sample_split
    with pytest.raises(OptionError, match=phrase):
        train(train_csv, val_csv, tmp_path / "m", TrainConfig(epochs=1, finetune=finetune), cache_dir=tmp_path / "c")


# --- broken overlays (small random tensors: no training) ------------------------------------------


@pytest.fixture(scope="module")
def overlay_model(tmp_path_factory, image_encoder):
    """An untrained image+text head with a random overlay of the image encoder's last block."""
    folder = tmp_path_factory.mktemp("overlay")
    config = default_config(LABELS, "late", encoders=IMAGE_TEXT)
    config["finetuned"] = {"image": {"blocks": 1, "weights": "image.finetune.safetensors"}}
    model = FusionModel(config)
    torch.manual_seed(0)
    model.finetuned_state = {"image": {k: torch.randn_like(p) * 0.01
                                       for k, p in image_encoder.finetune_parameters(1).items()}}
    model.save_pretrained(folder)
    return folder


def test_a_random_overlay_loads_onto_a_copy(overlay_model, image_encoder):
    loaded = fusion.load_model(overlay_model, device="cpu")
    tuned = loaded.encoders["image"]
    state = load_file(overlay_model / "image.finetune.safetensors")
    for name, tensor in tuned.state_dict().items():
        assert torch.equal(tensor, state[name] if name in state else image_encoder.state_dict()[name]), name
    # Every tensor outside the overlay is shared with the cached encoder, not duplicated.
    base = dict(image_encoder.named_parameters())
    assert all((p.data_ptr() == base[n].data_ptr()) == (n not in state) for n, p in tuned.named_parameters())


def break_overlay(case: str):
    def change(state: dict, config: dict):
        key = next(k for k in sorted(state) if k.endswith("_expand_conv.weight"))
        if case == "NaN":
            state[key] = state[key].clone().fill_(math.nan)
        elif case == "int64":
            state[key] = state[key].long()
        elif case == "wrong shape":
            state[key] = torch.zeros(3, 2)
        elif case == "missing":
            state.pop(key)
        elif case == "extra":
            state["net._blocks.13._bn0.weight"] = torch.zeros(3)
        elif case == "blocks 2":
            config["finetuned"]["image"]["blocks"] = 2
        elif case == "blocks 99":
            config["finetuned"]["image"]["blocks"] = 99
        elif case == "blocks 0":
            config["finetuned"]["image"]["blocks"] = 0
        elif case == "weights outside":
            config["finetuned"]["image"]["weights"] = "../elsewhere.safetensors"
        elif case == "weights the head's":
            config["finetuned"]["image"]["weights"] = "model.safetensors"
        elif case == "weights missing":
            config["finetuned"]["image"]["weights"] = "gone.safetensors"
        elif case == "unknown modality":
            config["finetuned"]["audio"] = config["finetuned"]["image"]
        elif case == "no blocks field":
            config["finetuned"]["image"] = {"weights": "image.finetune.safetensors"}
        return state, config
    return change


OVERLAY_CASES = {  # case -> a phrase of the message (the field or the file it names)
    "NaN": "NaN", "int64": "floats", "wrong shape": "shape", "missing": "missing", "extra": "unexpected",
    "blocks 2": "finetuned.image", "blocks 99": "finetuned.image.blocks", "blocks 0": "finetuned.image.blocks",
    "weights outside": "outside the model folder", "weights the head's": "of its own",
    "weights missing": "does not exist", "unknown modality": "no 'audio' encoder", "no blocks field": "finetuned.image",
}


@pytest.mark.parametrize("case", list(OVERLAY_CASES))
def test_broken_overlays_are_checkpoint_errors(overlay_model, tmp_path, case):
    folder = tmp_path / "model"
    folder.mkdir()
    for f in overlay_model.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    state, config = break_overlay(case)(load_file(folder / "image.finetune.safetensors"),
                                        json.loads((folder / "config.json").read_text()))
    save_file(state, folder / "image.finetune.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as caught:
        fusion.load_model(folder, device="cpu")
    assert OVERLAY_CASES[case] in plain_sentence(caught)


def test_a_pushed_model_carries_its_blocks(overlay_model, recording_api):
    """push_to_hub uploads the overlay with the head, and the model card says which blocks were fine-tuned."""
    FusionModel.from_pretrained(overlay_model).push_to_hub("someone/tuned", token="hf_x")
    files = recording_api[-1][2]["files"]
    assert set(files) == {"config.json", "model.safetensors", "image.finetune.safetensors", "README.md"}
    pushed, saved = load(files["image.finetune.safetensors"]), load_file(overlay_model / "image.finetune.safetensors")
    assert set(pushed) == set(saved) and all(torch.equal(pushed[k], saved[k]) for k in saved)
    assert "the last 1 block of the image encoder, in `image.finetune.safetensors`" in files["README.md"].decode()
