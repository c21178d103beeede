"""Click to drawn in the real page, against the model's own time, in one run.

    python bench/browser.py [--runs 20] [--json bench/results/browser.json]

Starts ``python app.py`` on a free port and Debian's Chromium (headless) with a fake camera showing the
example 7 and a fake microphone saying "seven". The page's webcam takes a photo, the microphone records
2.5 s, a text is typed; then Fuse is clicked ``--runs`` times, each time timing click -> every panel drawn
(prediction, notes, the counted table, the image and audio maps, words, what-if). In the same process,
on the same kind of inputs: ``fusion.predict`` with explanations, and the server-side drawing of the
panels (``fusion.views``). The last line is
``RESULT click_to_drawn_p50_ms=<x> predict_p50_ms=<y> ratio=<x/y> figures_p50_ms=<z>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.views import counted_html, maps_html, what_if_html, words_html  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from corpus import capture_and_record, open_app, start_webcam, wait_until_serving, write_y4m  # noqa: E402 (test helpers)

EXAMPLES = ROOT / "assets" / "examples"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream"]
TEXTS = ("the number seven", "it's a seven")  # alternated: a run is drawn once its words are shown
DRAWN = """words => {
  const shown = document.querySelector('#words .fl-words');
  if (!shown || shown.innerText.replace(/\\s+/g, ' ').trim() !== words) return false;
  if (document.querySelector('.pending')) return false;
  return [...document.querySelectorAll('#maps img')].every(i => i.complete && i.naturalWidth > 0)
      && document.querySelector('#counted table') && document.querySelector('#what-if table');
}"""


def p50(times: list[float]) -> float:
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_app(log: list[str] | None = None):
    """``python app.py`` on a free port, as the README starts it -> its URL while the block runs; ``log``
    collects its output lines."""
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = log if log is not None else []
    threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True).start()  # never a full pipe
    try:
        if not wait_until_serving(server, f"http://127.0.0.1:{port}/"):
            raise RuntimeError("the app exited or did not answer within 180 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=30)


def fake_media(folder: Path) -> tuple[Path, Path, Path, Path]:
    """(Y4M camera clip, WAV for the microphone, the same photo as PNG, 2.5 s of the speech as WAV)."""
    video = write_y4m(EXAMPLES / "image_7.png", folder / "digit.y4m")
    speech, rate = soundfile.read(EXAMPLES / "speech_7.wav", dtype="float32")
    mic = folder / "mic.wav"
    soundfile.write(mic, np.concatenate([speech, np.zeros(rate, np.float32)]), rate, subtype="PCM_16")
    photo = folder / "photo.png"
    Image.open(EXAMPLES / "image_7.png").convert("RGB").resize((640, 480)).save(photo)
    clip = folder / "clip.wav"
    soundfile.write(clip, np.pad(speech, (0, max(0, int(2.5 * rate) - len(speech))))[: int(2.5 * rate)], rate)
    return video, mic, photo, clip


def click_to_drawn(url: str, video: Path, mic: Path, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS + [
            f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={mic}"])
        page = open_app(browser.new_context(viewport={"width": 1400, "height": 900},
                                            permissions=["camera", "microphone"]), url)
        start_webcam(page)
        capture_and_record(page)
        box = page.get_by_placeholder("e.g.")
        for i in range(runs + 1):  # the first run warms up the server and the page
            box.fill(TEXTS[i % 2])
            start = time.perf_counter()
            page.locator("#fuse-button").click()
            page.wait_for_function(DRAWN, arg=TEXTS[i % 2], timeout=60000, polling=5)
            if i:
                times.append((time.perf_counter() - start) * 1000)
        assert "from image, audio, text" in page.locator("#info").inner_text(), "not all three inputs were fused"
        browser.close()
    return times


def in_process(photo: Path, clip: Path, runs: int) -> tuple[list[float], list[float]]:
    """(fusion.predict with explanations, drawing the panels of its prediction) in ms."""
    model = fusion.load_model(device="cpu")
    predict_times, figure_times = [], []
    for i in range(runs + 1):
        start = time.perf_counter()
        p = fusion.predict(model, image=photo, audio=clip, text=TEXTS[i % 2])
        drawn = time.perf_counter()
        counted_html(p), maps_html(p), words_html(p), what_if_html(p)
        if i:
            predict_times.append((drawn - start) * 1000)
            figure_times.append((time.perf_counter() - drawn) * 1000)
    return predict_times, figure_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "browser.json"))
    args = parser.parse_args()
    log: list[str] = []
    with served_app(log) as url, tempfile.TemporaryDirectory() as tmp:
        video, mic, photo, clip = fake_media(Path(tmp))
        browser_times = click_to_drawn(url, video, mic, args.runs)
        handler_times = [json.loads(line.split(" fusion.serving ", 1)[1])["ms"] for line in log
                         if '"event": "fuse"' in line][1:]  # the server's own time in the Fuse handler
        predict_times, figure_times = in_process(photo, clip, args.runs)

    drawn, predicted, figures = p50(browser_times), p50(predict_times), p50(figure_times)
    print(f"runs={args.runs}, 1400x900 headless Chromium, app and browser on this machine's CPU")
    print(f"{'stage':<48}{'p50 ms':>10}{'max ms':>10}")
    for name, times in (("click -> every panel drawn (browser)", browser_times),
                        ("  of which the server's Fuse handler", handler_times),
                        ("fusion.predict with explanations (in process)", predict_times),
                        ("figures: drawing the panels (server side)", figure_times)):
        print(f"{name:<48}{p50(times):>10.1f}{max(times):>10.1f}")
    print(f"figures / predict = {figures / predicted:.1%}; click -> drawn / predict = {drawn / predicted:.2f}x")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"click_to_drawn_ms": browser_times, "handler_ms": handler_times,
                               "predict_ms": predict_times,
                               "figures_ms": figure_times}, indent=1))
    print(f"RESULT click_to_drawn_p50_ms={drawn:.1f} predict_p50_ms={predicted:.1f} ratio={drawn / predicted:.2f} "
          f"figures_p50_ms={figures:.1f}")


if __name__ == "__main__":
    main()
