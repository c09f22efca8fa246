"""Accuracy and per-class accuracy.

accuracy = (1/N) sum_i [yhat_i = y_i]
per_class_accuracy[c] = sum_i [yhat_i = y_i, y_i = c] / sum_i [y_i = c]   (NaN for an absent class)
"""

from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(
            f"y_true and y_pred must be non-empty 1-d arrays of equal length, got shapes "
            f"{y_true.shape} and {y_pred.shape}"
        )
    return float(np.mean(y_true == y_pred))


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes,) float64; NaN where a class has no test example."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    totals = np.bincount(y_true, minlength=num_classes).astype(float)
    hits = np.bincount(y_true[y_true == y_pred], minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / totals, np.nan)
