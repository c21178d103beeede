"""Other users' predictions while one user trains in the Teach tab: /predict latency idle and during training.

    python bench/teach_load.py [--classes 3] [--examples 10] [--json bench/results/teach_load.json]

Starts ``python app.py`` on a free port. A gradio_client user calls /predict (the example 7's picture
and a sentence) back to back, first for ``--idle`` seconds alone, then while a second user, in headless
Chromium, teaches ``--classes`` shape classes with ``--examples`` drawings and descriptions each and
presses Train; only the calls that start and end within the training count. The last line is
``RESULT idle_p95_ms=<a> training_p95_ms=<b> ratio=<b/a> train_s=<s>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from browser import FLAGS, served_app  # noqa: E402 (this folder's click-to-drawn bench)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from corpus import open_app, shape_picture  # noqa: E402 (test helpers)

SHAPES = ("circle", "triangle", "square")
PICTURE = ROOT / "assets" / "examples" / "image_7.png"


class Caller(threading.Thread):
    """Calls /predict back to back until stopped, recording (start, end) of each call in perf_counter s."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        from gradio_client import Client, handle_file

        self.client, self.picture = Client(url, verbose=False), handle_file(str(PICTURE))
        self.calls: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            start = time.perf_counter()
            self.client.predict(self.picture, None, "it's a seven", api_name="/predict")
            self.calls.append((start, time.perf_counter()))


def teach_and_train(url: str, folder: Path, classes: int, examples: int) -> tuple[float, float]:
    """Teach shapes in the page and train -> (perf_counter at the Train click, at the report drawn)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = open_app(browser.new_context(viewport={"width": 1400, "height": 900}), url)
        page.get_by_role("tab", name="Teach").click()
        for shape in SHAPES[:classes]:
            page.get_by_label("New class").fill(shape)
            page.locator("#teach-add-class").click()
            page.wait_for_selector(f".teach-class :text('{shape} · 0 examples')", timeout=30000)
            pictures = [shape_picture(folder / f"{shape}{seed}.png", shape, seed) for seed in range(examples)]
            texts = folder / f"{shape}.txt"
            texts.write_text("\n".join(f"a {shape} drawn in pen, number {n}" for n in range(examples)))
            page.locator("#teach-files input[type=file]").set_input_files([*pictures, texts])
            page.wait_for_selector(f".teach-class :text('{shape} · {2 * examples} examples')", timeout=120000)
        clicked = time.perf_counter()
        page.locator("#teach-train").click()
        page.wait_for_selector("#teach-report :text('Trained in')", timeout=200000)
        return clicked, time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=3, choices=range(2, len(SHAPES) + 1))
    parser.add_argument("--examples", type=int, default=10, help="drawings (and as many texts) per class")
    parser.add_argument("--idle", type=float, default=15, help="seconds of predictions with nobody training")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "teach_load.json"))
    args = parser.parse_args()
    with served_app() as url:
        caller = Caller(url)
        caller.start()
        time.sleep(args.idle)
        idle_end = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            clicked, trained = teach_and_train(url, Path(tmp), args.classes, args.examples)
        caller.stop.set()
        caller.join(timeout=60)

    idle = [(end - start) * 1000 for start, end in caller.calls[1:] if end <= idle_end]  # the first warms up
    training = [(end - start) * 1000 for start, end in caller.calls if start >= clicked and end <= trained]
    print(f"/predict (image + text) back to back; a second user trains {args.classes} classes x "
          f"{2 * args.examples} examples; app, browser and caller on this machine's CPU")
    print(f"{'':<28}{'calls':>7}{'p50 ms':>10}{'p95 ms':>10}")
    for name, values in (("nobody training", idle), ("while a training runs", training)):
        print(f"{name:<28}{len(values):>7}{np.percentile(values, 50):>10.1f}{np.percentile(values, 95):>10.1f}")
    idle_p95, training_p95 = np.percentile(idle, 95), np.percentile(training, 95)
    print(f"training took {trained - clicked:.1f} s from the click to the report")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"idle_ms": idle, "training_ms": training, "train_s": trained - clicked}, indent=1))
    print(f"RESULT idle_p95_ms={idle_p95:.1f} training_p95_ms={training_p95:.1f} ratio={training_p95 / idle_p95:.2f} "
          f"train_s={trained - clicked:.1f}")


if __name__ == "__main__":
    main()
