import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from kdfair.metrics.group import (
    UndefinedMetricError,
    binary_dpd,
    binary_eod,
    group_fairness,
    multiclass_dpd,
    multiclass_eod,
)


def test_binary_dpd_and_eod_by_hand():
    # group a: labels 1 1 0 0, predictions 1 0 1 0 -> P(yhat=1)=1/2, TPR=1/2, FPR=1/2
    # group b: labels 1 1 0 0, predictions 1 1 0 0 -> P(yhat=1)=1/2, TPR=1,   FPR=0
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    p = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    a = np.array(["a"] * 4 + ["b"] * 4)
    assert binary_dpd(y, p, sensitive_features=a) == pytest.approx(0.0)
    assert binary_eod(y, p, sensitive_features=a) == pytest.approx(0.5)  # max(|1/2-1|, |1/2-0|)


def test_binary_values_equal_the_definition_on_random_data():
    """DPD and EOD from their definitions, group by group, with numpy masks (not fairlearn)."""
    rng = np.random.default_rng(0)
    y, p, a = rng.integers(0, 2, 500), rng.integers(0, 2, 500), rng.integers(0, 4, 500)
    selection = [p[a == g].mean() for g in range(4)]
    tpr = [p[(a == g) & (y == 1)].mean() for g in range(4)]
    fpr = [p[(a == g) & (y == 0)].mean() for g in range(4)]
    spread = lambda rates: max(rates) - min(rates)  # noqa: E731
    assert binary_dpd(y, p, sensitive_features=a) == pytest.approx(spread(selection))
    assert binary_eod(y, p, sensitive_features=a) == pytest.approx(max(spread(tpr), spread(fpr)))
    result = group_fairness(y, p, sensitive_features=a, num_classes=2)
    assert result.dpd_per_class is None
    assert (result.dpd, result.eod) == pytest.approx(
        (spread(selection), max(spread(tpr), spread(fpr)))
    )


def test_multiclass_labels_must_never_reach_fairlearn_directly():
    """Regression: group 'b' is never predicted class 2 while group 'a' mostly is. Fairlearn's
    DPD on the raw labels looks only at "predicted class 1" and reports perfect parity; its EOD
    refuses multiclass labels. kdfair's one-vs-rest average sees the gap."""
    y = np.array([0, 1, 2, 2, 0, 1, 2, 2])
    p = np.array([2, 0, 2, 2, 0, 0, 0, 0])
    a = np.array(["a"] * 4 + ["b"] * 4)
    assert demographic_parity_difference(y, p, sensitive_features=a) == 0.0  # blind to class 2
    with pytest.raises(ValueError):
        equalized_odds_difference(y, p, sensitive_features=a)
    dpd, per_class = multiclass_dpd(y, p, sensitive_features=a, num_classes=3)
    # class 0: P(yhat=0) a 1/4, b 1 -> 3/4; class 1: 0, 0 -> 0; class 2: a 3/4, b 0 -> 3/4
    np.testing.assert_allclose(per_class, [0.75, 0.0, 0.75])
    assert dpd == pytest.approx(0.5)


def test_multiclass_is_the_mean_of_the_per_class_one_vs_rest_values():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 2000)
    p = np.where(rng.random(2000) < 0.8, y, rng.integers(0, 5, 2000))
    a = rng.integers(0, 3, 2000)
    result = group_fairness(y, p, sensitive_features=a, num_classes=5)
    for c in range(5):
        yc, pc = (y == c).astype(int), (p == c).astype(int)
        assert result.dpd_per_class[c] == pytest.approx(
            demographic_parity_difference(yc, pc, sensitive_features=a)
        )
        assert result.eod_per_class[c] == pytest.approx(
            equalized_odds_difference(yc, pc, sensitive_features=a)
        )
    assert result.dpd == pytest.approx(result.dpd_per_class.mean())
    assert result.eod == pytest.approx(result.eod_per_class.mean())


def test_a_single_group_is_a_clear_error():
    with pytest.raises(UndefinedMetricError, match="single group"):
        group_fairness([0, 1, 2], [0, 1, 1], sensitive_features=[5, 5, 5], num_classes=3)


def test_a_group_without_positives_is_a_clear_error_not_a_silent_zero():
    # group b has no example of label 1: fairlearn would count its TPR as 0.
    y, p, a = np.array([1, 0, 0, 0]), np.array([1, 0, 0, 1]), np.array(["a", "a", "b", "b"])
    with pytest.raises(UndefinedMetricError, match="group 'b' has no examples with label 1"):
        binary_eod(y, p, sensitive_features=a)
    assert binary_dpd(y, p, sensitive_features=a) == pytest.approx(0.0)  # DPD needs no labels


def test_non_binary_input_to_the_binary_metric_points_to_the_multiclass_one():
    with pytest.raises(ValueError, match="group_fairness"):
        binary_dpd([0, 1, 2], [0, 2, 1], sensitive_features=[0, 0, 1])


def test_one_pass_rates_equal_fairlearn_for_many_classes_and_named_groups():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 20, 20_000)
    p = np.where(rng.random(20_000) < 0.7, y, rng.integers(0, 20, 20_000))
    a = rng.choice(["red", "green", "blue", "ocean", "white"], 20_000)
    result = group_fairness(y, p, sensitive_features=a, num_classes=20)
    for c in range(20):
        yc, pc = (y == c).astype(int), (p == c).astype(int)
        assert result.dpd_per_class[c] == pytest.approx(
            demographic_parity_difference(yc, pc, sensitive_features=a), abs=1e-12
        )
        assert result.eod_per_class[c] == pytest.approx(
            equalized_odds_difference(yc, pc, sensitive_features=a), abs=1e-12
        )


def test_multiclass_eod_names_an_undefined_cell():
    y, p = np.array([0, 1, 2, 0, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
    a = np.array(["a", "a", "a", "b", "b", "b"])  # group b has no example of class 2
    with pytest.raises(
        UndefinedMetricError, match="class 2: group 'b' has no examples with label 1"
    ):
        multiclass_eod(y, p, sensitive_features=a, num_classes=3)


def test_labels_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match=r"integer classes in \[0, 3\)"):
        multiclass_dpd([0, 1, 5], [0, 1, 2], sensitive_features=[0, 1, 1], num_classes=3)
