"""Class-wise bias: which classes does distillation help or hurt? (Hooker et al. 2019)

For a population of models (one per seed) and class c, the normalised class accuracy of model m is

    ratio (default):  r_m(c) = acc_m(c) / acc_m
    diff  (Hooker):   r_m(c) = acc_m(c) - mean_m' acc_m'       (mean over the population)

A two-sided Welch t-test (unequal variances, scipy.stats.ttest_ind(equal_var=False)) compares
r(c) between two populations for every class; class c is significantly affected when its
(optionally corrected) p-value is <= the threshold (0.05). Corrections over the C tests:
none (the paper's), holm (family-wise error), bh (Benjamini-Hochberg false discovery rate).

#SC counts significant classes between NDS and DS(T), #TC between teacher and DS(T).

The disagreement matrix of models f and g counts test points with f(x) = i and g(x) = j, i != j.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind
from statsmodels.stats.multitest import multipletests

NORMALISATIONS = ("ratio", "diff")
CORRECTIONS = ("none", "holm", "bh")


def normalised_class_accuracy(
    per_class: np.ndarray, overall: np.ndarray, normalisation: str = "ratio"
) -> np.ndarray:
    """(M, C) per-class accuracies and (M,) overall accuracies -> (M, C) normalised values."""
    per_class, overall = np.asarray(per_class, float), np.asarray(overall, float)
    if normalisation == "ratio":
        return per_class / overall[:, None]
    if normalisation == "diff":
        return per_class - overall.mean()
    raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}.")


def correct(p_values: np.ndarray, correction: str) -> np.ndarray:
    """Adjusted p-values (statsmodels.stats.multitest.multipletests) over the non-NaN p-values:

        holm  p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j))       (family-wise error)
        bh    p_(i) -> min_{j >= i} min(1, m p_(j) / j)              (false discovery rate)

    for the m testable p-values in ascending order; `none` returns them as they are. NaN
    p-values (untestable rows) stay NaN and are not counted in m."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}.")
    p = np.asarray(p_values, float)
    out = p.copy()
    testable = ~np.isnan(p)
    if correction != "none" and testable.any():
        method = {"holm": "holm", "bh": "fdr_bh"}[correction]
        out[testable] = multipletests(p[testable], method=method)[1]
    return out


def classwise_tests(
    per_class_a: np.ndarray,
    overall_a: np.ndarray,
    per_class_b: np.ndarray,
    overall_b: np.ndarray,
    *,
    normalisation: str = "ratio",
    threshold: float = 0.05,
    correction: str = "none",
) -> pd.DataFrame:
    """Welch t-test per class between populations a and b (rows = models, columns = classes).

    Returns one row per class: class, mean_a, mean_b (normalised accuracy), t, p_value,
    p_adjusted, significant. A class whose values are constant and equal in both populations
    cannot be tested (p = NaN) and is not significant.
    """
    a = normalised_class_accuracy(per_class_a, overall_a, normalisation)
    b = normalised_class_accuracy(per_class_b, overall_b, normalisation)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"A Welch t-test needs at least 2 models (seeds) per population, got {len(a)} and "
            f"{len(b)}. Train more seeds (seed=0,1,2,3,4)."
        )
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the populations have {a.shape[1]} and {b.shape[1]} classes.")
    # Classes with zero variance in both populations (e.g. always 100% correct) are decided
    # here: scipy's answer for them is numerically unreliable. Equal constants cannot be tested
    # (p = NaN); different constants differ with certainty (p = 0).
    constant = (a.var(0) == 0) & (b.var(0) == 0)
    t, p = np.full(a.shape[1], np.nan), np.full(a.shape[1], np.nan)
    if (~constant).any():
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            # One constant population is fine for Welch's test (the other supplies the variance),
            # but scipy warns about it as if it were a numerical accident.
            warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
            result = ttest_ind(a[:, ~constant], b[:, ~constant], axis=0, equal_var=False)
        t[~constant], p[~constant] = result.statistic, result.pvalue
    differ = constant & (a.mean(0) != b.mean(0))
    t[differ] = np.sign(a.mean(0) - b.mean(0))[differ] * np.inf
    p[differ] = 0.0
    adjusted = correct(p, correction)
    return pd.DataFrame(
        {
            "class": np.arange(a.shape[1]),
            "mean_a": a.mean(0),
            "mean_b": b.mean(0),
            "t": t,
            "p_value": p,
            "p_adjusted": adjusted,
            "significant": np.nan_to_num(adjusted, nan=1.0) <= threshold,
        }
    )


def disagreement_matrix(y_pred_f: np.ndarray, y_pred_g: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64: entry (i, j) counts points with f(x) = i and g(x) = j, zero on the diagonal."""
    f, g = np.asarray(y_pred_f), np.asarray(y_pred_g)
    if f.shape != g.shape:
        raise ValueError(f"the two prediction arrays differ in shape: {f.shape} and {g.shape}.")
    counts = np.bincount(f * num_classes + g, minlength=num_classes * num_classes)
    matrix = counts.reshape(num_classes, num_classes).astype(np.int64)
    np.fill_diagonal(matrix, 0)
    return matrix
