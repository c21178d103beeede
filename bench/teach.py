"""Few-shot teaching, measured: the digits task taught as a user teaches in the browser (``fusion.teach``),
from k examples per class with all three inputs drawn from the training split, scored on the test split.

    python bench/teach.py [--data data/digits] [--k 1 3 5 10] [--seed 0]
    python bench/teach.py --negatives 20 [--checks data/checks]   # and "none of these" examples

Builds the small digits dataset (10 training images per class) into --data if it is missing. train_s is
what the Train button takes once the examples are encoded: the cross-validation folds and the final model.
With --negatives, that many of the training split's negative rows (no digit, all their inputs) are taught
as "none of these"; the table then adds the share of test triplets the model calls none and of the
out-of-distribution check sets (``python -m fusion data checks``) it abstains on, one input each.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.data.manifest import read_manifest  # noqa: E402
from fusion.teach import Example, Project  # noqa: E402
from fusion.train import abstention_shares, validation_score  # noqa: E402

CHECKS = {"ood_image": "image", "ood_audio": "audio", "ood_text": "text"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "digits"))
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", default="attention")
    parser.add_argument("--negatives", type=int, default=0, help="'none of these' examples from the training split")
    parser.add_argument("--checks", default=str(ROOT / "data" / "checks"))
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "train.csv").is_file():
        subprocess.run([sys.executable, "-m", "fusion", "data", "digits", "--size", "small", "--out", str(data)],
                       check=True, cwd=ROOT)
    train_rows, test_rows = read_manifest(data / "train.csv"), read_manifest(data / "test.csv")
    loaded = fusion.load_model(device="cpu")
    labels = sorted({row["label"] for row in train_rows} - {None})
    print(f"{len(test_rows)} test rows; strategy {args.strategy}; {args.negatives} examples of none")
    abstaining = ["test called none", *(f"{name} abstained" for name in CHECKS)] if args.negatives else []
    columns = ["k", "examples", "encode s", "train s", "fused", "image", "audio", "text", "CV fused", *abstaining]
    print(f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}")
    for k in args.k:
        rng = random.Random(args.seed)
        project = Project.like(loaded)
        for label in labels:
            project.add_class(label)
        started = time.perf_counter()
        for label in labels:
            for row in rng.sample([r for r in train_rows if r["label"] == label], k):
                project.add_example(label, image=row["image"], audio=row["audio"], text=row["text"])
        for row in rng.sample([r for r in train_rows if r["label"] is None], args.negatives):
            project.add_example(None, **{m: row[m] for m in CHECKS.values() if row[m]})
        encode_s = time.perf_counter() - started
        started = time.perf_counter()
        report = project.train(args.strategy, seed=args.seed)
        train_s = time.perf_counter() - started
        test = [Example(-1, row["label"], {m: row[m] for m in ("image", "audio", "text")}) for row in test_rows]
        test_split = project.split(test, list(project.model.modalities))
        scores = validation_score(project.model, test_split)
        cv = report.cv_accuracy.get("image+audio+text")
        shares = []  # none without a calibrated abstention (k = 1: no fold to calibrate on): "—"
        if report.abstention:
            shares.append(abstention_shares([(project.model, test_split)])["positives_given_up"]["image+audio+text"])
            for name, modality in CHECKS.items():
                rows = read_manifest(Path(args.checks) / f"{name}.csv")
                split = project.split([Example(-1, None, {modality: row[modality]}) for row in rows],
                                      list(project.model.modalities))
                shares.append(abstention_shares([(project.model, split)])["negatives_abstained"][modality])
        print(f"| {k} | {len(project.examples)} | {encode_s:.1f} | {train_s:.1f} | {scores['image+audio+text']:.3f} | "
              f"{scores['image']:.3f} | {scores['audio']:.3f} | {scores['text']:.3f} | "
              f"{'—' if cv is None else f'{cv:.3f}'} |" + "".join(f" {share:.1%} |" for share in shares)
              + " — |" * (len(abstaining) - len(shares)))
        print(f"RESULT k={k} train_s={train_s:.1f} acc={scores['image+audio+text']:.4f} "
              f"acc_image={scores['image']:.4f} acc_audio={scores['audio']:.4f} acc_text={scores['text']:.4f}",
              flush=True)
        project.close()


if __name__ == "__main__":
    main()
