"""Bootstrap intervals: how much of a number is the test split's sampling noise.

A model's metric m is a function of the test examples. A bootstrap replicate draws N examples
with replacement, i.e. gives example i a count w_i ~ Multinomial(N, 1/N), and recomputes m from
count-weighted cells, e.g. for accuracy and the one-vs-rest rates of a group a and class c:

    acc_b          = sum_i w_i [yhat_i = y_i] / N
    selection_b[a, c] = sum_{i in a} w_i [yhat_i = c] / sum_{i in a} w_i
    tpr_b[a, c]       = sum_{i in a, y_i = c} w_i [yhat_i = c] / sum_{i in a, y_i = c} w_i

and DPD_b, EOD_b from those rates exactly as kdfair.metrics.group does (for two classes the
one-vs-rest average equals the binary metric, so one formula serves both). The (resamples x N)
count matrix times a sparse one-hot (N x cells) matrix gives every replicate's cells at once: no
Python loop over resamples. The 95% interval is the 2.5 and 97.5 percentiles of the replicates
shifted by the bootstrap bias estimate mean_b(m_b) - m (`corrected_interval`: DPD and EOD are
max-minus-min statistics, which resampling inflates), clipped to [0, 1]. Replicates in which a
rate is undefined (a group with no example of a class) are left out.

Every model of a sweep is measured on the same test split, so all models share the same
resampled test sets (replicate b is the same draw for each): comparisons between models are
then paired, and a population's two-level bootstrap (resample seeds, then test examples) uses

    mean_b = (1/S) sum_{s=1..S} m_{pick_s, b},   pick_s drawn with replacement from the seeds,

so the test split's noise, shared by every seed, is not averaged away. Metrics with no
per-example replicate here (individual fairness, consistency) get the seed level only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy import sparse

from kdfair.predict import Predictions

RESAMPLES = 1000
LEVEL = 0.95
# Count matrices are built in chunks of resamples so that memory stays ~ CHUNK_CELLS floats
# (~200 MB) whatever the test split's size (ImageNet's 50,000 images included).
CHUNK_CELLS = 50_000_000


def corrected_interval(
    replicates: np.ndarray, estimate: float, *, level: float = LEVEL, bounds=(0.0, 1.0)
) -> tuple[float, float]:
    """(low, high): the central `level` share of the finite replicates, shifted by the bootstrap
    bias estimate mean(replicates) - estimate and clipped to `bounds` (NaN, NaN if none).

    For smooth metrics (accuracy) the shift is ~0 and this is the percentile interval. DPD and
    EOD are max-minus-min statistics, which resampling inflates: their replicates sit above the
    estimate, and the unshifted percentile interval would often exclude it.
    """
    finite = np.asarray(replicates, float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail]) - (finite.mean() - estimate)
    if bounds is not None:
        low, high = np.clip([low, high], *bounds)
    return float(low), float(high)


def resample_counts(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of bootstrap counts, float32 (chunk, n): row b counts how often each of the n
    examples is drawn in replicate b. The same (n, resamples, seed) always gives the same draws."""
    chunk = max(1, min(resamples, CHUNK_CELLS // max(n, 1)))
    for number, start in enumerate(range(0, resamples, chunk)):
        rows = min(chunk, resamples - start)
        rng = np.random.default_rng([seed, number])
        drawn = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        yield np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float32)


def _one_hot(cells: np.ndarray, n_cells: int, weights: np.ndarray | None = None):
    n = len(cells)
    data = np.ones(n, np.float32) if weights is None else weights.astype(np.float32)
    return sparse.csr_matrix((data, (np.arange(n), cells)), shape=(n, n_cells))


class _Cells:
    """One model's one-hot cell columns, stacked into one sparse (N, K) matrix so that a count
    matrix (resamples, N) gives every replicate's cell counts in one product."""

    def __init__(self, predictions: Predictions, num_classes: int):
        y, yhat = predictions.y_true, predictions.y_pred
        correct = (y == yhat).astype(np.float32)
        blocks = [sparse.csr_matrix(correct[:, None])]
        self.layout = []  # (attr, groups, first column)
        column = 1
        for attr, codes in predictions.attributes.items():
            _, g = np.unique(codes, return_inverse=True)  # groups present in the test split
            groups = int(g.max()) + 1
            cells = groups * num_classes
            blocks += [
                _one_hot(g, groups),
                _one_hot(g * num_classes + y, cells),  # positives
                _one_hot(g * num_classes + yhat, cells),  # predicted
                _one_hot(g * num_classes + y, cells, correct),  # hits
            ]
            self.layout.append((attr, groups, column))
            column += groups + 3 * cells
        self.matrix = sparse.hstack(blocks, format="csr")
        self.num_classes = num_classes

    def metrics(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric for each row of `counts` (resamples, N)."""
        cells = np.asarray(counts @ self.matrix)
        out = {"accuracy": cells[:, 0] / counts.sum(axis=1)}
        for attr, groups, start in self.layout:
            shape = (len(counts), groups, self.num_classes)
            size = cells[:, start : start + groups][:, :, None]
            block = cells[:, start + groups : start + groups + 3 * groups * self.num_classes]
            positives, predicted, hits = (part.reshape(shape) for part in np.split(block, 3, 1))
            out[f"dpd_{attr}"], out[f"eod_{attr}"] = _group_metrics(
                size, positives, predicted, hits
            )
        return out


def _spread(rates: np.ndarray) -> np.ndarray:
    """max - min over groups (axis 1); NaN where a group's rate is undefined."""
    return rates.max(axis=1) - rates.min(axis=1)


def _group_metrics(size, positives, predicted, hits) -> tuple[np.ndarray, np.ndarray]:
    """(DPD, EOD) per replicate from (resamples, groups, classes) weighted cell counts."""
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = predicted / size
        tpr = hits / positives
        fpr = (predicted - hits) / (size - positives)
    dpd = _spread(selection).mean(axis=1)
    eod = np.maximum(_spread(tpr), _spread(fpr)).mean(axis=1)
    return dpd, eod


def model_replicates(
    predictions: list[Predictions], num_classes: int, *, resamples: int = RESAMPLES, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """Per model, {metric: (resamples,) replicates} of accuracy and every dpd_/eod_ column.

    Models with test splits of one size share their draws (the module docstring's pairing).
    """
    cells = [_Cells(p, num_classes) for p in predictions]
    out: list[dict[str, list[np.ndarray]]] = [{} for _ in predictions]
    by_size: dict[int, list[int]] = {}
    for i, p in enumerate(predictions):
        by_size.setdefault(len(p.y_true), []).append(i)
    for n, members in by_size.items():
        for counts in resample_counts(n, resamples, seed):
            for i in members:
                for metric, values in cells[i].metrics(counts).items():
                    out[i].setdefault(metric, []).append(values)
    return [{k: np.concatenate(v) for k, v in model.items()} for model in out]


def population_interval(
    replicates: np.ndarray, estimate: float, *, seed: int = 0, level: float = LEVEL
) -> tuple[float, float]:
    """Two-level bootstrap interval of a population mean `estimate` from its models' replicates
    (S, B): per replicate b, S seeds drawn with replacement, each evaluated on test draw b."""
    replicates = np.asarray(replicates, float)
    seeds, resamples = replicates.shape
    picks = np.random.default_rng(seed).integers(0, seeds, size=(resamples, seeds))
    means = replicates[picks, np.arange(resamples)[:, None]].mean(axis=1)
    return corrected_interval(means, estimate, level=level)


def seed_interval(
    values: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL
) -> tuple[float, float]:
    """Bootstrap interval of a mean over seeds alone (NaN with fewer than two values), held at
    >= 0: every metric column is non-negative, and the bias shift could otherwise push the lower
    end below 0 when most seeds sit at 0 (collapsed models). Not capped above: individual
    fairness can exceed 1."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    picks = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    return corrected_interval(means, values.mean(), level=level, bounds=(0.0, np.inf))


def label_disparity(
    predictions: Predictions, num_classes: int, *, resamples: int = RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """(metric, value): per attribute, the DPD of the test labels themselves (what a perfect
    classifier scores) and its bootstrap interval, `dpd_<attr>`, `_ci_low`, `_ci_high`."""
    perfect = Predictions(
        y_true=predictions.y_true,
        y_pred=predictions.y_true,
        logits=predictions.logits,
        index=predictions.index,
        attributes=predictions.attributes,
        attribute_labels=predictions.attribute_labels,
    )
    point = _Cells(perfect, num_classes).metrics(np.ones((1, len(perfect.y_true)), np.float32))
    replicates = model_replicates([perfect], num_classes, resamples=resamples, seed=seed)[0]
    rows = []
    for attr in predictions.attributes:
        metric = f"dpd_{attr}"
        low, high = corrected_interval(replicates[metric], float(point[metric][0]))
        rows += [
            (metric, float(point[metric][0])),
            (f"{metric}_ci_low", low),
            (f"{metric}_ci_high", high),
        ]
    return pd.DataFrame(rows, columns=["metric", "value"])
