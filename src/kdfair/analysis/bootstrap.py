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
Python loop over resamples. Replicates in which a rate is undefined (a group with no example
of a class) are left out.

Every model of a sweep is measured on the same test split, so all models share the same
resampled test sets (replicate b is the same draw for each): comparisons between models are
paired, and a population's replicates show the test split's noise that every seed shares.

Intervals (95%; each function's docstring has its formula), chosen by measured coverage
(tests/unit/test_interval_coverage.py simulates them; `python tests/unit/test_interval_coverage.py`
prints these numbers):

Per model, over test examples (`corrected_interval`): the union of the basic (reverse
percentile) and the bias-shifted percentile intervals. Coverage of a true EOD of 0.10, 400
simulated test splits x 1,000 resamples, classes x groups at 500 examples per cell, group rates
evenly spaced over the 0.10 gap in every class (binomial sd of a coverage at 0.95: 0.011):

    classes x groups          2x2    2x5    2x10   10x2   10x5   10x10
    percentile               0.943  0.953  0.825  0.960  0.733  0.003
    bias-shifted percentile  0.935  0.922  0.927  0.963  0.910  0.525   (kdfair before)
    basic                    0.922  0.892  0.885  0.963  0.897  0.915
    BC percentile (a = 0)    0.932  0.880  0.868  0.963  0.890  0.170
    union (kdfair)           0.935  0.940  0.963  0.965  0.970  0.960

With one group at 0.80 and the others tied at 0.90 the estimator's bias is larger than the
bootstrap's estimate of it: 2x10 gives basic 0.897, union 0.915, bias-shifted 0.825; 10x10
(estimate 0.119, sd 0.006) gives 0.568, 0.570 and 0.120, and no candidate here is calibrated.
BCa's acceleration was not measured: its bias correction (the BC row) already runs out of
replicates where the bias is large.

At the demo's size (5,000 test images, 10 classes x 10 colour groups, ~50 per cell) a true EOD of
0.10 is measured at 0.186 (sd 0.014): the bootstrap bias estimate is 0.055, the union covers in
55.2% of trials (basic 55.2%, the others 0%), and a model with no disparity at all (every rate
0.85) scores 0.157 on average (2,000 simulated splits). The sampling floor there exceeds such
true values, so a model's interval at that size says little about its true disparity: read the
metric against its permutation floor (the metric's mean when the attribute is permuted within each
true class, kdfair.analysis.floors), not against 0.

Per population, the mean over S seeds (`population_interval`): a t interval over seeds whose
variance adds the test-split noise shared by every seed (the mean bootstrap covariance between
two seeds), df by Welch-Satterthwaite. Coverage of the population mean at S = 5, 400 simulated
sweeps x 1,000 resamples, for accuracy 0.80 on 1,000 examples (acc) or a binary EOD of 0.10 (two
groups, 500 per cell), a seed sd of the true metric of 0.003 or 0.03, and a share of each seed's
outcomes that follow the example rather than the seed (shared):

    metric                          acc   acc   acc   acc   EOD   EOD   EOD   EOD
    seed sd                         .003  .003  .003  .03   .003  .003  .003  .03
    shared                          0     .5    .95   .5    0     .5    .95   .5
    two-level bootstrap, shifted   0.998 0.985 0.953 0.897 1.000 0.978 0.945 0.935  (before)
    seed percentile, shifted       0.835 0.657 0.235 0.777 0.835 0.620 0.198 0.735  (before)
    t over seeds                   0.950 0.818 0.388 0.922 0.948 0.825 0.297 0.900
    t, var_seeds/S + var_b(mean)   1.000 0.995 0.993 0.968 1.000 0.998 0.985 0.983  (S-1 df)
    kdfair                         0.950 0.945 0.950 0.927 0.948 0.943 0.938 0.927

Metrics with no per-example replicate (individual fairness, consistency) get the t interval over
seeds alone (`seed_interval`): calibrated where the test noise is not shared (0.95 above), short
where it is. All intervals are held at >= 0 (and <= 1 for metrics with replicates).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy import sparse, stats

from kdfair.predictions import Predictions

RESAMPLES = 1000
LEVEL = 0.95
# Count matrices are built in chunks of resamples so that memory stays ~ CHUNK_CELLS floats
# (~200 MB) whatever the test split's size (ImageNet's 50,000 images included).
CHUNK_CELLS = 50_000_000


def corrected_interval(
    replicates: np.ndarray, estimate: float, *, level: float = LEVEL, bounds=(0.0, 1.0)
) -> tuple[float, float]:
    """(low, high): one model's interval over test examples from its bootstrap replicates m_b of a
    metric estimated at m (NaN, NaN when no replicate is finite). With a = 1 - level, q_p the
    p-quantile of the finite replicates (numpy's linear interpolation) and bias = mean_b(m_b) - m:

        basic   = [2m - q_{1-a/2},  2m - q_{a/2}]         (reverse percentile: bias-corrected)
        shifted = [q_{a/2} - bias,  q_{1-a/2} - bias]     (percentile, re-centred on m)
        low  = min(basic_low,  shifted_low),   high = max(basic_high, shifted_high),

    clipped to `bounds`. It spans both intervals: the bias of a max-minus-min statistic (DPD, EOD)
    is real, but its bootstrap estimate is unreliable in both directions (too large when the
    extreme groups stand apart, too small when several groups tie at the extreme), so the interval
    reaches from the bias-corrected end to the uncorrected one. For a smooth metric (accuracy) the
    bias is ~0 and both are the percentile interval. The module docstring has the coverage that
    chose it.
    """
    finite = np.asarray(replicates, float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    q_low, q_high = np.quantile(finite, [tail, 1 - tail])
    bias = finite.mean() - estimate
    low = min(2 * estimate - q_high, q_low - bias)
    high = max(2 * estimate - q_low, q_high - bias)
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
            out[f"dpd_{attr}"], out[f"eod_{attr}"] = group_metrics_from_counts(
                size, positives, predicted, hits
            )
        return out


def _spread(rates: np.ndarray) -> np.ndarray:
    """max - min over groups (axis 1); NaN where a group's rate is undefined."""
    return rates.max(axis=1) - rates.min(axis=1)


def group_metrics_from_counts(size, positives, predicted, hits) -> tuple[np.ndarray, np.ndarray]:
    """(DPD, EOD) per row from (rows, groups, classes) weighted cell counts (a row is a bootstrap
    replicate here, a shuffle in kdfair.analysis.floors):

        DPD = (1/C) sum_c [max_a sel[a, c] - min_a sel[a, c]],  sel = predicted / size
        EOD = (1/C) sum_c max(spread_a tpr[a, c], spread_a fpr[a, c]),
              tpr = hits / positives,  fpr = (predicted - hits) / (size - positives)

    NaN where a rate is undefined (an empty cell)."""
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
    values: np.ndarray, replicates: np.ndarray, *, level: float = LEVEL, bounds=(0.0, 1.0)
) -> tuple[float, float]:
    """(low, high): interval of a population's mean metric over its S seeds, `values` (S,) the
    seeds' metrics and `replicates` (S, B) their paired bootstrap replicates over the shared test
    split. Seeds whose value is not finite are left out, and so are replicates b in which any
    remaining seed's metric is undefined; a single seed gets its own interval over test examples
    (corrected_interval: the spread between seeds is then unknown), none gets NaN, NaN. Then

        mean     = (1/S) sum_s m_s
        v_seeds  = var_s(m_s) / S                      (sample variance, ddof 1)
        v_shared = max(0, mean over pairs s != t of cov_b(m_{s,b}, m_{t,b}))
        v        = v_seeds + v_shared
        df       = v^2 / (v_seeds^2 / (S - 1))        (Welch-Satterthwaite; inf if v_seeds = 0)
        low, high = mean -+ t_{df, (1 + level) / 2} * sqrt(v),   clipped to `bounds`.

    The target is the population's mean for this test distribution: training seeds vary the model
    and the test split is one draw of examples that every seed shares. A seed's test-split error
    has an independent part, already in the spread over seeds, and a part common to all seeds,
    which no spread over seeds can show; the bootstrap covariance between two seeds' replicates
    estimates that common variance (adding the whole var_b of the mean over seeds instead counts
    the independent part twice). v_shared is estimated from the B replicates, not from the S
    seeds, so Welch-Satterthwaite counts it as known: df is S - 1 where the spread over seeds
    dominates v and grows towards infinity (the normal quantile) where the shared noise does.
    The module docstring has the coverage that chose it.
    """
    values = np.asarray(values, float)
    replicates = np.asarray(replicates, float)
    keep = np.isfinite(values)
    values, replicates = values[keep], replicates[keep]
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:
        return corrected_interval(replicates[0], values[0], level=level, bounds=bounds)
    seeds = len(values)
    replicates = replicates[:, np.isfinite(replicates).all(axis=0)]
    v_seeds = values.var(ddof=1) / seeds
    v_shared = 0.0
    if replicates.shape[1] >= 2:
        cov = np.cov(replicates)
        v_shared = max(0.0, (cov.sum() - np.trace(cov)) / (seeds * (seeds - 1)))
    return _t_interval(values.mean(), v_seeds, v_shared, seeds, level, bounds)


def seed_interval(
    values: np.ndarray, *, level: float = LEVEL, bounds=(0.0, np.inf)
) -> tuple[float, float]:
    """(low, high): t interval of a mean over seeds alone, for metrics with no per-example
    replicate (individual fairness, consistency); NaN, NaN with fewer than two finite values:

        mean -+ t_{S-1, (1 + level) / 2} * sd_s(m_s) / sqrt(S),   sd with ddof 1,

    clipped to `bounds`: by default held at >= 0 (a metric is non-negative; with most seeds
    collapsed at 0 the lower end would go below it) and not capped above (individual fairness can
    exceed 1); tables.summary lifts the floor for an excess over a permutation floor. The test
    split's noise shared by all seeds is not in it (population_interval has that term): for these
    metrics the interval is of the mean over seeds on this test split.
    """
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    return _t_interval(
        values.mean(), values.var(ddof=1) / len(values), 0.0, len(values), level, bounds
    )


def _t_interval(mean, v_seeds, v_shared, seeds, level, bounds) -> tuple[float, float]:
    """mean -+ t_{df} sqrt(v_seeds + v_shared), df by Welch-Satterthwaite (population_interval)."""
    variance = v_seeds + v_shared
    df = variance**2 / (v_seeds**2 / (seeds - 1)) if v_seeds > 0 else np.inf
    half = stats.t.ppf((1 + level) / 2, df) * np.sqrt(variance)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = np.clip([low, high], *bounds)
    return float(low), float(high)


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
