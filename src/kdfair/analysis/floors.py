"""Disparity floors: how much DPD and EOD a model scores when its errors ignore the attribute.

DPD and EOD are max-minus-min statistics over groups, so on a finite test split they are above
zero even for a model whose errors are independent of the protected attribute A: each (group,
class) cell's rate carries binomial noise, and the worst gap among G groups grows with it. The
floor of a model's metric m is its expectation under that null, estimated by permutation:

    floor(m) = (1/P) sum_{p=1..P} m(y, yhat, pi_p(A))

where pi_p shuffles the attribute values among the test examples *of the same true class*
(labels and predictions stay fixed). Within-class shuffling keeps every (group, true class) count,
so the labels' own disparity and each class's error rate are unchanged; only a dependence of the
errors on A given the class is broken. DPD's floor is therefore close to, but not the same as,
the labels' own DPD (the predictions' class rates move with accuracy). Reported per model:

    excess = m - floor(m)                              (the disparity beyond sampling noise)
    perm_p = (1 + #{p : m_p >= m}) / (P + 1)           (one-sided permutation p-value)

The same P shuffles serve every model of a sweep (they share the test split), so floors of
different models are paired. Vectorised: one (P, N) array of shuffled group codes per attribute,
then per model two bincounts give every shuffle's (group, class) cells at once; the rates and
spreads are kdfair.analysis.bootstrap's count formulas (the same as kdfair.metrics.group).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdfair.analysis.bootstrap import group_metrics_from_counts
from kdfair.analysis.load import Sweep
from kdfair.metrics.catalog import FLOOR_SUFFIXES, floored
from kdfair.predictions import Predictions

PERMUTATIONS = 200


def within_class_shuffles(
    y_true: np.ndarray, codes: np.ndarray, permutations: int, seed: int
) -> np.ndarray:
    """(permutations, N) group codes: row p gives example i the code of a random example of
    its own true class (each row a uniform permutation within every class)."""
    rng = np.random.default_rng(seed)
    y_true = np.asarray(y_true)
    by_class = np.argsort(y_true, kind="stable")  # examples grouped by class, in order
    # Sorting class + U(0, 1) groups examples by class in a random order within each class.
    shuffled = np.argsort(y_true[None, :] + rng.random((permutations, len(y_true))), axis=1)
    out = np.empty((permutations, len(y_true)), dtype=np.int64)
    out[:, by_class] = np.asarray(codes)[shuffled]
    return out


def _cells(y_true, y_pred, shuffles: np.ndarray, groups: int, num_classes: int):
    """(size, positives, predicted, hits) cell counts, shapes (1, G, 1), (1, G, C), (P, G, C)."""
    permutations = len(shuffles)
    cells = groups * num_classes
    offset = (np.arange(permutations) * cells)[:, None]
    codes = shuffles[0]
    size = np.bincount(codes, minlength=groups).reshape(1, groups, 1).astype(float)
    positives = np.bincount(codes * num_classes + y_true, minlength=cells)
    positives = positives.reshape(1, groups, num_classes).astype(float)
    flat = (offset + shuffles * num_classes + y_pred[None, :]).ravel()
    correct = np.broadcast_to(y_true == y_pred, shuffles.shape).ravel()
    shape = (permutations, groups, num_classes)
    predicted = np.bincount(flat, minlength=permutations * cells).reshape(shape)
    hits = np.bincount(flat, weights=correct, minlength=permutations * cells).reshape(shape)
    return size, positives, predicted.astype(float), hits


def model_floors(
    predictions: Predictions,
    shuffles: dict[str, np.ndarray],
    num_classes: int,
    observed: dict[str, float],
) -> dict[str, float]:
    """<metric>_floor, _excess and _perm_p for every dpd_/eod_ metric in `observed`
    (the model's results.csv values), from the attribute shuffles of its test split."""
    out: dict[str, float] = {}
    y_true = np.asarray(predictions.y_true, np.int64)
    y_pred = np.asarray(predictions.y_pred, np.int64)
    for attr, rows in shuffles.items():
        groups = int(rows.max()) + 1
        dpd, eod = group_metrics_from_counts(*_cells(y_true, y_pred, rows, groups, num_classes))
        for metric, values in ((f"dpd_{attr}", dpd), (f"eod_{attr}", eod)):
            if metric not in observed:
                continue
            value = observed[metric]
            finite = values[np.isfinite(values)]
            if not np.isfinite(value) or finite.size == 0:
                out.update(dict.fromkeys(_derived(metric), np.nan))
                continue
            floor = float(finite.mean())
            # A tolerance for float ties: a shuffle scoring the observed value counts as >=.
            at_least = int(np.sum(finite >= value - 1e-12))
            p = (1 + at_least) / (finite.size + 1)
            out.update(dict(zip(_derived(metric), (floor, value - floor, p), strict=True)))
    return out


def _derived(metric: str) -> list[str]:
    return [metric + suffix for suffix in FLOOR_SUFFIXES]


def floors(sweep: Sweep, *, permutations: int = PERMUTATIONS, seed: int = 0) -> pd.DataFrame:
    """floors.csv: one row per model (index aligned with sweep.results): model, seed, role,
    temperature, model_key and <metric>_floor, _excess, _perm_p for every DPD and EOD column.
    Empty (no metric columns) for a sweep without protected attributes."""
    metrics = floored(sweep.results.columns)
    frame = sweep.results[["label", "seed", "role", "temperature", "model_key"]].rename(
        columns={"label": "model"}
    )
    if not metrics:
        return frame
    shuffled: dict[tuple, dict[str, np.ndarray]] = {}  # one set of shuffles per test split
    rows = []
    for _, row in sweep.results.iterrows():
        predictions = sweep.predictions(row)
        split = (
            predictions.y_true.tobytes(),
            *(c.tobytes() for c in predictions.attributes.values()),
        )
        if split not in shuffled:
            shuffled[split] = {
                attr: within_class_shuffles(predictions.y_true, codes, permutations, seed)
                for attr, codes in predictions.attributes.items()
                if f"dpd_{attr}" in metrics or f"eod_{attr}" in metrics
            }
        observed = {m: float(row[m]) for m in metrics}
        rows.append(model_floors(predictions, shuffled[split], sweep.num_classes, observed))
    derived = pd.DataFrame(rows, index=sweep.results.index)
    return frame.join(derived[[c for m in metrics for c in _derived(m) if c in derived]])


def with_floors(sweep: Sweep, table: pd.DataFrame) -> Sweep:
    """The sweep with each model's <metric>_floor and <metric>_excess as metric columns (what
    summary, claims and figures read); the permutation p-values stay in floors.csv."""
    columns = [c for c in table.columns if c.endswith(("_floor", "_excess"))]
    sweep.results = sweep.results.join(table[columns])
    return sweep
