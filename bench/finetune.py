"""End-to-end learning, measured: the fusion head alone (frozen encoders) against ``train --finetune``.

    python bench/finetune.py [--data data/digits-small] [--variants frozen image:1 image:2 text:1]
                             [--epochs 20] [--threads 1] [--cache /tmp/ft-cache-bench] [--out /tmp/ft-bench]

For each variant: ``fusion.train.train`` on the data's train/val split (attention fusion, the TrainConfig
defaults otherwise), then on its test split the accuracy for each modality alone and all three
(``fusion.evaluate``, no robustness sweeps), the model folder's size (config, head, fine-tuned blocks) and
the latency of ``fusion.predict`` with explanations (all three inputs, p50 after a warm-up; once every
variant is trained, all models loaded in one process and timed in turn, request by request, so that a
neighbour's load on a shared machine falls on all of them alike).

features_s: computing what the cache lacks (the frozen run pays for every encoder's tokens; a fine-tuned
run only for the prefix of its encoder, the others' tokens being cached already); fit_s: the epochs
(training steps and each epoch's validation). Torch runs on ``--threads`` threads so runs on a shared
machine stay comparable. The last line is ``RESULT variant:train_s/fit_s/size_mb/p50_ms/image/audio/text/all ...``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.config import TrainConfig  # noqa: E402
from fusion.data.manifest import read_manifest  # noqa: E402
from fusion.evaluate import evaluate  # noqa: E402
from fusion.train import train  # noqa: E402

MODEL_FILES = ("config.json", "*.safetensors")


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for pattern in MODEL_FILES for p in folder.glob(pattern)) / 2 ** 20


def predict_p50(model_dirs: dict[str, Path], rows: list[dict], runs: int) -> dict[str, float]:
    """{variant: p50 ms of fusion.predict}, the models timed in turn on the same requests."""
    loaded = {v: fusion.load_model(d, device="cpu") for v, d in model_dirs.items()}
    inputs = [{m: row[m] for m in ("image", "audio", "text") if row[m]} for row in rows]
    times: dict[str, list[float]] = {v: [] for v in loaded}
    for i in range(runs + 2):  # the first two are a warm-up
        for v, model in loaded.items():
            start = time.perf_counter()
            fusion.predict(model, **inputs[i % len(inputs)])
            if i >= 2:
                times[v].append((time.perf_counter() - start) * 1000)
    return {v: statistics.median(t) for v, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "digits-small"))
    parser.add_argument("--variants", nargs="+", default=["frozen", "image:1", "image:2", "text:1"])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30, help="fusion.predict requests timed per variant")
    parser.add_argument("--cache", default="/tmp/ft-cache-bench")
    parser.add_argument("--out", default="/tmp/ft-bench")
    parser.add_argument("--json", help="also write the results there")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    test_rows = read_manifest(data / "test.csv")

    results = {}
    for variant in args.variants:
        name = variant.replace(":", "")
        finetune = None if variant == "frozen" else variant
        cfg = TrainConfig(fusion="attention", epochs=args.epochs, finetune=finetune)
        start = time.perf_counter()
        log = train(data / "train.csv", data / "val.csv", out / name, cfg, cache_dir=args.cache)["log"]
        train_s = time.perf_counter() - start
        fit_s = sum(entry["seconds"] for entry in log)
        metrics = evaluate(out / name, data / "test.csv", out / name / "report", cache_dir=args.cache,
                           latency_rows=1, robustness=False)
        accuracy = {k: metrics["subsets"][k]["accuracy"] for k in ("image", "audio", "text", "image+audio+text")}
        results[variant] = {"train_s": round(train_s, 1), "features_s": round(train_s - fit_s, 1),
                            "fit_s": round(fit_s, 1), "epochs": len(log), "size_mb": round(folder_mb(out / name), 2),
                            "accuracy": {k: round(v, 3) for k, v in accuracy.items()}}
        print(json.dumps({variant: results[variant]}), flush=True)
    latency = predict_p50({v: out / v.replace(":", "") for v in results}, test_rows, args.runs)
    for variant, p50 in latency.items():
        results[variant]["p50_ms"] = round(p50, 1)

    sizes = [len(read_manifest(data / f"{split}.csv")) for split in ("train", "val")]
    print(f"\n{data.name}: train {sizes[0]} / val {sizes[1]} / test {len(test_rows)} rows, attention fusion, up to "
          f"{args.epochs} epochs, {args.threads} torch thread(s)")
    print("| variant | features s | fit s (epochs, s/epoch) | model folder MB | predict p50 ms | test acc. image | "
          "audio | text | all three |")
    print("|---|---|---|---|---|---|---|---|---|")
    for variant, r in results.items():
        a = r["accuracy"]
        print(f"| {variant} | {r['features_s']} | {r['fit_s']} ({r['epochs']}, {r['fit_s'] / r['epochs']:.2f}) | "
              f"{r['size_mb']} | {r['p50_ms']} | {a['image']:.3f} | {a['audio']:.3f} | {a['text']:.3f} | "
              f"{a['image+audio+text']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print("RESULT " + " ".join(
        f"{v}:{r['train_s']}/{r['fit_s']}/{r['size_mb']}/{r['p50_ms']}/" + "/".join(
            f"{x:.3f}" for x in r["accuracy"].values()) for v, r in results.items()))


if __name__ == "__main__":
    main()
