"""Per-encoder latency at batch 1 and 8, and Whisper on the clip's real length vs padded to 30 s.

    python bench/encoders.py [--device cpu|cuda] [--runs 30] [--json out.json]

Prints a table (median and p95 milliseconds) and writes JSON. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latency import measure, whisper_padded30  # noqa: E402  (bench/ is on the path when run as a script)

from fusion.encoders import DEFAULT_SPECS, load_encoder, resolve_device  # noqa: E402

SENTENCE = "well I think the number you are looking for is seven"  # 10 words
SECONDS = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", default="bench/results/encoders.json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    photo = np.full((480, 640, 3), 230, np.uint8)
    photo[150:330, 300:340] = 30  # a "1" on paper, so the digit crop has something to find
    t = np.arange(int(16000 * SECONDS)) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)

    shipped_audio = "audio 3 s (Whisper base, 4 layers, shipped)"
    start = time.perf_counter()
    encoders = {
        "image 224 px (center crop)": load_encoder("image", {"name": "efficientnet-lite0", "size": 224,
                                                             "preprocessing": "center"}, device),
        "image 128 px, digit crop, 15 blocks (shipped)": load_encoder("image", DEFAULT_SPECS["image"], device),
        shipped_audio: load_encoder("audio", DEFAULT_SPECS["audio"], device),
        "audio 3 s (Whisper tiny.en)": load_encoder("audio", "whisper-tiny.en", device),
        "text 10 words (MiniLM-L6)": load_encoder("text", "all-minilm-l6-v2", device),
    }
    load_seconds = time.perf_counter() - start
    inputs = {"image": photo, "audio": (16000, speech), "text": SENTENCE}

    rows = []
    for name, encoder in encoders.items():
        item = inputs[encoder.modality]
        for batch in (1, 8):
            result = measure(lambda e=encoder, b=[item] * batch: e.encode(b), args.runs, device)
            rows.append({"encoder": name, "batch": batch, **result})
    whisper = encoders[shipped_audio]
    padded = measure(lambda: whisper_padded30(whisper, [inputs["audio"]]), max(5, args.runs // 3), device)
    trimmed = next(r for r in rows if r["encoder"] == shipped_audio and r["batch"] == 1)
    ratio = padded["p50_ms"] / trimmed["p50_ms"]

    print(f"device={device} threads={torch.get_num_threads()} load_all_encoders={load_seconds:.2f}s")
    print(f"{'encoder':<46}{'batch':>6}{'p50 ms':>10}{'p95 ms':>10}")
    for r in rows:
        print(f"{r['encoder']:<46}{r['batch']:>6}{r['p50_ms']:>10.1f}{r['p95_ms']:>10.1f}")
    print(f"{'audio 3 s padded to 30 s (naive, base)':<46}{1:>6}{padded['p50_ms']:>10.1f}{padded['p95_ms']:>10.1f}")
    print(f"Whisper trimmed vs padded: {ratio:.1f}x faster")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "load_seconds": load_seconds, "rows": rows,
                               "whisper_padded": padded, "whisper_ratio": ratio}, indent=1))


if __name__ == "__main__":
    main()
