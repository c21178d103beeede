"""Training on a tiny dataset made by the builder, and the shipped model on the committed test sample."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import fusion
from fusion.data.digits import TEXT_ALIASES
from fusion.data.manifest import read_manifest
from fusion.pipeline import MODELS_DIR
from fusion.train import TrainConfig, loss_fn, make_batch, train

SAMPLE = Path(__file__).resolve().parent / "data" / "digits_sample" / "test.csv"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """20 train / 10 val triplets from the builder's small build (needs flite/espeak-ng for the audio)."""
    if not (shutil.which("flite") and shutil.which("espeak-ng")):
        pytest.skip("flite/espeak-ng not installed (run_tests.sh installs them when run as root)")
    from fusion.data.digits import build_digits
    from fusion.data.manifest import write_manifest

    folder = tmp_path_factory.mktemp("digits")
    paths = build_digits(folder, seed=3, size="small")
    by_label: dict[str, list] = {}
    for row in read_manifest(paths["train"]):
        if row["label"] is not None:  # the negatives (empty label) are left out here
            by_label.setdefault(row["label"], []).append(row)
    # Two rows of every digit, so the 10 validation rows have no label training lacks.
    train_csv = write_manifest(folder / "train20.csv", [row for rows in by_label.values() for row in rows[:2]])
    val_csv = write_manifest(folder / "val10.csv", [r for r in read_manifest(paths["val"]) if r["label"]][:10])
    return train_csv, val_csv


def test_training_a_few_steps_lowers_the_loss(tiny_data, tmp_path):
    train_csv, val_csv = tiny_data
    cfg = TrainConfig(fusion="attention", epochs=4, batch_size=10, lr=3e-3, modality_dropout=0.0, reliability=0.0,
                      text_aliases="digits")
    result = train(train_csv, val_csv, tmp_path / "model", cfg, cache_dir=tmp_path / "cache")
    losses = [entry["loss"] for entry in result["log"]]
    assert losses[-1] < losses[0]
    # The log keeps each epoch's validation accuracy for every non-empty subset of modalities.
    assert len(result["log"][0]["val"]) == 7 and "image+audio+text" in result["log"][0]["val"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["strategy"] == "attention" and config["training"]["train_rows"] == 20
    assert config["text_aliases"] == TEXT_ALIASES  # --text-aliases digits: the model maps "oh" as served
    model = fusion.load_model(tmp_path / "model", device="cpu")
    assert fusion.predict(model, text="seven").label in model.labels
    assert fusion.predict(model, text="oh").views["text"]["input"] == "zero"


def test_another_speech_encoder_and_the_raw_weights(tiny_data, tmp_path):
    """--audio-encoder whisper-tiny.en --audio-layers 0 --ema-decay 0: recorded in the config and served."""
    train_csv, val_csv = tiny_data
    cfg = TrainConfig(fusion="late", epochs=1, batch_size=10, audio_encoder="whisper-tiny.en", audio_layers=None,
                      ema_decay=0.0)
    train(train_csv, val_csv, tmp_path / "model", cfg, cache_dir=tmp_path / "cache")
    model = fusion.load_model(tmp_path / "model", device="cpu")
    assert model.fusion.config["encoders"]["audio"] == {"name": "whisper-tiny.en", "layers": None}
    assert model.fusion.config["encoder_dims"]["audio"] == 384 == model.encoders["audio"].dim
    assert model.fusion.config["training"]["train_config"]["ema_decay"] == 0.0
    clip = read_manifest(val_csv)[0]["audio"]
    assert fusion.predict(model, audio=clip).label in model.labels


def test_hf_backbones_train_from_the_cli(tiny_data, tmp_path, monkeypatch, capsys):
    """``train --text-encoder hf:someone/tiny-bert --audio-encoder hf:<folder>``: a tiny random BERT from the local
    hub cache (offline) and a tiny wav2vec2 from a folder are the encoders, recorded in the config and served."""
    from corpus import cache_repo
    from huggingface_hub import constants
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    from fusion.__main__ import main

    bert = tmp_path / "bert"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[w for n in range(10) for w in (str(n),)], "seven"]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(bert)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=37)).save_pretrained(bert)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cache_repo(tmp_path / "hub", "someone/tiny-bert", "b" * 40,
               {p.name: p.read_bytes() for p in bert.iterdir() if p.is_file()})
    speech = tmp_path / "wav2vec2"
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                                 conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_feat_extract_layers=2,
                                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)).save_pretrained(speech)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(speech)

    train_csv, val_csv = tiny_data
    out = tmp_path / "model"
    assert main(["train", "--manifest", str(train_csv), "--val", str(val_csv), "--out", str(out), "--epochs", "1",
                 "--batch-size", "10", "--text-encoder", "hf:someone/tiny-bert",
                 "--audio-encoder", f"hf:{speech}", "--cache", str(tmp_path / "cache")]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["encoders"]["text"] == {"name": "hf:someone/tiny-bert"}
    assert config["encoders"]["audio"] == {"name": f"hf:{speech}"}  # no Whisper layers for a wav2vec2
    assert config["encoders"]["image"]["name"] == "efficientnet-lite0"
    assert config["encoder_dims"]["text"] == config["encoder_dims"]["audio"] == 32
    model = fusion.load_model(out, device="cpu")
    assert fusion.predict(model, text="7", audio=read_manifest(val_csv)[0]["audio"]).label in [*model.labels, None]
    # An encoder that does not exist is the option's one-line error, before any feature is computed.
    assert main(["train", "--manifest", str(train_csv), "--val", str(val_csv), "--out", str(tmp_path / "m2"),
                 "--text-encoder", "hf:someone/missing"]) == 2
    assert "someone/missing" in capsys.readouterr().err


def test_a_soup_averages_its_members_and_reports_the_average(tiny_data, tmp_path):
    """--soup 2: two runs from one initialisation; what is saved is their average, validated as such."""
    train_csv, val_csv = tiny_data
    cfg = TrainConfig(fusion="late", epochs=2, batch_size=10, soup=2)
    result = train(train_csv, val_csv, tmp_path / "model", cfg, cache_dir=tmp_path / "cache")
    members = result["log"]["members"]
    assert len(members) == 2 and all(len(log) == 2 for log in members)
    # Different seeds, different runs: the members' losses differ.
    assert members[0][0]["loss"] != members[1][0]["loss"]
    model = fusion.load_model(tmp_path / "model", device="cpu")
    training = model.fusion.config["training"]
    assert training["epochs_run"] == [2, 2] and training["train_config"]["soup"] == 2
    assert training["best_val_mean_subset_acc"] == result["log"]["soup"]["val_mean_subset_acc"]
    assert fusion.predict(model, text="seven").label in model.labels
    with pytest.raises(ValueError, match="soup"):
        train(train_csv, val_csv, tmp_path / "bad", TrainConfig(soup=0), cache_dir=tmp_path / "cache")


def test_augmented_batches_keep_labels_consistent(tiny_data, tmp_path):
    """Reliability training replaces one modality but never leaves a row empty or relabels it."""
    import random

    from fusion.encoders import shared_encoder
    from fusion.features import FeatureCache
    from fusion.model import FusionModel, default_config
    from fusion.train import load_split, sort_labels

    train_csv, _ = tiny_data
    rows = read_manifest(train_csv)
    labels = sort_labels(r["label"] for r in rows)
    encoders = {m: shared_encoder(m, s, "cpu") for m, s in fusion.encoders.DEFAULT_SPECS.items()}
    split = load_split(FeatureCache(tmp_path / "cache", encoders), rows, labels, list(encoders), True, "train")
    model = FusionModel(default_config(labels, "late"))
    cfg = TrainConfig(modality_dropout=0.5, reliability=1.0)
    by_label = {c: {m: [i for i in range(len(rows)) if int(split.labels[i]) == c] for m in encoders}
                for c in range(len(labels))}
    tokens, y, targets, clean = make_batch(split, list(range(len(rows))), model, cfg, random.Random(0), by_label)
    assert torch.equal(y, split.labels) and not clean.any()
    present = torch.stack([tokens[m].mask.any(1) if m in tokens else torch.zeros(len(rows), dtype=torch.bool)
                           for m in encoders], 1)
    assert present.any(1).all()
    assert torch.isfinite(loss_fn(model, tokens, y, targets, clean, cfg))


def test_evaluate_without_robustness_writes_the_subset_report(tiny_data, tmp_path):
    """`evaluate --no-robustness`: every subset scored, no sweeps or conflicts, and `summarize` still works."""
    from fusion.evaluate import evaluate, summary_table

    train_csv, val_csv = tiny_data
    train(train_csv, val_csv, tmp_path / "model", TrainConfig(fusion="late", epochs=1, batch_size=10),
          cache_dir=tmp_path / "cache")
    metrics = evaluate(tmp_path / "model", val_csv, tmp_path / "report", cache_dir=tmp_path / "cache",
                       latency_rows=2, robustness=False)
    assert len(metrics["subsets"]) == 7 and all(s["n"] == 10 for s in metrics["subsets"].values())
    assert metrics["corruption"] == {} and metrics["conflict"] == {}
    assert metrics["mean_relative_robustness"] is None and metrics["mean_relative_robustness_pairs"] is None
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Accuracy by modalities given" in report and "Robustness" not in report
    assert not (tmp_path / "report" / "robustness.png").exists() and (tmp_path / "report" / "subsets.png").exists()
    row = summary_table({"late": metrics}).splitlines()[2].split(" | ")
    subsets = metrics["subsets"]
    gain = subsets["image+audio+text"]["accuracy"] - max(subsets[m]["accuracy"] for m in ("image", "audio", "text"))
    assert row[8] == f"{100 * gain:+.1f} pt" and row[9] == row[10] == "—"


def test_evaluate_robustness_sweeps_start_from_the_clean_subsets(tiny_data, tmp_path):
    """At severity 0 each sweep is the clean subset it corrupts: all modalities for the main curve, the
    corrupted one and its partner for the pair curves; the reported means are the means of the AUCs."""
    from fusion.evaluate import SEVERITIES, evaluate

    train_csv, val_csv = tiny_data
    train(train_csv, val_csv, tmp_path / "model", TrainConfig(fusion="attention", epochs=1, batch_size=10),
          cache_dir=tmp_path / "cache")
    metrics = evaluate(tmp_path / "model", val_csv, tmp_path / "report", cache_dir=tmp_path / "cache",
                       latency_rows=1)
    sweeps, subsets = metrics["corruption"], metrics["subsets"]
    assert set(sweeps) == {"image", "audio", "text"} and set(metrics["conflict"]) == set(sweeps)
    pair_aucs = []
    for m, sweep in sweeps.items():
        assert len(sweep["accuracy"]) == len(sweep["mean_weight"]) == len(SEVERITIES)
        assert sweep["accuracy"][0] == subsets["image+audio+text"]["accuracy"]
        assert set(sweep["with_one_other"]) == set(sweeps) - {m}
        for o, pair in sweep["with_one_other"].items():
            clean_pair = "+".join(k for k in ("image", "audio", "text") if k in (m, o))
            assert pair["accuracy"][0] == subsets[clean_pair]["accuracy"]
            assert pair["relative_robustness"] == pytest.approx(np.trapezoid(pair["accuracy"], SEVERITIES))
            pair_aucs.append(pair["relative_robustness"])
    assert metrics["mean_relative_robustness_pairs"] == pytest.approx(np.mean(pair_aucs)) and len(pair_aucs) == 6
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| image, audio |" in report and "Mean relative robustness over these pairs" in report
    assert (tmp_path / "report" / "robustness.png").exists()


def test_shipped_default_model_on_the_committed_sample():
    """An honest check that shipped weights and serving preprocessing agree (files -> fusion.predict)."""
    model = fusion.load_model()
    rows = read_manifest(SAMPLE)
    correct = [fusion.predict(model, image=r["image"], audio=r["audio"], text=r["text"]).label == r["label"]
               for r in rows]
    image_only = [fusion.predict(model, image=r["image"]).label == r["label"] for r in rows]
    audio_only = [fusion.predict(model, audio=r["audio"]).label == r["label"] for r in rows]
    print(f"sample of {len(rows)}: all {np.mean(correct):.3f} image {np.mean(image_only):.3f} "
          f"audio {np.mean(audio_only):.3f}")
    assert len(rows) == 50 and np.mean(correct) >= 0.95
    # Floors, not targets: on the full 1,000-row test split image alone is ~92 % and audio alone ~95 %
    # (see assets/models/README.md); 50 rows swing by a few points.
    assert np.mean(image_only) >= 0.8 and np.mean(audio_only) >= 0.85


def test_the_four_shipped_models_predict_as_they_did():
    """Labels (None: abstained) and top probabilities recorded when the models were shipped."""
    recorded = json.loads((SAMPLE.parent.parent / "shipped_predictions.json").read_text())["predictions"]
    rows = read_manifest(SAMPLE)[:25]
    for strategy, expected in recorded.items():
        model = fusion.load_model(MODELS_DIR / f"digits-{strategy}", device="cpu")
        got = [fusion.predict(model, **{m: r[m] for m in given}) for r in rows
               for given in (("image", "audio", "text"), ("image",), ("audio",), ("text",))]
        assert [p.label for p in got] == [label for label, _ in expected], strategy
        assert np.allclose([max(p.probs.values()) for p in got], [prob for _, prob in expected], atol=2e-3), strategy
