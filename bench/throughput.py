"""Model requests per second against batch size (1..8 on CPU, 1..64 on CUDA).

    python bench/throughput.py [--device cpu|cuda] [--seconds 5] [--json bench/results/throughput.json]

A request is the latency benchmark's one (photo-like digit, 3 s of speech, a 10-word sentence), decoded
once; each batch goes through ``predict_items`` (every encoder once over the batch, fusion with
Shapley explanations for every row): the model compute a batched GPU endpoint does per call.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.modalities import decode_inputs  # noqa: E402
from fusion.pipeline import predict_items  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from latency import SENTENCE, request_files  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device")
    parser.add_argument("--seconds", type=float, default=5.0, help="time spent per batch size")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "throughput.json"))
    args = parser.parse_args()
    model = fusion.load_model(device=args.device)
    device = model.device
    sizes = [1, 2, 4, 8, 16, 32, 64] if device.type == "cuda" else [1, 2, 4, 8]
    with tempfile.TemporaryDirectory() as tmp:
        image, audio = request_files(Path(tmp))
        items, _ = decode_inputs(model.encoders, decode_options=model.decode_options, image=image, audio=audio,
                                 text=SENTENCE)
    rows = []
    for size in sizes:
        batch = [items] * size
        predict_items(model, batch)  # warm-up
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds or done < 3 * size:
            predict_items(model, batch)
            done += size
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        rows.append({"batch": size, "requests_per_s": done / elapsed, "ms_per_batch": elapsed / (done / size) * 1000})
    print(f"device={device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}) "
          f"threads={torch.get_num_threads()} model={model.strategy}")
    print(f"{'batch':>6}{'requests/s':>14}{'ms/batch':>12}")
    for r in rows:
        print(f"{r['batch']:>6}{r['requests_per_s']:>14.1f}{r['ms_per_batch']:>12.1f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
