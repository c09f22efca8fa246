"""Bootstrap intervals: the formulas, the metric's own value inside, paired draws (the coverage
simulations are in test_interval_coverage.py)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kdfair.analysis.bootstrap import (
    corrected_interval,
    model_replicates,
    population_interval,
    resample_counts,
    seed_interval,
)
from kdfair.metrics.columns import metric_columns
from kdfair.predictions import Predictions


def _predictions(rng, n=400, accuracy=0.8, classes=3):
    y = rng.integers(0, classes, n)
    y_pred = np.where(rng.random(n) < accuracy, y, (y + 1) % classes)
    return Predictions(
        y_true=y,
        y_pred=y_pred,
        logits=np.eye(classes, dtype=np.float32)[y_pred],
        index=np.arange(n),
        attributes={"a": rng.integers(0, 3, n)},
        attribute_labels={"a": ["x", "y", "z"]},
    )


def test_accuracy_intervals_cover_a_known_binomial_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    trials, covered = 200, 0
    for trial in range(trials):
        p = _predictions(rng, n=300, accuracy=0.8)
        replicates = model_replicates([p], 3, resamples=400, seed=trial)[0]["accuracy"]
        low, high = corrected_interval(replicates, float(np.mean(p.y_true == p.y_pred)))
        covered += low <= 0.8 <= high
    assert 0.90 <= covered / trials <= 0.99


@pytest.mark.parametrize("classes", [2, 5])
def test_replicates_recompute_the_metrics_of_kdfair_metrics(classes):
    """With every example drawn once, a replicate is the metric itself (binary and one-vs-rest)."""
    p = _predictions(np.random.default_rng(1), classes=classes)
    from kdfair.analysis.bootstrap import _Cells

    once = _Cells(p, classes).metrics(np.ones((1, len(p.y_true)), np.float32))
    for metric, value in metric_columns(p, num_classes=classes, neighbourhood=None).items():
        assert once[metric][0] == pytest.approx(value, abs=1e-6), metric


def test_draws_are_seeded_shared_and_chunked_the_same_way():
    a = np.concatenate(list(resample_counts(50, 30, seed=3)))
    b = np.concatenate(list(resample_counts(50, 30, seed=3)))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (30, 50) and (a.sum(axis=1) == 50).all()
    p = _predictions(np.random.default_rng(2))
    first, second = model_replicates([p, p], 3, resamples=50)
    np.testing.assert_array_equal(first["dpd_a"], second["dpd_a"])  # paired: same draws


def test_dpd_intervals_hold_the_estimate_although_resampling_inflates_the_spread():
    p = _predictions(np.random.default_rng(4), n=600)
    estimate = metric_columns(p, num_classes=3, neighbourhood=None)["dpd_a"]
    replicates = model_replicates([p], 3, resamples=500)[0]["dpd_a"]
    assert replicates.mean() > estimate  # max - min grows under resampling
    low, high = corrected_interval(replicates, estimate)
    assert low <= estimate <= high


def test_the_model_interval_spans_the_basic_and_the_bias_shifted_percentile_intervals():
    replicates = np.random.default_rng(7).gamma(4.0, 0.01, 2000) + 0.05  # right-skewed, mean 0.09
    m = 0.07
    q_low, q_high = np.quantile(replicates, [0.025, 0.975])
    bias = replicates.mean() - m
    low, high = corrected_interval(replicates, m)
    assert low == pytest.approx(min(2 * m - q_high, q_low - bias))
    assert high == pytest.approx(max(2 * m - q_low, q_high - bias))
    assert low == pytest.approx(2 * m - q_high)  # the bias-corrected end
    assert high == pytest.approx(q_high - bias)  # the uncorrected end
    assert np.isnan(corrected_interval(np.array([np.nan]), m)).all()


def test_the_population_interval_widens_with_the_spread_between_seeds():
    rng = np.random.default_rng(5)
    test_noise = rng.normal(0, 0.01, size=500)
    close = np.array([0.0, 0.001, -0.001])
    apart = np.array([0.0, 0.05, -0.05])
    narrow = np.diff(population_interval(0.8 + close, 0.8 + test_noise + close[:, None]))[0]
    wide = np.diff(population_interval(0.8 + apart, 0.8 + test_noise + apart[:, None]))[0]
    assert wide > 2 * narrow


def test_the_population_interval_adds_the_test_noise_every_seed_shares():
    """Identical seeds: no spread between them, and the interval is the shared test-split noise's
    normal interval (Satterthwaite df -> infinity)."""
    shared = np.random.default_rng(8).normal(0, 0.01, size=4000)
    values = np.full(5, 0.8)
    low, high = population_interval(values, 0.8 + np.tile(shared, (5, 1)))
    assert (high - low) / 2 == pytest.approx(1.959964 * shared.std(ddof=1), rel=1e-6)
    # independent test noise per seed is already in the spread between seeds: not added again
    own = 0.8 + np.random.default_rng(9).normal(0, 0.01, size=(5, 4000))
    values = np.array([0.79, 0.81, 0.8, 0.805, 0.795])
    low, high = population_interval(values, own)
    half = stats.t.ppf(0.975, 4) * values.std(ddof=1) / np.sqrt(5)
    assert (high - low) / 2 == pytest.approx(half, rel=0.05)


def test_the_population_interval_of_one_seed_is_its_model_interval_and_skips_missing_values():
    replicates = 0.8 + np.random.default_rng(10).normal(0, 0.01, size=(3, 300))
    values = np.array([0.8, np.nan, np.nan])
    assert population_interval(values, replicates) == corrected_interval(replicates[0], 0.8)
    replicates[1:, 5] = np.nan  # undefined in one replicate of the left-out seeds only
    values = np.array([0.8, 0.82, np.nan])
    assert np.isfinite(population_interval(values, replicates)).all()
    assert np.isnan(population_interval(np.full(3, np.nan), replicates)).all()


def test_a_seed_interval_never_goes_below_zero():
    # four collapsed seeds at 0 and one trained: the t interval's low end is below 0
    values = np.array([0.0, 0.0, 0.0, 0.0, 0.5])
    low, high = seed_interval(values)
    assert low == 0.0 and values.mean() <= high
    assert seed_interval(np.array([1.2, 1.5, 1.4]))[1] > 1  # not capped at 1
    assert np.isnan(seed_interval(np.array([0.3, np.nan]))).all()


def test_an_excess_over_the_floor_may_go_below_zero_in_the_summary():
    from kdfair.analysis.tables import _population_interval

    rows = pd.DataFrame({"dpd_a_excess": [-0.01, -0.02, 0.0], "dpd_a": [0.0, 0.001, 0.0]})
    low, high = _population_interval(rows, "dpd_a_excess", {})
    assert low < -0.01 < high
    assert _population_interval(rows, "dpd_a", {})[0] == 0.0  # a metric itself stays >= 0
