"""Asynchronous fusion (fusion.live): a new input is encoded once, the others' tokens are reused, and the
result is the one a full prediction gives on the same inputs."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import fusion
from fusion.errors import InputError
from fusion.live import LiveFusion, LiveSession
from fusion.serving import TAUGHT, FusionService, shipped_models

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


@pytest.fixture(scope="module")
def model():
    return fusion.load_model(device="cpu")


def frames(n: int) -> list[np.ndarray]:
    """The example 7 as a webcam would send it: n frames, each with its own sensor noise."""
    base = np.asarray(Image.open(EXAMPLES / "image_7.png").convert("RGB"), np.float32)
    rng = np.random.default_rng(0)
    return [np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def test_only_what_changed_is_encoded_and_the_result_matches_a_full_prediction(model):
    live, speech = LiveFusion(model), str(EXAMPLES / "speech_7.wav")
    shots = frames(3)
    for shot in shots:
        p = live.update(image=shot, audio=speech, text="it's a seven")
    assert live.encodes == {"image": 3, "audio": 1, "text": 1} and p.label == "7"
    full = fusion.predict(model, image=shots[-1], audio=speech, text="it's a seven")
    assert max(abs(p.probs[c] - full.probs[c]) for c in model.labels) < 1e-4
    assert p.modality_weights == pytest.approx(full.modality_weights, abs=1e-4)

    p = live.update(image=shots[-1], audio=None, text="a three")  # the recording removed, the text changed
    assert p.modalities == ["image", "text"] and live.encodes == {"image": 3, "audio": 1, "text": 2}
    with pytest.raises(InputError, match="Nothing to fuse"):
        live.update(image=None, audio=None, text=" ")


def test_the_live_handler_says_problems_in_its_notes_line():
    service = FusionService({"attention": shipped_models()["attention"]}, device="cpu")
    tab, other = SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    label, notes, counted = service.live(tab, "attention", frames(1)[0], None, "seven", None)
    assert max(label, key=label.get) == "7" and "encoded image" in notes and "weight" in counted
    _, notes, _ = service.live(tab, "attention", frames(2)[1], None, "seven", None)
    assert "encoded image" in notes and "text" not in notes.split("encoded")[1]
    _, notes, _ = service.live(other, "attention", frames(2)[1], None, "seven", None)  # its own tokens
    assert "text" in notes.split("encoded")[1]
    service.end_live(tab)
    assert set(service.live_sessions) == {"b"}
    label, notes, counted = service.live(tab, TAUGHT, frames(1)[0], None, "", None)
    assert label is None and "train one in the Teach tab" in notes and counted == ""


def test_live_fuses_with_a_taught_model(tmp_path):
    from corpus import shape_picture

    from fusion.teach import Project

    service = FusionService({"attention": shipped_models()["attention"]}, device="cpu")
    project = Project.like(service.models["attention"])
    try:
        for shape in ("circle", "triangle"):
            project.add_class(shape)
            for seed in range(3):
                project.add_example(shape, image=str(shape_picture(tmp_path / f"{shape}{seed}.png", shape, seed)))
        project.train()
        frame = np.asarray(Image.open(shape_picture(tmp_path / "new.png", "triangle", seed=42)).convert("RGB"))
        label, notes, counted = service.live(SimpleNamespace(session_hash="a"), TAUGHT, frame, None, "", project)
        assert max(label, key=label.get) == "triangle"
        assert service.live_sessions["a"].fusion.model.fusion is project.model
    finally:
        project.close()


def test_frames_handled_at_once_share_one_session(model):
    import threading

    session = LiveSession()
    threads = [threading.Thread(target=session.update, args=(model,), kwargs={"image": shot, "text": "seven"})
               for shot in frames(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.fusion.encodes == {"image": 4, "text": 1}
