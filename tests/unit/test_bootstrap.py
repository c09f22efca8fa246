"""Bootstrap intervals: the right width, the metric's own value at the centre, paired draws."""

import numpy as np
import pytest

from kdfair.analysis.bootstrap import (
    corrected_interval,
    model_replicates,
    population_interval,
    resample_counts,
    seed_interval,
)
from kdfair.metrics.columns import metric_columns
from kdfair.predict import Predictions


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


def test_the_population_interval_widens_with_the_spread_between_seeds():
    rng = np.random.default_rng(5)
    test_noise = rng.normal(0, 0.01, size=500)
    close = 0.8 + test_noise + np.array([[0.0], [0.001], [-0.001]])
    apart = 0.8 + test_noise + np.array([[0.0], [0.05], [-0.05]])
    narrow = np.diff(population_interval(close, 0.8))[0]
    wide = np.diff(population_interval(apart, 0.8))[0]
    assert wide > 2 * narrow


def test_a_seed_interval_never_goes_below_zero():
    # four collapsed seeds at 0 and one trained: the bias shift used to give a negative low end
    values = np.array([0.0, 0.0, 0.0, 0.0, 0.5])
    for seed in range(5):
        low, high = seed_interval(values, seed=seed)
        assert 0.0 <= low <= values.mean() <= high
    assert seed_interval(np.array([1.2, 1.5, 1.4]))[1] > 1  # not capped at 1
