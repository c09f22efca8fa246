"""Group fairness: demographic parity difference (DPD) and equalized odds difference (EOD).

For a binary prediction Yhat in {0, 1} and a protected attribute A with groups a:

    DPD = max_a P(Yhat = 1 | A = a) - min_a P(Yhat = 1 | A = a)
    EOD = max( max_a TPR_a - min_a TPR_a ,  max_a FPR_a - min_a FPR_a )
          with TPR_a = P(Yhat = 1 | Y = 1, A = a) and FPR_a = P(Yhat = 1 | Y = 0, A = a)

(fairlearn's `demographic_parity_difference` and `equalized_odds_difference` with
method="between_groups" and agg="worst_case", which compute them here.)

Multiclass labels must never reach fairlearn directly: its DPD silently measures only "predicted
class 1" and its EOD raises. For C > 2 classes kdfair follows the paper's Algorithm 1: for each
class c binarise one-vs-rest (y == c, yhat == c), compute the metric w.r.t. A, and average over
classes:  DPD = (1/C) sum_c DPD_c,  EOD = (1/C) sum_c EOD_c. The rates of all C binarised tasks
come from one pass of (group, class) counts (`one_vs_rest_rates`); tests hold each class's value
equal to fairlearn's on the binarised labels.

A TPR (FPR) is undefined for a group with no positive (negative) examples; fairlearn would
silently count it as 0, so kdfair raises `UndefinedMetricError` instead, naming the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference


class UndefinedMetricError(ValueError):
    """A fairness metric is undefined for this data (an empty group or cell)."""


@dataclass(frozen=True)
class GroupFairness:
    """DPD and EOD of one attribute, as fractions; per-class values for multiclass tasks."""

    dpd: float
    eod: float
    dpd_per_class: np.ndarray | None = None  # (C,), multiclass only
    eod_per_class: np.ndarray | None = None


def _check_inputs(y_true, y_pred, sensitive_features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    groups = np.asarray(sensitive_features)
    if not (y_true.shape == y_pred.shape == groups.shape) or y_true.ndim != 1:
        raise ValueError(
            "y_true, y_pred and sensitive_features must be 1-d arrays of one length, got shapes "
            f"{y_true.shape}, {y_pred.shape} and {groups.shape}."
        )
    if len(np.unique(groups)) < 2:
        raise UndefinedMetricError(
            f"The protected attribute has a single group ({np.unique(groups).tolist()}) in these "
            "predictions, so no difference between groups exists. Check that the right attribute "
            "column was passed, or that the test split contains more than one group."
        )
    return y_true, y_pred, groups


def _check_binary(y: np.ndarray, name: str) -> None:
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(
            f"{name} must be binary (0/1) here, got values {sorted(values)[:10]}. For multiclass "
            "labels use group_fairness(), which binarises them one-vs-rest."
        )


def _check_rates_defined(y_true: np.ndarray, groups: np.ndarray, where: str) -> None:
    for group in np.unique(groups):
        in_group = y_true[groups == group]
        for label, rate in ((1, "true positive rate"), (0, "false positive rate")):
            if not np.any(in_group == label):
                raise UndefinedMetricError(
                    f"{where}: group {str(group)!r} has no examples with label {label}, so its "
                    f"{rate} is undefined and EOD cannot be computed. Use a larger test split."
                )


def binary_dpd(y_true, y_pred, *, sensitive_features) -> float:
    """DPD of binary predictions (see the module docstring); a fraction in [0, 1]."""
    y_true, y_pred, groups = _check_inputs(y_true, y_pred, sensitive_features)
    _check_binary(y_pred, "y_pred")
    return float(demographic_parity_difference(y_true, y_pred, sensitive_features=groups))


def binary_eod(y_true, y_pred, *, sensitive_features, where: str = "EOD") -> float:
    """EOD of binary labels and predictions (worst case of the TPR and FPR gaps)."""
    y_true, y_pred, groups = _check_inputs(y_true, y_pred, sensitive_features)
    _check_binary(y_true, "y_true")
    _check_binary(y_pred, "y_pred")
    _check_rates_defined(y_true, groups, where)
    return float(
        equalized_odds_difference(y_true, y_pred, sensitive_features=groups, agg="worst_case")
    )


def one_vs_rest_rates(y_true, y_pred, groups, num_classes: int) -> dict[str, np.ndarray]:
    """One-vs-rest rates of every (group, class) cell at once, from bincounts: (G, C) arrays

        selection[a, c] = P(Yhat = c | A = a)
        tpr[a, c]       = P(Yhat = c | Y = c, A = a)
        fpr[a, c]       = P(Yhat = c | Y != c, A = a)

    and `groups`, the group values in row order. These are exactly the rates fairlearn computes
    per binarised class (tested against it), without C passes over the data.
    """
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"{name} must hold integer classes in [0, {num_classes}).")
    values, g = np.unique(groups, return_inverse=True)
    cells = len(values) * num_classes

    def count(index: np.ndarray) -> np.ndarray:
        return np.bincount(index, minlength=cells).reshape(len(values), num_classes)

    size = np.bincount(g, minlength=len(values))[:, None]
    predicted = count(g * num_classes + y_pred)
    positives = count(g * num_classes + y_true)
    hits = count((g * num_classes + y_true)[y_true == y_pred])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "groups": values,
            "selection": predicted / size,
            "tpr": hits / positives,
            "fpr": (predicted - hits) / (size - positives),
        }


def _spread(rates: np.ndarray) -> np.ndarray:
    """max - min over groups, per class."""
    return rates.max(axis=0) - rates.min(axis=0)


def multiclass_dpd(y_true, y_pred, *, sensitive_features, num_classes: int):
    """(DPD, per-class DPD or None): direct for 2 classes, one-vs-rest averaged for more."""
    y_true, y_pred, groups = _check_inputs(y_true, y_pred, sensitive_features)
    if num_classes == 2:
        return binary_dpd(y_true, y_pred, sensitive_features=groups), None
    per_class = _spread(one_vs_rest_rates(y_true, y_pred, groups, num_classes)["selection"])
    return float(per_class.mean()), per_class


def multiclass_eod(y_true, y_pred, *, sensitive_features, num_classes: int):
    """(EOD, per-class EOD or None): direct for 2 classes, one-vs-rest averaged for more."""
    y_true, y_pred, groups = _check_inputs(y_true, y_pred, sensitive_features)
    if num_classes == 2:
        return binary_eod(y_true, y_pred, sensitive_features=groups), None
    rates = one_vs_rest_rates(y_true, y_pred, groups, num_classes)
    for name, label in (("tpr", 1), ("fpr", 0)):
        undefined = np.argwhere(np.isnan(rates[name]))
        if len(undefined):
            group, c = undefined[0]
            rate = "true positive rate" if label else "false positive rate"
            raise UndefinedMetricError(
                f"EOD of class {c}: group {str(rates['groups'][group])!r} has no examples with "
                f"label {label}, so its {rate} is undefined and EOD cannot be computed "
                f"({len(undefined)} such cells). Use a larger test split."
            )
    per_class = np.maximum(_spread(rates["tpr"]), _spread(rates["fpr"]))
    return float(per_class.mean()), per_class


def group_fairness(y_true, y_pred, *, sensitive_features, num_classes: int) -> GroupFairness:
    """DPD and EOD w.r.t. one attribute: directly for 2 classes, one-vs-rest averaged for more."""
    dpd, dpd_per_class = multiclass_dpd(
        y_true, y_pred, sensitive_features=sensitive_features, num_classes=num_classes
    )
    eod, eod_per_class = multiclass_eod(
        y_true, y_pred, sensitive_features=sensitive_features, num_classes=num_classes
    )
    return GroupFairness(dpd, eod, dpd_per_class, eod_per_class)
