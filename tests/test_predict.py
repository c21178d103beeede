"""The one predict path and the CLI, on a model folder with untrained fusion weights (real encoders)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

import fusion

ROOT = Path(__file__).resolve().parent.parent

LABELS = [str(i) for i in range(10)]
KEYS = {"label", "probs", "strategy", "modalities", "modality_weights", "contributions", "unimodal", "timings_ms"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    image = np.full((120, 160, 3), 235, np.uint8)
    image[30:90, 70:85] = 20
    Image.fromarray(image).save(folder / "digit.png")
    t = np.arange(16000) / 16000
    soundfile.write(folder / "tone.wav", (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16), 16000)
    (folder / "notes.txt").write_text("not audio")
    return folder


def test_predict_all_modalities_from_files(model, files):
    p = fusion.predict(model, image=files / "digit.png", audio=files / "tone.wav", text="it's a seven")
    assert p.label in LABELS and p.modalities == ["image", "audio", "text"]
    assert sum(p.probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert sum(p.modality_weights.values()) == pytest.approx(1.0, abs=1e-4)
    assert len(p.subsets) == 7 and {"image", "audio", "text", "fusion", "total"} <= set(p.timings_ms)
    assert p.token_weights["image"]["grid"] == [4, 4]
    assert p.token_weights["text"]["tokens"][:3] == ["[CLS]", "it", "'"]
    assert sum(p.token_weights["audio"]["weights"]) == pytest.approx(1.0, abs=1e-4)
    json.dumps(p.to_dict())  # plain Python all the way down


@pytest.mark.parametrize("given", [{"image"}, {"audio"}, {"text"}, {"image", "text"}, {"audio", "text"}])
def test_any_subset(model, files, given):
    inputs = {"image": files / "digit.png", "audio": (16000, np.zeros(8000, np.float32) + 0.1), "text": "seven"}
    p = fusion.predict(model, **{k: v for k, v in inputs.items() if k in given})
    assert set(p.modalities) == given
    assert set(p.contributions) == given and len(p.subsets) == 2 ** len(given) - 1


def test_nothing_or_only_unusable_input_is_a_clear_error(model, files):
    with pytest.raises(fusion.InputError, match="at least one"):
        fusion.predict(model)
    with pytest.raises(fusion.InputError, match="silent"):
        fusion.predict(model, audio=(16000, np.zeros(16000, np.int16)), text="   ")
    with pytest.raises(fusion.InputError, match="as audio"):
        fusion.predict(model, audio=files / "notes.txt")
    with pytest.raises(fusion.InputError, match="does not exist"):
        fusion.predict(model, image=files / "missing.png")


def test_cli_report(model_dir, files, tmp_path, capsys):
    from fusion.__main__ import main

    assert main(["predict", "--model", str(model_dir), "--image", str(files / "digit.png"), "--text", "seven",
                 "--json", "--report", str(tmp_path / "report")]) == 0
    assert json.loads(capsys.readouterr().out)["modalities"] == ["image", "text"]  # stdout stays one JSON line
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "image_regions.png", "prediction.json", "report.html", "your_picture.png"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fusion", *args], capture_output=True, text=True, timeout=300)


def test_cli_json(model_dir, files):
    result = run_cli("predict", "--model", str(model_dir), "--image", str(files / "digit.png"), "--audio",
                     str(files / "tone.wav"), "--text", "the number 7", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert KEYS <= set(payload) and payload["modalities"] == ["image", "audio", "text"]
    human = run_cli("predict", "--model", str(model_dir), "--text", "seven")
    assert human.returncode == 0 and "prediction:" in human.stdout and "contribution" in human.stdout


@pytest.mark.parametrize("args, message", [
    (["--image", "nope.png"], "does not exist"),
    (["--audio", "NOTES"], "as audio"),
    ([], "Nothing to predict"),
])
def test_cli_bad_input_exits_2_without_traceback(model_dir, files, args, message):
    args = [str(files / "notes.txt") if a == "NOTES" else a for a in args]
    result = run_cli("predict", "--model", str(model_dir), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("model", ["/no/such/folder", "someone/not-in-the-cache"])
def test_the_app_refuses_an_unusable_model_in_one_line(model, tmp_path):
    started = subprocess.run([sys.executable, str(ROOT / "app.py"), "--model", model], capture_output=True,
                             text=True, timeout=300, cwd=tmp_path)
    assert started.returncode == 2 and started.stderr.count("\n") == 1, started.stderr
    assert started.stderr.startswith("error: ") and "Traceback" not in started.stderr
