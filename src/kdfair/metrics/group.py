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
classes:  DPD = (1/C) sum_c DPD_c,  EOD = (1/C) sum_c EOD_c.

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


def _one_vs_rest(
    metric, y_true, y_pred, groups, num_classes: int
) -> tuple[float, np.ndarray | None]:
    if num_classes == 2:
        return metric(y_true, y_pred, groups, "binary"), None
    per_class = np.array(
        [
            metric((y_true == c).astype(int), (y_pred == c).astype(int), groups, f"class {c}")
            for c in range(num_classes)
        ]
    )
    return float(per_class.mean()), per_class


def multiclass_dpd(y_true, y_pred, *, sensitive_features, num_classes: int):
    """(DPD, per-class DPD or None): direct for 2 classes, one-vs-rest averaged for more."""
    y_true, y_pred, groups = _check_inputs(y_true, y_pred, sensitive_features)
    return _one_vs_rest(
        lambda t, p, g, _: binary_dpd(t, p, sensitive_features=g),
        y_true,
        y_pred,
        groups,
        num_classes,
    )


def multiclass_eod(y_true, y_pred, *, sensitive_features, num_classes: int):
    """(EOD, per-class EOD or None): direct for 2 classes, one-vs-rest averaged for more."""
    y_true, y_pred, groups = _check_inputs(y_true, y_pred, sensitive_features)
    return _one_vs_rest(
        lambda t, p, g, where: binary_eod(t, p, sensitive_features=g, where=f"EOD of {where}"),
        y_true,
        y_pred,
        groups,
        num_classes,
    )


def group_fairness(y_true, y_pred, *, sensitive_features, num_classes: int) -> GroupFairness:
    """DPD and EOD w.r.t. one attribute: directly for 2 classes, one-vs-rest averaged for more."""
    dpd, dpd_per_class = multiclass_dpd(
        y_true, y_pred, sensitive_features=sensitive_features, num_classes=num_classes
    )
    eod, eod_per_class = multiclass_eod(
        y_true, y_pred, sensitive_features=sensitive_features, num_classes=num_classes
    )
    return GroupFairness(dpd, eod, dpd_per_class, eod_per_class)
