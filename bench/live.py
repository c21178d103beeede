"""The live preview's rate in the real page, and what asynchronous fusion saves per frame, in one run.

    python bench/live.py [--seconds 20] [--json bench/results/live.json]

Starts ``python app.py`` on a free port and Debian's Chromium (headless) with a fake camera showing the
example 7 with a sensor's noise (every frame differs, so every frame is encoded, as with a real camera).
The text box holds a sentence; the Live tab's webcam streams for ``--seconds`` and every update of the
live notes line is counted. In the same process, on the same kind of frames: ``LiveFusion.update`` (only
the new frame encoded, then fused with the cached recording and text tokens) against ``fusion.predict``
with all three re-encoded, the synchronous baseline. The last line is
``RESULT live_updates_per_s=<x> update_p50_ms=<y> predict_p50_ms=<z> ratio=<z/y>``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from browser import FLAGS, fake_media, served_app  # noqa: E402 (this folder's click-to-drawn bench)
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from corpus import open_app, write_y4m  # noqa: E402 (test helpers)

import fusion  # noqa: E402
from fusion.live import LiveFusion  # noqa: E402

EXAMPLES = ROOT / "assets" / "examples"
TEXT = "it's a seven"


def live_updates(url: str, video: Path, mic: Path, seconds: float) -> list[float]:
    """Times (s since the first) of each live update drawn in the page while the webcam streams."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS + [
            f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={mic}"])
        page = open_app(browser.new_context(viewport={"width": 1400, "height": 900},
                                            permissions=["camera", "microphone"]), url)
        page.get_by_placeholder("e.g.").fill(TEXT)
        page.get_by_role("tab", name="Live").click()
        page.locator("#live-webcam").get_by_text("Click to Access Webcam").click()
        page.wait_for_function("() => document.querySelector('#live-webcam video')?.readyState >= 2", timeout=30000)
        page.locator("#live-webcam").get_by_role("button", name="capture photo").click()
        page.wait_for_function("() => document.querySelector('#live-info')?.innerText.includes('encoded')",
                               timeout=60000)
        # Counted in the page, so the polling of this script cannot miss or slow an update.
        return page.evaluate("""seconds => new Promise(done => {
            // The notes of an update ("84 ms: encoded image 80 ms, fused 3 ms."), without the progress timer;
            // two updates with equal notes count once, so the rate is if anything understated.
            const info = document.querySelector('#live-info'), times = [];
            const notes = () => (info.innerText.match(/\\d+ ms: encoded[^.]*\\./) || [''])[0];
            let last = notes();
            const start = performance.now();
            new MutationObserver(() => {
                const now = notes();
                if (now && now !== last) { times.push((performance.now() - start) / 1000); last = now; }
            }).observe(info, {subtree: true, childList: true, characterData: true});
            setTimeout(() => done(times), seconds * 1000);
        })""", seconds)


def in_process(clip: Path, frames: int) -> tuple[list[float], list[float]]:
    """(LiveFusion.update per new frame, fusion.predict of all three per frame) in ms."""
    model = fusion.load_model(device="cpu")
    base = np.asarray(Image.open(EXAMPLES / "image_7.png").convert("RGB").resize((640, 480)), np.float32)
    rng = np.random.default_rng(0)
    noisy = [np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(frames + 1)]
    live, update_ms, predict_ms = LiveFusion(model), [], []
    for i, frame in enumerate(noisy):
        start = time.perf_counter()
        live.update(image=frame, audio=str(clip), text=TEXT)
        if i:
            update_ms.append((time.perf_counter() - start) * 1000)
    for i, frame in enumerate(noisy):
        start = time.perf_counter()
        fusion.predict(model, image=frame, audio=str(clip), text=TEXT)
        if i:
            predict_ms.append((time.perf_counter() - start) * 1000)
    assert live.encodes == {"image": frames + 1, "audio": 1, "text": 1}, live.encodes
    return update_ms, predict_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--frames", type=int, default=40, help="frames for the in-process comparison")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "live.json"))
    args = parser.parse_args()
    with served_app() as url, tempfile.TemporaryDirectory() as tmp:
        _, mic, _, clip = fake_media(Path(tmp))
        video = write_y4m(EXAMPLES / "image_7.png", Path(tmp) / "noisy.y4m", noise=3.0)
        times = live_updates(url, video, mic, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        _, _, _, clip = fake_media(Path(tmp))
        update_ms, predict_ms = in_process(clip, args.frames)

    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    gaps = np.diff(times) * 1000 if len(times) > 1 else np.array([0.0])
    update, predicted = statistics.median(update_ms), statistics.median(predict_ms)
    print(f"{args.seconds:.0f} s of streaming, 1400x900 headless Chromium, app and browser on this machine's CPU")
    print(f"{'':<52}{'p50 ms':>10}{'p95 ms':>10}")
    for name, values in (("live: between two updates drawn in the page", gaps),
                         ("LiveFusion.update: new frame + cached audio, text", update_ms),
                         ("fusion.predict: all three encoded (baseline)", predict_ms)):
        print(f"{name:<52}{np.percentile(values, 50):>10.1f}{np.percentile(values, 95):>10.1f}")
    print(f"{len(times)} updates drawn: {rate:.1f} per s; predict / update = {predicted / update:.2f}x")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"update_times_s": times, "update_ms": update_ms, "predict_ms": predict_ms}, indent=1))
    print(f"RESULT live_updates_per_s={rate:.2f} update_p50_ms={update:.1f} predict_p50_ms={predicted:.1f} "
          f"ratio={predicted / update:.2f}")


if __name__ == "__main__":
    main()
