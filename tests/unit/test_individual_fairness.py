import numpy as np
import pytest

from kdfair.metrics.individual import (
    Neighbourhood,
    consistency,
    input_embedding,
    lipschitz_individual_fairness,
)


def test_lipschitz_estimate_by_hand():
    # Points on a line at 0, 1, 3; k=1 pairs: 0->1 (d=1), 1->0 (d=1), 3->1 (d=2).
    embedding = np.array([[0.0], [1.0], [3.0]])
    pairs = Neighbourhood.knn(embedding, k=1)
    assert sorted(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == [(0, 1), (1, 0), (2, 1)]
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
    logits = np.log(probs + 1e-300)  # softmax(log p) = p
    # |f0 - f1|_1 = 1 over d=1 (twice), |f2 - f1|_1 = 0 over d=2 -> mean(1, 1, 0) = 2/3
    assert lipschitz_individual_fairness(logits, pairs) == pytest.approx(2 / 3)


def test_consistency_matches_zemels_binary_formula():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(300, 4))
    y_pred = (embedding[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    pairs = Neighbourhood.knn(embedding, k=5)
    neighbours = pairs.j.reshape(300, 5)
    zemel = 1 - np.mean(np.abs(y_pred - y_pred[neighbours].mean(1)))
    assert consistency(y_pred, pairs) == pytest.approx(zemel)


def test_a_model_that_ignores_the_input_is_perfectly_fair():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(200, 3))
    constant = np.tile([2.0, 0.0, -1.0], (200, 1))
    pairs = Neighbourhood.knn(embedding, k=4)
    assert lipschitz_individual_fairness(constant, pairs) == 0.0
    assert consistency(constant.argmax(1), pairs) == 1.0


def test_duplicate_points_never_pair_with_themselves_and_zero_distances_are_skipped():
    embedding = np.array([[0.0], [0.0], [0.0], [5.0]])
    pairs = Neighbourhood.knn(embedding, k=2)
    assert not np.any(pairs.i == pairs.j)
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [3.0, 0.0]])
    assert np.isfinite(lipschitz_individual_fairness(logits, pairs))


def test_random_pairs_are_distinct_points_with_true_distances():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(50, 3))
    pairs = Neighbourhood.random_pairs(embedding, n_pairs=500, metric="euclidean")
    assert not np.any(pairs.i == pairs.j)
    np.testing.assert_allclose(
        pairs.distance, np.linalg.norm(embedding[pairs.i] - embedding[pairs.j], axis=1), rtol=1e-5
    )
    with pytest.raises(ValueError, match="kNN pairs"):
        consistency(np.zeros(50, int), pairs)


def test_cosine_distance_uses_directions_only():
    embedding = np.array([[1.0, 0.0], [10.0, 0.0], [0.0, 1.0]])
    pairs = Neighbourhood.knn(embedding, k=1, metric="cosine")
    assert pairs.j[0] == 1 and pairs.distance[0] == pytest.approx(0.0, abs=1e-6)


def test_input_embedding_projects_large_inputs_deterministically():
    images = np.random.default_rng(0).integers(0, 256, size=(20, 3, 16, 16), dtype=np.uint8)
    a, b = input_embedding(images, dim=32, seed=1), input_embedding(images, dim=32, seed=1)
    assert a.shape == (20, 32) and np.array_equal(a, b)
    assert input_embedding(images, dim=10_000).shape == (20, 768)  # small inputs stay as they are


def test_bad_settings_are_explained():
    with pytest.raises(ValueError, match="metric"):
        Neighbourhood.knn(np.zeros((5, 2)), metric="manhattan")
    with pytest.raises(ValueError, match="k must be"):
        Neighbourhood.knn(np.zeros((5, 2)), k=5)


@pytest.mark.slow
def test_one_hundred_thousand_points_without_an_n_by_n_matrix():
    # 100k x 100k float64 would need 80 GB; sklearn's chunked search needs a few hundred MB.
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(100_000, 8)).astype(np.float32)
    pairs = Neighbourhood.knn(embedding, k=5)
    assert len(pairs.i) == 500_000
    logits = np.stack([embedding[:, 0], -embedding[:, 0]], axis=1)
    assert 0 < lipschitz_individual_fairness(logits, pairs) < np.inf
