"""Broken model folders and bad options: every problem is a ``UserError`` with one plain sentence (the CLI
prints one line and exits 2), never a crash, an allocation of gigabytes or a network request; a bug that
is not the user's keeps its traceback."""

import json
import math

import pytest
import torch
from corpus import INTERNALS
from safetensors.torch import load_file, save_file

import fusion
from fusion.__main__ import main as cli
from fusion.config import TrainConfig
from fusion.errors import CheckpointError, UserError
from fusion.model import FusionModel, default_config

LABELS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    FusionModel(default_config(LABELS, "cross")).save_pretrained(folder)
    return folder


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


CONFIG_MUTATIONS = {  # name -> change to config.json (a dict update, or a function of the config)
    "nested 100k deep": lambda c: json.dumps({**c, "strategy_config": "NESTED"}).replace('"NESTED"', "[" * 100_000
                                                                                         + "]" * 100_000),
    "nested config object": {"strategy_config": nested(50)},
    "d_model true": {"d_model": True},
    "d_model 2**20": {"d_model": 2 ** 20},
    "d_model float": {"d_model": 256.0},
    "d_model 0": {"d_model": 0},
    "heads 0": {"strategy_config": {"heads": 0, "layers": 2, "mlp_ratio": 2}},
    "heads 3 (d_model 256)": {"strategy_config": {"heads": 3, "layers": 2, "mlp_ratio": 2}},
    "layers 1e6": {"strategy_config": {"heads": 4, "layers": 1_000_000, "mlp_ratio": 2}},
    "unknown strategy option": {"strategy_config": {"heads": 4, "layers": 2, "mlp_ratio": 2, "colour": 1}},
    "unknown top-level key": {"surprise": 1},
    "audio_pool 1e9": {"audio_pool": 1e9},
    "audio_pool 0": {"audio_pool": 0},
    "class_prior Infinity": lambda c: json.dumps({**c, "class_prior": [1.0] * 9 + ["INF"]}).replace('"INF"',
                                                                                                   "Infinity"),
    "class_prior NaN": lambda c: json.dumps({**c, "class_prior": [1.0] * 9 + ["NAN"]}).replace('"NAN"', "NaN"),
    "class_prior short": {"class_prior": [0.5, 0.5]},
    "labels duplicated": {"labels": ["1"] * 10},
    "labels not strings": {"labels": list(range(10))},
    "one label": {"labels": ["a"], "class_prior": [1.0]},
    "strategy unknown": {"strategy": "magic"},
    "format_version 2": {"format_version": 2},
    "encoders empty": {"encoders": {}, "encoder_dims": {}},
    "encoder unknown modality": {"encoders": {"smell": "nose"}, "encoder_dims": {"smell": 3}},
    "encoder_dims huge": {"encoder_dims": {"image": 10 ** 9, "audio": 512, "text": 384}},
    "encoder_dims missing": {"encoder_dims": {"image": 192}},
    "dropout 1": {"dropout": 1},
    "weights outside": {"weights": "../../etc/passwd"},
    "weights pickle": {"weights": "model.bin"},
    "image_positions -1": {"image_positions": -1},
    "text_aliases a list": {"text_aliases": ["oh"]},
    "text_aliases to a string": {"text_aliases": {"zero": "oh"}},
    "text_aliases empty word": {"text_aliases": {"zero": [" "]}},
    "finetuned a list": {"finetuned": ["image"]},
    "finetuned unknown modality": {"finetuned": {"smell": {"blocks": 1, "weights": "smell.finetune.safetensors"}}},
    "finetuned blocks 0": {"finetuned": {"image": {"blocks": 0, "weights": "image.finetune.safetensors"}}},
    "finetuned blocks true": {"finetuned": {"image": {"blocks": True, "weights": "image.finetune.safetensors"}}},
    "finetuned weights outside": {"finetuned": {"image": {"blocks": 1, "weights": "../image.safetensors"}}},
    "finetuned weights missing": {"finetuned": {"image": {"blocks": 1, "weights": "image.finetune.safetensors"}}},
    "finetuned weights pickle": {"finetuned": {"image": {"blocks": 1, "weights": "image.pt"}}},
    "not an object": lambda c: "[1, 2, 3]",
    "not JSON": lambda c: "{'labels': ",
}


def mutate_tensor(name: str):
    def change(state: dict) -> dict:
        key = next(k for k in state if k.endswith("weight") and state[k].dim() == 2)
        if name == "int64":
            state[key] = state[key].long()
        elif name == "NaN":
            state[key] = state[key].clone().fill_(math.nan)
        elif name == "0-d":
            state[key] = torch.tensor(1.0)
        elif name == "wrong shape":
            state[key] = state[key][:, :3].contiguous()
        elif name == "missing":
            state.pop(key)
        elif name == "extra":
            state["surprise.weight"] = torch.zeros(3)
        return state
    return change


TENSOR_MUTATIONS = ["int64", "NaN", "0-d", "wrong shape", "missing", "extra"]


def copy_model(saved, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for f in saved.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def assert_plain_sentence(message: str) -> None:
    assert message and "\n" not in message and not INTERNALS.search(message), message


@pytest.mark.parametrize("case", list(CONFIG_MUTATIONS))
def test_broken_configs_are_checkpoint_errors(saved, tmp_path, case):
    folder = copy_model(saved, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    change = CONFIG_MUTATIONS[case]
    text = change(config) if callable(change) else json.dumps({**config, **change})
    (folder / "config.json").write_text(text)
    with pytest.raises(CheckpointError) as caught:
        FusionModel.from_pretrained(folder)
    assert_plain_sentence(str(caught.value))


@pytest.mark.parametrize("change, named", [
    ({"d_model": 128}, "config field 'd_model' is 128, but the weights have width 256"),
    ({"encoder_dims": {"image": 1280, "audio": 512, "text": 384}},
     "config field 'encoder_dims.image' is 1280, but the weights were trained on image features of width 192"),
    ({"strategy_config": {"heads": 4, "layers": 2, "mlp_ratio": 4}}, "config field 'strategy_config'"),
    ({"labels": list("abc"), "class_prior": [1.0] * 3}, "config field 'labels' names 3 classes, but the weights "
                                                         "score 10"),
], ids=["d_model", "encoder_dims", "strategy_config", "labels"])
def test_a_config_that_does_not_fit_its_weights_names_the_field_that_differs(saved, tmp_path, change, named):
    folder = copy_model(saved, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(CheckpointError) as caught:
        FusionModel.from_pretrained(folder)
    assert str(caught.value).startswith(named), caught.value
    assert_plain_sentence(str(caught.value))


@pytest.mark.parametrize("case", TENSOR_MUTATIONS)
def test_broken_weights_are_checkpoint_errors(saved, tmp_path, case):
    folder = copy_model(saved, tmp_path)
    save_file(mutate_tensor(case)(load_file(folder / "model.safetensors")), folder / "model.safetensors")
    with pytest.raises(CheckpointError) as caught:
        FusionModel.from_pretrained(folder)
    assert_plain_sentence(str(caught.value))


def test_a_hub_encoder_not_in_the_cache_is_a_checkpoint_error_offline(saved, tmp_path, monkeypatch):
    """With ``HF_HUB_OFFLINE`` on, an hf: encoder a model folder names is looked for in the local hub cache
    alone (transformers reads the same offline mode); missing there, one sentence, no network."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was contacted")

    monkeypatch.setattr(_http, "get_session", no_network)
    folder = copy_model(saved, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["encoders"]["text"] = {"name": "hf:evil-user/evil-model"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="cannot be loaded here"):
        fusion.load_model(folder, device="cpu")


def test_a_pickled_hub_folder_is_a_checkpoint_error(saved, tmp_path):
    """A local hf: folder holding only a pickled ``pytorch_model.bin`` (code could run on unpickling)."""
    backbone = tmp_path / "backbone"
    backbone.mkdir()
    (backbone / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    (backbone / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    folder = copy_model(saved, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["encoders"]["text"] = {"name": f"hf:{backbone}"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as caught:
        fusion.load_model(folder, device="cpu")
    assert_plain_sentence(str(caught.value))


@pytest.mark.parametrize("args, phrase", [
    (["predict", "--text", "seven", "--device", "bogus"], "Unknown device"),
    (["predict", "--text", "seven", "--device", "cuda"], "no CUDA GPU"),
    (["predict", "--text", "seven", "--model", "/nonexistent/folder"], "not a model folder"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--epochs", "0"], "from 1 to"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--batch-size", "0"], "from 1 to"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--image-size", "0"], "from 1 to"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--soup", "100000000"], "from 1 to 10,"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--batch-size", "10**9"], "whole number"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--epochs", "1000000"], "from 1 to 1000"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--image-blocks", "99"], "from 0 to 15"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--seed", "-1"], "from 0 to"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "FILE"], "--out FILE is a file, not a folder"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--cache", "FILE"], "--cache FILE is a file"),
    (["predict", "--text", "seven", "--report", "FILE"], "--report FILE is a file, not a folder"),
    (["predict", "--text", "seven", "--report", "FILE/report"], "lies under FILE, which is a file"),
    (["predict", "--text", "seven", "--report", "/proc/fusion-report"], "cannot create or write that folder"),
    (["data", "digits", "--out", "FILE"], "--out FILE is a file"),
    (["data", "checks", "--out", "FILE/checks"], "lies under FILE"),
    (["data", "examples", "--source", "s", "--out", "FILE"], "--out FILE is a file"),
    (["evaluate", "--model", "x", "--manifest", "m.csv", "--report", "FILE"], "--report FILE is a file"),
    (["space", "FILE"], "FILE is a file, not a folder"),
    (["space", "/proc/fusion-space"], "cannot create or write that folder"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--weight-decay", "-1"], "weight_decay"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--finetune", "image"], "MODALITY:N"),
    (["train", "--manifest", "m.csv", "--val", "v.csv", "--out", "o", "--finetune-lr", "0"], "finetune_lr"),
    (["train", "--manifest", "DIR", "--val", "DIR", "--out", "o"], "it is a folder"),
    (["train", "--manifest", "LONG", "--val", "LONG", "--out", "o"], "not a readable CSV"),
    (["evaluate", "--model", "x"], "required"),
    (["predcit"], "invalid choice"),
])
def test_cli_user_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, phrase):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    long = tmp_path / "long.csv"
    long.write_text("image,audio,text,label\n,,\"" + "x" * 140_000 + "\",a\n")
    (tmp_path / "a-file").write_text("not a folder")
    named = {"DIR": str(tmp_path), "LONG": str(long), "FILE": str(tmp_path / "a-file")}
    args = [named.get(a, a.replace("FILE/", named["FILE"] + "/")) for a in args]
    phrase = phrase.replace("FILE", named["FILE"])
    try:
        code = cli(args)
    except SystemExit as exit_:  # argparse's own checks exit from inside parse_args
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and phrase in err and "Traceback" not in err, err


def test_checking_an_output_folder_leaves_nothing_behind(tmp_path, capsys):
    """The check creates the folder to try it, then removes it, so a command that fails leaves no empty folder."""
    assert cli(["train", "--manifest", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "new" / "out")]) == 2
    assert "no such manifest" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_bug_keeps_its_traceback(monkeypatch):
    import fusion.pipeline

    def broken(*args, **kwargs):
        raise ValueError("an internal bug, not the user's mistake")

    monkeypatch.setattr(fusion.pipeline, "load_model", broken)
    with pytest.raises(ValueError, match="internal bug"):  # not turned into "error: ..." and exit 2
        cli(["predict", "--text", "seven"])


def test_train_config_refuses_what_a_run_cannot_use():
    for bad in ({"epochs": 0}, {"lr": float("nan")}, {"soup": 0}, {"fusion": "magic"}, {"audio_layers": 0},
                {"text_aliases": "mugs"}, {"finetune": "image:0"}, {"finetune": "image:1,image:2"},
                {"finetune_lr": 0.0}):
        with pytest.raises(UserError):
            TrainConfig(**bad)
    TrainConfig()  # the defaults are valid



def test_configs_without_finetuned_blocks_load_as_before(saved):
    """No ``finetuned`` field: no overlay, nothing written beside the head and its model card."""
    model = FusionModel.from_pretrained(saved)
    assert model.finetuned_state == {} and "finetuned" not in model.config
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_checkpoints_from_before_injected_heads_still_load(saved, tmp_path):
    """Older folders keep the classification head inside the strategy (``strategy.head.*``)."""
    folder = copy_model(saved, tmp_path)
    state = load_file(folder / "model.safetensors")
    old = {("strategy." + k if k.startswith("head.") else k): v for k, v in state.items()}
    save_file(old, folder / "model.safetensors")
    model, reference = FusionModel.from_pretrained(folder), FusionModel.from_pretrained(saved)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
