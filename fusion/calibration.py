"""How well a model's confidence matches its accuracy: the expected calibration error and the bins of a
reliability diagram (Guo et al., 2017), for training's calibration and for evaluation's report."""

from __future__ import annotations

import numpy as np


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict:
    """Expected calibration error and the reliability diagram's bins (equal width): per bin its rows,
    mean confidence and accuracy."""
    edges = np.linspace(0, 1, bins + 1)
    table, error = [], 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            error += inside.mean() * gap
            table.append({"low": round(float(low), 4), "high": round(float(high), 4), "n": int(inside.sum()),
                          "confidence": float(confidence[inside].mean()), "accuracy": float(correct[inside].mean())})
    return {"ece": float(error), "bins": table, "n": int(len(confidence))}
