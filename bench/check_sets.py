"""The model card's *Real world* figures beyond ``evaluate``: per-source accuracy on the handwriting check
set, how well other out-of-distribution scores would separate the OOD check sets, what the OOD target would
cost in real digits, and temperatures per input alone.

    python bench/check_sets.py [--model assets/models/digits-attention] [--digits data/digits]
                               [--checks data/checks]

1. Image alone on ``handwriting.csv``, per image source (``handwriting_sources.csv``): the top class
   (abstentions not counted) and the commonest confusions.
2. One input alone, for each modality: a score's threshold set at the 5 % quantile of the validation
   positives' scores, then the share of the test split's positives below it and of the OOD check set's
   rows below it (abstained on). Scores: the fused top probability (what the model uses), energy
   (log-sum-exp of the logits), the largest logit, and the Mahalanobis distance of the frozen encoder's
   mean-pooled tokens to the nearest class mean of the training split (shared covariance, shrunk;
   Lee et al. 2018), absolute and relative to one Gaussian of all training positives (Ren et al. 2021).
3. The price of the issue's target (95 % of each OOD check set abstained on), one input alone, by the
   fused top probability: the threshold that reaches it on the check set itself (only to see its cost)
   against the calibrated one, and the real digits each gives up (test split; image: also handwriting).
4. A temperature per input alone (fitted on the validation positives, as ``train.calibrate`` fits the
   pooled one) against the pooled one: the expected calibration error of the top class on the test
   split's positives and, for the image, on the handwriting set (abstentions not counted).

Every feature comes from the feature caches beside the manifests (``python -m fusion data digits`` and
``data checks`` build them; the first run encodes what the cache lacks).
"""

from __future__ import annotations

import argparse
import collections
import csv
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fusion.calibration import reliability  # noqa: E402
from fusion.data.manifest import read_manifest  # noqa: E402
from fusion.features import FeatureCache  # noqa: E402
from fusion.pipeline import load_model  # noqa: E402
from fusion.train import fit_temperature, load_split, make_batch, with_modalities  # noqa: E402

QUANTILE = 0.05  # the share of validation positives each score's threshold gives up


@torch.no_grad()
def alone(loaded, manifest: Path, modality: str) -> dict:
    """The rows of ``manifest`` having ``modality``, through it alone -> fused logits (N, C), labels (N,),
    pooled encoder tokens (N, D) and the rows' indices in the manifest."""
    model = loaded.fusion.eval()
    rows = read_manifest(manifest)
    cache = FeatureCache(manifest.resolve().parent / ".features", loaded.encoders, loaded.decode_options)
    split = with_modalities(load_split(cache, rows, loaded.labels, [modality], augment=False, name=None),
                            [modality], model.modalities)
    have = [i for i in range(len(rows)) if split.clean[modality][i] is not None]
    logits = torch.cat([model(make_batch(split, have[s:s + 256], model, None, None)[0]).logits
                        for s in range(0, len(have), 256)])
    pooled = np.stack([split.clean[modality][i]["values"].float().mean(0).numpy() for i in have])
    return {"logits": logits, "labels": split.labels[have], "pooled": pooled, "rows": have}


def mahalanobis(train: dict, classes: int):
    """Scores (higher = more typical) from class means and a shared, shrunk covariance of training positives."""
    x, y = train["pooled"], train["labels"].numpy()
    x, y = x[y >= 0], y[y >= 0]
    means = np.stack([x[y == c].mean(0) for c in range(classes)])

    def precision(centred):
        cov = np.cov(centred.T)
        return np.linalg.inv(cov + 0.01 * np.trace(cov) / len(cov) * np.eye(len(cov)))

    shared, background, centre = precision(x - means[y]), precision(x), x.mean(0)

    def distance(z, mean, p):
        return (((z - mean) @ p) * (z - mean)).sum(1)

    def score(z, relative):
        d = np.min(np.stack([distance(z, m, shared) for m in means], 1), 1)
        return -(d - distance(z, centre, background)) if relative else -d

    return score


def alone_sets(loaded, digits: Path, checks: Path) -> dict:
    """``alone`` of every split and check set, once, per modality -> {modality: {"train", "val", "test",
    "ood", and for the image "handwriting": ``alone``'s dict}}."""
    sets = {}
    for m in loaded.fusion.modalities:
        paths = {"train": digits / "train.csv", "val": digits / "val.csv", "test": digits / "test.csv",
                 "ood": checks / f"ood_{m}.csv"} | ({"handwriting": checks / "handwriting.csv"} if m == "image" else {})
        sets[m] = {name: alone(loaded, path, m) for name, path in paths.items()}
    return sets


def top_probability(logits: torch.Tensor) -> torch.Tensor:
    return logits.softmax(-1).max(-1).values


def positives(data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``alone``'s logits and labels of the rows of a class only."""
    keep = data["labels"] >= 0
    return data["logits"][keep], data["labels"][keep]


def handwriting_by_source(loaded, data: dict, checks: Path) -> None:
    with (checks / "handwriting_sources.csv").open(encoding="utf-8") as f:
        sources = list(csv.DictReader(f))
    pred = data["logits"].argmax(-1)
    hit, n, confused = collections.Counter(), collections.Counter(), collections.Counter()
    for i, p, y in zip(data["rows"], pred.tolist(), data["labels"].tolist()):
        source = sources[i]["image_source"]
        n[source] += 1
        hit[source] += p == y
        if p != y:
            confused[(loaded.labels[y], loaded.labels[p])] += 1
    print("| image source | digits | accuracy (top class) |\n|---|---|---|")
    for source in sorted(n):
        print(f"| {source} | {n[source]} | {hit[source] / n[source]:.3f} |")
    print(f"| all | {sum(n.values())} | {sum(hit.values()) / sum(n.values()):.3f} |")
    print("commonest confusions (true -> read):",
          ", ".join(f"{t}->{p} ({k})" for (t, p), k in confused.most_common(6)), "\n")


def ood_scores(loaded, by_modality: dict) -> None:
    print("| input | score | test positives below (given up) | OOD abstained on |\n|---|---|---|---|")
    for m, sets in by_modality.items():
        maha = mahalanobis(sets["train"], len(loaded.labels))
        scores = {"top probability (used)": lambda d: top_probability(d["logits"]).numpy(),
                  "energy": lambda d: d["logits"].logsumexp(-1).numpy(),
                  "largest logit": lambda d: d["logits"].max(-1).values.numpy(),
                  "Mahalanobis": lambda d, maha=maha: maha(d["pooled"], False),
                  "relative Mahalanobis": lambda d, maha=maha: maha(d["pooled"], True)}
        for name, score in scores.items():
            val = score(sets["val"])[sets["val"]["labels"].numpy() >= 0]
            threshold = np.quantile(val, QUANTILE)
            test = score(sets["test"])[sets["test"]["labels"].numpy() >= 0]
            print(f"| {m} | {name} | {np.mean(test < threshold):.1%} | {np.mean(score(sets['ood']) < threshold):.1%} |")


REAL = ("test", "handwriting")  # the sets of real digits, where a modality has them


def target_price(model, sets: dict) -> None:
    print("\n| input | threshold | value | OOD abstained on | real digits given up |\n|---|---|---|---|---|")
    for m, s in sets.items():
        ood = top_probability(s["ood"]["logits"])
        for rule, threshold in (("calibrated", model.abstain_below([m])), ("95 % of OOD", float(ood.quantile(0.95)))):
            given_up = " / ".join(f"{name} {(top_probability(positives(s[name])[0]) < threshold).float().mean():.1%}"
                                  for name in REAL if name in s)
            print(f"| {m} | {rule} | {threshold:.3f} | {(ood < threshold).float().mean():.1%} | {given_up} |")


def own_temperatures(model, sets: dict) -> None:
    pooled = float(model.temperature)  # the logits are already divided by it
    print(f"\n| input | set | own temperature (pooled {pooled:.3f}) | ECE, pooled | ECE, own |\n|---|---|---|---|---|")
    for m, s in sets.items():
        logits, labels = positives(s["val"])
        own = fit_temperature(logits * pooled, labels)
        for name in (name for name in REAL if name in s):
            logits, labels = positives(s[name])
            ece = []
            for t in (pooled, own):
                confidence, guess = (logits * pooled / t).softmax(-1).max(-1)
                ece.append(reliability(confidence.numpy(), (guess == labels).numpy())["ece"])
            print(f"| {m} | {name} | {own:.3f} | {ece[0]:.1%} | {ece[1]:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "assets" / "models" / "digits-attention"))
    parser.add_argument("--digits", default=str(ROOT / "data" / "digits"))
    parser.add_argument("--checks", default=str(ROOT / "data" / "checks"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.model, device="cpu")
    sets = alone_sets(loaded, Path(args.digits), Path(args.checks))
    handwriting_by_source(loaded, sets["image"]["handwriting"], Path(args.checks))
    ood_scores(loaded, sets)
    target_price(loaded.fusion, sets)
    own_temperatures(loaded.fusion, sets)


if __name__ == "__main__":
    main()
