import numpy as np
import pytest
from scipy.stats import ttest_ind

from kdfair.metrics.accuracy import per_class_accuracy
from kdfair.metrics.classwise import (
    classwise_tests,
    correct,
    disagreement_matrix,
    normalised_class_accuracy,
)


def _population(rng, n_models=5, n_classes=20, shift=None):
    per_class = rng.normal(0.8, 0.02, size=(n_models, n_classes))
    if shift:
        per_class[:, shift[0]] += shift[1]
    return per_class, per_class.mean(1)


def test_per_class_accuracy_by_hand():
    got = per_class_accuracy(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 3)
    np.testing.assert_allclose(got, [0.5, 2 / 3, np.nan])


def test_normalisations():
    per_class, overall = np.array([[0.9, 0.5], [0.6, 0.4]]), np.array([0.7, 0.5])
    np.testing.assert_allclose(
        normalised_class_accuracy(per_class, overall, "ratio"),
        [[0.9 / 0.7, 0.5 / 0.7], [0.6 / 0.5, 0.4 / 0.5]],
    )
    np.testing.assert_allclose(
        normalised_class_accuracy(per_class, overall, "diff"), per_class - 0.6
    )
    with pytest.raises(ValueError, match="ratio"):
        normalised_class_accuracy(per_class, overall, "log")


@pytest.mark.parametrize("normalisation", ["ratio", "diff"])
def test_p_values_equal_scipys_welch_test(normalisation):
    rng = np.random.default_rng(0)
    a, b = _population(rng), _population(rng)
    result = classwise_tests(*a, *b, normalisation=normalisation)
    ra = normalised_class_accuracy(*a, normalisation)
    rb = normalised_class_accuracy(*b, normalisation)
    for c in range(20):
        assert result.p_value[c] == pytest.approx(
            ttest_ind(ra[:, c], rb[:, c], equal_var=False).pvalue
        )


def test_a_planted_class_shift_is_found():
    rng = np.random.default_rng(1)
    result = classwise_tests(*_population(rng), *_population(rng, shift=(7, -0.15)))
    assert result.loc[7, "significant"]
    assert result["significant"].sum() <= 3


def test_same_distribution_gives_almost_no_significant_classes():
    rng = np.random.default_rng(2)
    found = [
        classwise_tests(*_population(rng, n_classes=100), *_population(rng, n_classes=100))[
            "significant"
        ].mean()
        for _ in range(10)
    ]
    assert np.mean(found) <= 0.08  # about the 5% false-positive rate of p <= 0.05
    corrected = classwise_tests(
        *_population(rng, n_classes=100), *_population(rng, n_classes=100), correction="holm"
    )
    assert corrected["significant"].sum() <= 1


def test_holm_and_bh_corrections():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, max(0.04, 0.06)
    np.testing.assert_allclose(correct(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    # BH: sorted p_(i) * m / i, made monotone from the top -> 0.02, 0.02, 0.04, 0.04
    np.testing.assert_allclose(correct(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(correct(np.array([0.2, np.nan]), "holm"), [0.2, np.nan])


def test_constant_classes_equal_are_untestable_and_different_are_significant():
    a = np.array([[1.0, 1.0, 0.9], [1.0, 1.0, 0.8], [1.0, 1.0, 0.85]])
    b = np.array([[1.0, 0.5, 0.9], [1.0, 0.5, 0.7], [1.0, 0.5, 0.8]])
    result = classwise_tests(a, np.ones(3), b, np.ones(3))
    assert np.isnan(result.p_value[0]) and not result.significant[0]  # 100% everywhere
    assert result.p_value[1] == 0.0 and result.significant[1]  # always 1.0 vs always 0.5
    assert 0 < result.p_value[2] < 1


def test_one_seed_is_refused_with_advice():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2 models"):
        classwise_tests(*_population(rng, n_models=1), *_population(rng))


def test_disagreement_matrix_by_hand():
    f = np.array([0, 0, 1, 2, 2, 2])
    g = np.array([0, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(disagreement_matrix(f, g, 3), [[0, 1, 0], [0, 0, 0], [2, 1, 0]])
