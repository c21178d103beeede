"""Do reduced-precision encoders change the answers? Predictions with fp32 encoders against fp16 (CUDA's
serving default) or bf16 autocast, on the same decoded inputs of a manifest.

    python bench/precision.py [--manifest tests/data/digits_sample/test.csv] [--device cuda]
                              [--dtype float16|bfloat16] [--json bench/results/precision.json]

Default dtype: float16 on CUDA (what serving uses there), bfloat16 on CPU (CPU serving is fp32; bf16
is the low-precision path a CPU would take). Rows go through ``predict_items`` in batches of 32 with
every modality the row has. Prints agreement of the predicted labels, the largest change of the top
probability and of a modality weight, and ends with exactly
``RESULT device=<cpu|cuda> dtype=<dtype> rows=<n> agreement=<fraction> max_prob_diff=<float>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.data.manifest import read_manifest  # noqa: E402
from fusion.modalities import decode_inputs  # noqa: E402
from fusion.pipeline import predict_items  # noqa: E402


def run(model, batch: list[dict], precision: torch.dtype) -> list:
    for encoder in model.encoders.values():
        encoder.precision = precision
    return predict_items(model, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", default=str(ROOT / "tests" / "data" / "digits_sample" / "test.csv"))
    parser.add_argument("--model", help="model folder (default: the shipped default)")
    parser.add_argument("--device")
    parser.add_argument("--dtype", choices=["float16", "bfloat16"])
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "precision.json"))
    args = parser.parse_args()
    model = fusion.load_model(args.model, device=args.device)
    device = model.device
    dtype = getattr(torch, args.dtype or ("float16" if device.type == "cuda" else "bfloat16"))
    rows = read_manifest(args.manifest)
    agree, prob_diff, weight_diff, disagreements = 0, 0.0, 0.0, []
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        batch = [decode_inputs(model.encoders, decode_options=model.decode_options, image=r["image"] or None,
                               audio=r["audio"] or None, text=r["text"] or None)[0] for r in chunk]
        full, low = run(model, batch, torch.float32), run(model, batch, dtype)
        for row, a, b in zip(chunk, full, low):
            agree += a.label == b.label
            prob_diff = max(prob_diff, max(abs(a.probs[k] - b.probs[k]) for k in a.probs))
            if a.modality_weights and b.modality_weights:
                weight_diff = max(weight_diff, max(abs(a.modality_weights[m] - b.modality_weights[m])
                                                   for m in a.modality_weights))
            if a.label != b.label:
                disagreements.append({"row": row, "fp32": a.label, str(dtype): b.label})
    result = {"device": device.type, "dtype": str(dtype).replace("torch.", ""), "rows": len(rows),
              "agreement": agree / max(1, len(rows)), "max_prob_diff": prob_diff, "max_weight_diff": weight_diff,
              "disagreements": disagreements[:20], "model": model.strategy}
    print(f"{'rows':>6} {'agreement':>10} {'max |Δp|':>10} {'max |Δweight|':>14}")
    print(f"{len(rows):>6} {result['agreement']:>10.4f} {prob_diff:>10.2e} {weight_diff:>14.2e}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"RESULT device={result['device']} dtype={result['dtype']} rows={len(rows)} "
          f"agreement={result['agreement']:.4f} max_prob_diff={prob_diff:.2e}")


if __name__ == "__main__":
    main()
