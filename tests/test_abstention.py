"""Knowing when there is no class: manifest rows with an empty label (negatives), outlier-exposure training,
calibration on validation (temperature, abstention thresholds), and ``label=None`` on every surface."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fusion
from fusion.data.manifest import read_manifest, write_manifest
from fusion.errors import CheckpointError
from fusion.model import FusionModel
from fusion.serving import FusionService
from fusion.train import NEGATIVE, TrainConfig, abstain_threshold, cross_entropy, hold_out, train
from fusion.views import headline

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TRAIN_TEXTS = ["it's a {}", "the number {}", "i wrote {}", "{} please"]
NOTHING = ["what a lovely day", "the cat sat on the mat", "good morning to you", "open the window",
           "i like green tea", "where is the station", "the sky is blue today", "turn off the light",
           "see you at lunch", "the dog is asleep", "bring me the red book", "music is playing"]


def text_rows(templates, negatives) -> list[dict]:
    return ([{"text": t.format(w), "label": str(d)} for t in templates for d, w in enumerate(WORDS)]
            + [{"text": s, "label": None} for s in negatives])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A text-only digits model trained with negatives -> (model folder, validation manifest)."""
    folder = tmp_path_factory.mktemp("abstain")
    train_csv = write_manifest(folder / "train.csv", text_rows(TRAIN_TEXTS, NOTHING[:9]))
    val_csv = write_manifest(folder / "val.csv", text_rows(["you showed {}"], NOTHING[9:]))
    cfg = TrainConfig(epochs=30, batch_size=16, lr=3e-3, patience=30, ema_decay=0.0, class_noun="digit")
    result = train(train_csv, val_csv, folder / "model", cfg, cache_dir=folder / "cache")
    return folder / "model", val_csv, result


def test_an_empty_label_cell_is_a_negative_and_validation_keeps_some(tmp_path):
    rows = read_manifest(write_manifest(tmp_path / "m.csv", text_rows(["it's a {}", "a {}"], NOTHING)))
    assert sum(row["label"] is None for row in rows) == len(NOTHING)
    train_rows, val_rows = hold_out(rows, 0.2, seed=0)
    assert any(row["label"] is None for row in val_rows) and any(row["label"] is None for row in train_rows)


def test_negatives_are_pulled_towards_no_class():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # A positive row: ordinary cross-entropy; a negative: cross-entropy to uniform, least when uniform.
    assert cross_entropy(logits[:1], torch.tensor([0]), 0.5) == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:1], torch.tensor([0])).item())
    uniform = cross_entropy(logits[1:], torch.tensor([NEGATIVE]), 1.0)
    assert uniform == pytest.approx(torch.log(torch.tensor(3.0)).item())
    assert cross_entropy(logits[:1], torch.tensor([NEGATIVE]), 1.0) > uniform


def test_an_abstention_threshold_buys_negatives_with_a_bounded_share_of_positives():
    positives = torch.linspace(0.2, 1.0, 1001)  # evenly spread confidences: the q quantile is 0.2 + 0.8 q
    labels = torch.zeros(1001, dtype=torch.long)
    with_negatives = lambda negatives: (torch.cat([positives, negatives]),  # noqa: E731
                                        torch.cat([labels, torch.full((len(negatives),), NEGATIVE)]))
    # Negatives below the positives: what abstains on 95 % of them, giving up few positives or none.
    assert abstain_threshold(*with_negatives(torch.full((20,), 0.05))) == pytest.approx(0.05, abs=1e-3)
    assert abstain_threshold(*with_negatives(torch.linspace(0.1, 0.22, 21))) == pytest.approx(0.214, abs=1e-3)
    # Negatives as sure as the positives: at most 5 % of the positives are given up for them.
    assert abstain_threshold(*with_negatives(torch.full((20,), 0.9))) == pytest.approx(0.2 + 0.8 * 0.05, abs=1e-3)
    assert abstain_threshold(positives, labels) == pytest.approx(0.2 + 0.8 * 0.005, abs=1e-3)  # no negatives


def test_a_model_abstains_below_its_subset_threshold_or_when_no_input_shows_a_class():
    model = FusionModel.from_pretrained(ROOT / "assets" / "models" / "digits-attention")
    below, alone = model.config["calibration"]["abstain_below"], model.config["calibration"]["unimodal_abstain_below"]
    sure = {"image": True, "text": True}
    assert not model.abstains(["image", "text"], below["image+text"] + 0.01, sure)
    assert model.abstains(["image", "text"], below["image+text"] - 0.01, sure)
    assert not model.abstains(["image", "text"], 0.99, {"image": False, "text": True})  # the text decides
    assert model.abstains(["image", "text"], 0.99, {"image": False, "text": False})  # nothing to rest on
    assert model.shows_evidence("audio", alone["audio"]) and not model.shows_evidence("audio", alone["audio"] - 0.01)
    model.set_calibration({"temperature": 1.0})  # calibrated without negatives: never abstains
    assert not model.abstains(["image"], 0.0, {"image": False}) and model.shows_evidence("image", 0.0)


def test_training_calibrates_and_the_model_abstains_plainly(trained):
    folder, _, result = trained
    calibration = json.loads((folder / "config.json").read_text())["calibration"]
    assert 0.01 <= calibration["temperature"] <= 100
    assert set(calibration["abstain_below"]) == {"text"} and 0 < calibration["abstain_below"]["text"] < 1
    assert set(calibration["unimodal_abstain_below"]) == {"text"}
    assert result["calibration"]["validation"]["ece"] <= result["calibration"]["validation"]["ece_before"]
    model = fusion.load_model(folder, device="cpu")
    assert fusion.predict(model, text="it's a seven").label == "7"
    p = fusion.predict(model, text=NOTHING[0])  # a negative it was trained on
    assert p.label is None and p.answer == "no digit" and p.to_dict()["label"] is None
    assert p.notes[0].startswith("No digit recognised") and headline(p).startswith("**No digit recognised.**")
    assert p.unimodal["text"]["evidence"] is False
    cli = subprocess.run([sys.executable, "-m", "fusion", "predict", "--model", str(folder), "--text", NOTHING[0]],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0 and "prediction: none: no digit recognised" in cli.stdout
    label, info, *_ = FusionService({"taught": folder}, device="cpu").fuse("taught", NOTHING[0], True, 0.0)
    assert label == "no digit" and "No digit recognised" in info


def test_evaluate_reports_calibration_and_the_negatives_abstained_on(trained, tmp_path):
    from fusion.evaluate import evaluate

    folder, val_csv, _ = trained
    metrics = evaluate(folder, val_csv, tmp_path / "report", cache_dir=tmp_path / "cache", robustness=False)
    assert metrics["negative_rows"] == 3 and metrics["subsets"]["text"]["negatives"]["n"] == 3
    assert 0 <= metrics["subsets"]["text"]["negatives"]["abstained"] <= 1
    assert 0 <= metrics["calibration"]["all_modalities"]["ece"] <= 1
    assert (tmp_path / "report" / "reliability.png").is_file()
    assert "## Calibration" in (tmp_path / "report" / "report.md").read_text()


def test_evaluate_on_negatives_only_reports_the_share_abstained_on(trained, tmp_path):
    from fusion.evaluate import evaluate

    ood = write_manifest(tmp_path / "ood_text.csv", text_rows([], ["beautiful is better than ugly",
                                                                   "simple is better than complex"]))
    metrics = evaluate(trained[0], ood, tmp_path / "report", cache_dir=tmp_path / "cache", robustness=False)
    assert metrics["subsets"]["text"]["n"] == 0 and metrics["subsets"]["text"]["negatives"]["n"] == 2
    assert "negatives abstained on" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.parametrize("calibration, field", [({"temperature": 0}, "calibration.temperature"),
                                                ({"abstain_below": 0.5}, "calibration.abstain_below"),
                                                ({"abstain_below": {"image+smell": 0.5}}, "calibration.abstain_below"),
                                                ({"unimodal_abstain_below": {"smell": 0.2}},
                                                 "calibration.unimodal_abstain_below")])
def test_calibration_fields_are_checked(trained, calibration, field):
    config = json.loads((trained[0] / "config.json").read_text())
    with pytest.raises(CheckpointError, match=field):
        FusionModel({**config, "calibration": calibration})


def test_calibrate_fits_a_saved_model_again_on_a_validation_manifest(trained, tmp_path):
    import shutil

    folder, val_csv, result = trained
    copy = shutil.copytree(folder, tmp_path / "model")
    config = json.loads((copy / "config.json").read_text())
    config["calibration"] = {"temperature": 3.0, "abstain_below": {"text": 0.99}, "unimodal_abstain_below": {}}
    (copy / "config.json").write_text(json.dumps(config))
    cli = subprocess.run([sys.executable, "-m", "fusion", "calibrate", "--model", str(copy), "--val", str(val_csv),
                          "--cache", str(tmp_path / "cache")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    again = json.loads((copy / "config.json").read_text())
    assert again["calibration"] == {k: v for k, v in result["calibration"].items() if k != "validation"}
    assert again["training"]["calibration"] == result["calibration"]["validation"]
