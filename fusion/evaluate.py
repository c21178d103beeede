"""Evaluate a model folder on a manifest: subsets, robustness to corruption, conflicts, cost.

    python -m fusion evaluate --model DIR --manifest TEST.csv --report OUT/

Writes ``report.md``, ``metrics.json`` and PNG plots. Accuracy counts an abstention on a real example as
a miss; rows with an empty label (negatives, e.g. an out-of-distribution check set) report the share
abstained on. Calibration: the expected calibration error and a reliability diagram of the fused
prediction. Robustness follows MultiBench: accuracy against
corruption severity 0..1 per modality, and its area under the curve ("relative robustness"), with every
other modality clean and, with three or more modalities, with a single clean partner (the "pairs"
figure: MultiBench's two-modality setting, which does not saturate when two clean modalities agree).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from . import modalities as registry  # noqa: E402
from .calibration import reliability  # noqa: E402
from .data.manifest import read_manifest  # noqa: E402
from .features import FeatureCache  # noqa: E402
from .pipeline import load_model, predict  # noqa: E402
from .train import SplitFeatures, load_split, make_batch, with_modalities  # noqa: E402

SEVERITIES = [round(0.1 * i, 1) for i in range(11)]
ABSTAINED = -2  # a prediction of none of the classes (a negative row's label is train.NEGATIVE, -1)


@torch.no_grad()
def run(model, split: SplitFeatures, rows: list[int], batch: int = 250) -> dict:
    """Predictions (ABSTAINED where the calibrated model abstains), confidences, modality weights and labels
    for ``rows`` of a split."""
    preds, confidences, weights, labels = [], [], [], []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        tokens, y, _, _ = make_batch(split, chunk, model, None, None)
        out = model(tokens)
        confidence, pred = out.probs.max(-1)
        preds.append(torch.where(model.abstained(out), ABSTAINED, pred))
        confidences.append(confidence)
        labels.append(y)
        if out.modality_weights is not None:
            weights.append(out.modality_weights)
    if not rows:
        return {"pred": np.zeros(0, int), "confidence": np.zeros(0), "label": np.zeros(0, int), "weights": None}
    return {"pred": torch.cat(preds).numpy(), "confidence": torch.cat(confidences).numpy(),
            "label": torch.cat(labels).numpy(), "weights": torch.cat(weights).numpy() if weights else None}


def macro_f1(pred: np.ndarray, label: np.ndarray, classes: int) -> float:
    scores = []
    for c in range(classes):
        tp = np.sum((pred == c) & (label == c))
        denominator = np.sum(pred == c) + np.sum(label == c)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def evaluate(model_dir, manifest, report_dir, cache_dir=None, device="cpu", latency_rows: int = 20,
             robustness: bool = True) -> dict:
    """Write the report of a model folder on a manifest; ``robustness=False`` skips the corruption
    sweeps and the conflict test (the slow part: every input re-encoded at 11 severities)."""
    loaded = load_model(model_dir, device)
    model = loaded.fusion.to("cpu")
    modalities = list(model.modalities)
    rows_data = read_manifest(manifest)
    cache = FeatureCache(cache_dir or Path(manifest).resolve().parent / ".features", loaded.encoders,
                         loaded.decode_options)
    split = load_split(cache, rows_data, loaded.labels, modalities, augment=False, name="test")
    negatives = [i for i, row in enumerate(rows_data) if row["label"] is None]
    complete = [i for i, row in enumerate(rows_data) if row["label"] is not None
                and all(split.clean[m][i] is not None for m in modalities)]
    classes = len(loaded.labels)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    metrics: dict = {"model": str(model_dir), "data": Path(manifest).name, "strategy": model.strategy_name,
                     "rows": len(rows_data),
                     "complete_rows": len(complete), "negative_rows": len(negatives)}

    # 1. Every non-empty subset of modalities, clean inputs; negatives: the share abstained on.
    subsets, pooled = {}, []
    for keep in registry.subsets(modalities):
        kept = with_modalities(split, keep, modalities)
        rows = [i for i in range(len(rows_data)) if rows_data[i]["label"] is not None
                and all(split.clean[m][i] is not None for m in keep)]
        r = run(model, kept, rows)
        pooled.append(r)
        subsets["+".join(keep)] = {"accuracy": float(np.mean(r["pred"] == r["label"])) if rows else None,
                                   "macro_f1": macro_f1(r["pred"], r["label"], classes), "n": len(rows),
                                   "abstained": float(np.mean(r["pred"] == ABSTAINED)) if rows else None}
        # Negatives with exactly these modalities: an out-of-distribution check set's rows.
        only = [i for i in negatives if {m for m in modalities if split.clean[m][i] is not None} == set(keep)]
        if only:
            subsets["+".join(keep)]["negatives"] = {"n": len(only), "abstained": float(np.mean(
                run(model, kept, only)["pred"] == ABSTAINED))}
        if len(keep) == len(modalities):
            clean_all = r
    metrics["subsets"] = subsets
    metrics["calibration"] = {
        "config": model.config.get("calibration", {}),
        "all_modalities": reliability(clean_all["confidence"], clean_all["pred"] == clean_all["label"]),
        "every_subset": reliability(np.concatenate([r["confidence"] for r in pooled]),
                                    np.concatenate([r["pred"] == r["label"] for r in pooled]))}
    confusion = np.zeros((classes, classes + 1), dtype=int)  # the last column: abstained
    np.add.at(confusion, (clean_all["label"], np.where(clean_all["pred"] == ABSTAINED, classes, clean_all["pred"])), 1)
    metrics["confusion"] = confusion.tolist()
    clean_weights = None if clean_all["weights"] is None else clean_all["weights"].mean(0)

    # 2. Corruption sweeps: one modality corrupted at severity s, the others clean. With three or more
    # modalities two clean ones nearly always suffice, so the sweep is also run with the corrupted one
    # and a single clean partner: MultiBench's two-modality setting, where fusion must pick whom to trust.
    sweeps = {}
    for mi, m in enumerate(modalities if robustness else []):
        partners = [o for o in modalities if o != m] if len(modalities) >= 3 else []
        accs, mean_w, pair_accs = [], [], {o: [] for o in partners}
        for s in SEVERITIES:
            corrupted = cache.tokens(m, [rows_data[i][m] for i in complete], s, complete, progress=f"{m} s={s}")
            column = [None] * len(rows_data)
            for i, f in zip(complete, corrupted):
                column[i] = f
            r = run(model, SplitFeatures(split.labels, {**split.clean, m: column}, {}, {}), complete)
            accs.append(float(np.mean(r["pred"] == r["label"])))
            mean_w.append(None if r["weights"] is None else float(r["weights"][:, mi].mean()))
            for o in partners:
                pair = {**with_modalities(split, [o], modalities).clean, m: column}
                r = run(model, SplitFeatures(split.labels, pair, {}, {}), complete)
                pair_accs[o].append(float(np.mean(r["pred"] == r["label"])))
        sweeps[m] = {"accuracy": accs, "mean_weight": mean_w,
                     "relative_robustness": float(np.trapezoid(accs, SEVERITIES)),
                     "with_one_other": {o: {"accuracy": a, "relative_robustness": float(np.trapezoid(a, SEVERITIES))}
                                        for o, a in pair_accs.items()}}
    metrics["corruption"] = sweeps
    metrics["mean_relative_robustness"] = (float(np.mean([s["relative_robustness"] for s in sweeps.values()]))
                                           if sweeps else None)
    pair_aucs = [p["relative_robustness"] for s in sweeps.values() for p in s["with_one_other"].values()]
    metrics["mean_relative_robustness_pairs"] = float(np.mean(pair_aucs)) if pair_aucs else None

    # 3. Conflicts: one modality names another class (a real sample of it); the other two agree.
    conflicts = {}
    if len(modalities) >= 3 and robustness:
        labels = split.labels.numpy()
        for mi, m in enumerate(modalities):
            column = [None] * len(rows_data)
            for k, i in enumerate(complete):
                # the next complete row (cyclically) whose label differs: deterministic, every class appears
                j = next(complete[(k + d) % len(complete)] for d in range(1, len(complete))
                         if labels[complete[(k + d) % len(complete)]] != labels[i])
                column[i] = split.clean[m][j]
            r = run(model, SplitFeatures(split.labels, {**split.clean, m: column}, {}, {}), complete)
            conflicts[m] = {"accuracy_vs_agreeing_pair": float(np.mean(r["pred"] == r["label"])),
                            "mean_weight_odd_one": None if r["weights"] is None else float(r["weights"][:, mi].mean()),
                            "clean_mean_weight": None if clean_weights is None else float(clean_weights[mi])}
    metrics["conflict"] = conflicts

    # 4. Cost: parameters and latency through the serving path (fusion.predict).
    metrics["parameters"] = {"fusion": sum(p.numel() for p in model.parameters()),
                             **{m: sum(p.numel() for p in e.parameters()) for m, e in loaded.encoders.items()}}
    latencies = []
    for i in complete[:latency_rows]:
        row = rows_data[i]
        start = time.perf_counter()
        predict(loaded, **{m: row[m] for m in loaded.fusion.modalities})
        latencies.append((time.perf_counter() - start) * 1000)
    metrics["latency_ms"] = {"p50": float(np.median(latencies)) if latencies else None,
                             "device": str(loaded.device), "requests": len(latencies)}

    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    plot_report(metrics, loaded.labels, report_dir)
    (report_dir / "report.md").write_text(render_report(metrics))
    return metrics


def plot_report(metrics: dict, labels: list[str], out: Path) -> None:
    sweeps = metrics["corruption"]
    if sweeps:  # evaluate(robustness=False) has none: no robustness plot
        pairs = any(s["with_one_other"] for s in sweeps.values())
        fig, axes = plt.subplots(1, 3 if pairs else 2, figsize=(15 if pairs else 10, 3.6))
        for m, s in sweeps.items():
            axes[0].plot(SEVERITIES, s["accuracy"], marker="o", label=m)
            if s["mean_weight"][0] is not None:
                axes[1].plot(SEVERITIES, s["mean_weight"], marker="o", label=m)
            for o, p in s["with_one_other"].items():
                axes[2].plot(SEVERITIES, p["accuracy"], marker=".", label=f"{m} corrupted, {o} clean")
        # Accuracy axes start at the lowest accuracy rounded down to 0.05 (at most 0.9): near-1 curves stay apart.
        accuracies = [a for s in sweeps.values() for c in (s, *s["with_one_other"].values()) for a in c["accuracy"]]
        floor = min(0.9, np.floor(min(accuracies) * 20) / 20)
        axes[0].set(title="Accuracy, one modality corrupted", xlabel="severity", ylabel="accuracy", ylim=(floor, 1.005))
        axes[1].set(title="Weight of the corrupted modality", xlabel="severity", ylabel="mean weight", ylim=(0, 1))
        if pairs:
            axes[2].set(title="Accuracy, corrupted + one clean modality", xlabel="severity", ylabel="accuracy",
                        ylim=(floor, 1.005))
        for ax in axes:
            ax.grid(alpha=0.3)
            if ax.lines:  # concat has no weights to plot
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "robustness.png", dpi=110)
        plt.close(fig)

    confusion = np.array(metrics["confusion"])
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(confusion, cmap="Blues")
    ax.set(xticks=range(len(labels) + 1), yticks=range(len(labels)), xticklabels=[*labels, "none"],
           yticklabels=labels, xlabel="predicted (none: abstained)", ylabel="true", title="Confusion (all modalities)")
    for (i, j), v in np.ndenumerate(confusion):
        if v:
            ax.text(j, i, v, ha="center", va="center", fontsize=7, color="white" if v > confusion.max() / 2 else "k")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharey=True)
    for ax, (name, diagram) in zip(axes, [("all modalities", metrics["calibration"]["all_modalities"]),
                                          ("every subset", metrics["calibration"]["every_subset"])]):
        bins = diagram["bins"]
        ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins],
               width=[b["high"] - b["low"] for b in bins], color="#4C72B0", edgecolor="white", label="accuracy")
        ax.plot([0, 1], [0, 1], color="#C44E52", linestyle="--", label="perfect calibration")
        ax.set(title=f"{name}: ECE {diagram['ece']:.1%} (n={diagram['n']})", xlabel="confidence", xlim=(0, 1),
               ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy in the bin")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)

    subsets = {k: v for k, v in metrics["subsets"].items() if v["accuracy"] is not None}
    if not subsets:  # a manifest of negatives only (an out-of-distribution check set)
        return
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(list(subsets), [s["accuracy"] for s in subsets.values()], color="#4C72B0")
    ax.set(xlim=(min(0.8, min(s["accuracy"] for s in subsets.values())), 1), xlabel="accuracy",
           title="Accuracy by modalities given")
    fig.tight_layout()
    fig.savefig(out / "subsets.png", dpi=110)
    plt.close(fig)


def render_report(metrics: dict) -> str:
    lines = [f"# Evaluation: {metrics['strategy']} ({metrics['model']})", "",
             f"{metrics['rows']} test rows ({metrics['complete_rows']} with every modality).", "",
             "## Accuracy by modalities given", "",
             "Abstaining on a real example counts as a miss; negatives: rows with an empty label and exactly these "
             "modalities.", "",
             "| modalities | accuracy | macro-F1 | n | abstained | negatives abstained on (n) |",
             "|---|---|---|---|---|---|"]
    for k, v in metrics["subsets"].items():
        negatives = f"{v['negatives']['abstained']:.1%} ({v['negatives']['n']})" if "negatives" in v else "—"
        lines.append(f"| {k} | {fmt(v['accuracy'], '.4f')} | {v['macro_f1']:.4f} | {v['n']} | "
                     f"{fmt(v['abstained'], '.1%')} | {negatives} |")
    calibration = metrics["calibration"]
    lines += ["", "![subsets](subsets.png) ![confusion](confusion.png)", "", "## Calibration", "",
              "Expected calibration error of the fused prediction (15 bins): "
              f"{calibration['all_modalities']['ece']:.2%} with every modality, "
              f"{calibration['every_subset']['ece']:.2%} over every subset of them. The model's "
              f"calibration: {json.dumps(calibration['config']) if calibration['config'] else 'none'}.", "",
              "![reliability](reliability.png)", ""]
    if metrics["corruption"]:
        lines += render_robustness(metrics)
    p = metrics["parameters"]
    lines += ["## Cost", "", "Parameters: " + ", ".join(f"{k} {v:,}" for k, v in p.items()), "",
              f"Latency through `fusion.predict` (files decoded, explanations on): p50 "
              f"{fmt(metrics['latency_ms']['p50'], '.1f')} ms on {metrics['latency_ms']['device']} "
              f"over {metrics['latency_ms']['requests']} requests.", ""]
    return "\n".join(lines)


def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render_robustness(metrics: dict) -> list[str]:
    lines = ["## Robustness: one modality corrupted (others clean)", "",
              "| modality | " + " | ".join(f"s={s}" for s in SEVERITIES) + " | relative robustness (AUC) |",
              "|---" * (len(SEVERITIES) + 2) + "|"]
    for m, s in metrics["corruption"].items():
        lines.append(f"| {m} acc | " + " | ".join(f"{a:.3f}" for a in s["accuracy"]) +
                     f" | {s['relative_robustness']:.4f} |")
        if s["mean_weight"][0] is not None:
            lines.append(f"| {m} weight | " + " | ".join(f"{w:.3f}" for w in s["mean_weight"]) + " | |")
    lines += ["", f"Mean relative robustness: **{metrics['mean_relative_robustness']:.4f}**", ""]
    if metrics["mean_relative_robustness_pairs"] is not None:
        lines += ["### One modality corrupted, one other clean (the rest absent)", "",
                  "| corrupted, clean | " + " | ".join(f"s={s}" for s in SEVERITIES) + " | relative robustness (AUC) |",
                  "|---" * (len(SEVERITIES) + 2) + "|"]
        for m, s in metrics["corruption"].items():
            for o, p in s["with_one_other"].items():
                lines.append(f"| {m}, {o} | " + " | ".join(f"{a:.3f}" for a in p["accuracy"]) +
                             f" | {p['relative_robustness']:.4f} |")
        lines += ["", f"Mean relative robustness over these pairs: **{metrics['mean_relative_robustness_pairs']:.4f}**",
                  ""]
    lines += ["![robustness](robustness.png)", "", "## Conflicts: one modality names another digit", "",
              "| odd modality | accuracy w.r.t. the agreeing pair | its mean weight | its clean weight |",
              "|---|---|---|---|"]
    for m, c in metrics["conflict"].items():
        w = "—" if c["mean_weight_odd_one"] is None else f"{c['mean_weight_odd_one']:.3f}"
        cw = "—" if c["clean_mean_weight"] is None else f"{c['clean_mean_weight']:.3f}"
        lines.append(f"| {m} | {c['accuracy_vs_agreeing_pair']:.4f} | {w} | {cw} |")
    return lines + [""]


def summary_table(reports: dict[str, dict]) -> str:
    """One markdown row per evaluated model: subset accuracies, what fusing all modalities adds over the
    best single one, robustness, conflicts, cost."""
    first = next(iter(reports.values()))
    subsets = list(first["subsets"])
    singles = [s for s in subsets if "+" not in s]
    header = (["strategy"] + subsets + ["fused − best single", "mean rel. robustness", "… with one clean partner"] +
              [f"{m} pure noise → acc / weight" for m in first["corruption"]] +
              [f"{m} conflict → acc / weight" for m in first["conflict"]] + ["params", "p50 ms"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in reports.items():
        cells = [name] + [f"{r['subsets'][s]['accuracy']:.4f}" for s in subsets]
        gain = r["subsets"][subsets[-1]]["accuracy"] - max(r["subsets"][s]["accuracy"] for s in singles)
        cells.append(f"{100 * gain:+.1f} pt")
        for robust in (r["mean_relative_robustness"], r["mean_relative_robustness_pairs"]):
            cells.append("—" if robust is None else f"{robust:.4f}")
        for s in r["corruption"].values():
            w = s["mean_weight"]
            cells.append(f"{s['accuracy'][-1]:.3f} / " + ("—" if w[-1] is None else f"{w[-1]:.2f} (clean {w[0]:.2f})"))
        for c in r["conflict"].values():
            w = c["mean_weight_odd_one"]
            cells.append(f"{c['accuracy_vs_agreeing_pair']:.3f} / " +
                         ("—" if w is None else f"{w:.2f} (clean {c['clean_mean_weight']:.2f})"))
        cells += [f"{r['parameters']['fusion'] / 1e6:.2f} M", f"{r['latency_ms']['p50']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
