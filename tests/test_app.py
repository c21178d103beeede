"""The web app: handlers on odd inputs, the /predict API through gradio_client, and a real browser."""

import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

import app
from fusion.serving import FusionService, shipped_models

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
SCREENSHOT = Path(__file__).resolve().parent.parent / "assets" / "screenshot.png"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def service():
    return FusionService(shipped_models(), device="cpu")


@pytest.fixture(scope="module")
def example_inputs():
    image = np.asarray(Image.open(EXAMPLES / "image_7.png").convert("RGB"))
    samples, rate = soundfile.read(EXAMPLES / "speech_7.wav", dtype="int16")
    return image, (rate, samples), "it's a seven"


def fuse(service, image=None, audio=None, text=None, strategy=None, corrupt=(0.0, 0.0, 0.0)):
    return service.fuse(strategy or service.default, image, audio, text, True, True, True, *corrupt)


def test_all_shipped_strategies_are_served(service):
    assert set(service.models) == {"attention", "cross", "late", "concat"}


@pytest.mark.parametrize("given", ["i", "a", "t", "ia", "it", "at", "iat"])
def test_every_subset_of_modalities(service, example_inputs, given):
    image, audio, text = example_inputs
    out = fuse(service, image if "i" in given else None, audio if "a" in given else None,
               text if "t" in given else None)
    label, chart, crop_map, original_map, audio_map, words, what_if, info = out
    assert max(label, key=label.get) == "7"
    assert chart.ndim == 3 and len(what_if) == 2 ** len(given) - 1
    assert (crop_map is not None) == ("i" in given) and (audio_map is not None) == ("a" in given)
    assert bool(words) == ("t" in given) and "ms on CPU" in info


@pytest.mark.parametrize("strategy", ["attention", "cross", "late", "concat"])
def test_each_strategy_answers(service, example_inputs, strategy):
    label = fuse(service, *example_inputs, strategy=strategy)[0]
    assert max(label, key=label.get) == "7"


@pytest.mark.parametrize("inputs", [
    {},  # nothing
    {"audio": (16000, np.zeros(32000, np.int16))},  # silent audio only
    {"text": "   "},
    {"image": np.zeros((1, 1, 3), np.uint8)},
    {"audio": (16000, np.random.default_rng(0).normal(0, 0.1, 16000 * 60).astype(np.float32))},  # 60 s
    {"text": "seven " * 1700},  # 10,000 characters
    {"audio": (16000, np.full(16000, np.nan, np.float32)), "text": "eight"},
    {"audio": (44100, np.random.default_rng(1).normal(0, 0.1, (44100, 2)).astype(np.float32))},
    {"image": np.zeros((5, 5), np.uint8), "audio": (8000, np.array([1], np.int16))},
])
def test_odd_inputs_give_a_prediction_or_a_message(service, inputs):
    out = fuse(service, inputs.get("image"), inputs.get("audio"), inputs.get("text"))  # must not raise
    assert len(out) == 8  # a full set of outputs (all None when only a warning was shown)


def test_undecodable_upload_is_a_warning_not_an_error(service, tmp_path):
    bogus = tmp_path / "photo.png"
    bogus.write_bytes(b"%PDF-1.4 not an image")
    with pytest.warns(UserWarning, match="as an image"):  # gr.Warning outside a request is a warning
        out = fuse(service, str(bogus), None, "seven")
    assert out[0] is None  # nothing predicted, nothing raised
    with pytest.raises(Exception, match="Nothing to predict"):
        service.api_predict(None, None, "")


def test_corruption_and_conflict_move_the_weights(service, example_inputs):
    image, audio, text = example_inputs
    model = service.models[service.default]  # per example; the reports give the test-set means per strategy
    from fusion import predict

    clean = predict(model, image=image, audio=audio, text=text)
    noisy = predict(model, image=image, audio=audio, text=text, corruption={"image": 1.0})
    assert noisy.label == "7" and noisy.modality_weights["image"] < clean.modality_weights["image"] / 2
    conflict_image = np.asarray(Image.open(EXAMPLES / "conflict_image_3.png").convert("RGB"))
    conflict = predict(model, image=conflict_image, audio=audio, text=text)
    assert conflict.label == "7" and conflict.unimodal["image"]["label"] == "3"


def test_compare_runs_every_strategy(service, example_inputs):
    rows, chart = service.compare(*example_inputs, True, True, True, 0.0, 0.0, 0.0)
    assert [r[0] for r in rows] == list(service.models) and all(r[1] == "7" for r in rows)
    assert chart.ndim == 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(service):
    os.environ["FUSION_CACHE_EXAMPLES"] = "0"
    demo = app.build_demo(service)
    demo.queue(max_size=64, default_concurrency_limit=2)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size="20mb", css=app.CSS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_api_predict_with_gradio_client(server):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    result = client.predict(handle_file(str(EXAMPLES / "image_3.png")), handle_file(str(EXAMPLES / "speech_3.wav")),
                            "um probably a 3", api_name="/predict")
    assert result["label"] == "3" and result["modalities"] == ["image", "audio", "text"]
    assert set(result["modality_weights"]) == {"image", "audio", "text"}
    text_only = client.predict(None, None, "it's a nine", api_name="/predict")
    assert text_only["label"] == "9" and text_only["modalities"] == ["text"]
    with pytest.raises(Exception, match="Nothing to predict"):
        client.predict(None, None, "", api_name="/predict")
    again = client.predict(None, None, "two", api_name="/predict")  # still serving after the error
    assert again["label"] == "2"


def write_y4m(image_path: Path, out: Path, width: int = 640, height: int = 480, frames: int = 10) -> Path:
    """A Y4M clip of a still picture for Chromium's fake camera (header says C420: Chromium rejects the
    C420mpeg2 that ffmpeg writes)."""
    rgb = np.asarray(Image.open(image_path).convert("RGB").resize((width, height)), dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.257 * r + 0.504 * g + 0.098 * b + 16
    u = (-0.148 * r - 0.291 * g + 0.439 * b + 128).reshape(height // 2, 2, width // 2, 2).mean((1, 3))
    v = (0.439 * r - 0.368 * g - 0.071 * b + 128).reshape(height // 2, 2, width // 2, 2).mean((1, 3))
    planes = b"".join(np.clip(p, 0, 255).astype(np.uint8).tobytes() for p in (y, u, v))
    out.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420\n".encode() + b"FRAME\n".join(
        [b""] + [planes] * frames))
    return out


def test_real_browser_end_to_end(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian's chromium is not installed (run_tests.sh installs it when run as root)")
    video = write_y4m(EXAMPLES / "image_7.png", tmp_path / "digit.y4m")
    speech, rate = soundfile.read(EXAMPLES / "speech_7.wav", dtype="float32")
    wav = tmp_path / "speech.wav"  # the word, then a second of silence (Chromium loops the file)
    soundfile.write(wav, np.concatenate([speech, np.zeros(rate, np.float32)]), rate, subtype="PCM_16")
    flags = BROWSER_FLAGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                             f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={wav}"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_context(viewport={"width": 1440, "height": 900},
                                   permissions=["camera", "microphone"]).new_page()
        page.goto(server, wait_until="networkidle")
        page.get_by_text("Click to Access Webcam").click()
        page.wait_for_function("() => { const v = document.querySelector('video');"
                               " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=30000)
        page.get_by_label("capture photo").click()
        page.wait_for_selector("[data-testid='image'] img, .image-frame img", timeout=30000)
        page.get_by_role("button", name="Record", exact=True).click()
        time.sleep(2.5)
        page.get_by_role("button", name="Stop", exact=True).first.click()
        page.wait_for_function("() => !document.querySelector('#fuse-button').disabled", timeout=30000)
        page.get_by_placeholder("e.g.").fill("the number seven")
        page.locator("#fuse-button").click()
        page.wait_for_selector("#info p", timeout=60000)
        label = page.locator("#prediction").inner_text()
        assert "7" in label.split("\n")[1]
        for chart in ("#weights-chart img", "#audio-map img"):
            assert page.locator(chart).evaluate("img => img.complete && img.naturalWidth > 100")
        assert page.locator("#words").inner_text().strip()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(tmp_path / "screenshot.png"))
        browser.close()
    if os.environ.get("FUSION_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(tmp_path / "screenshot.png", SCREENSHOT)
