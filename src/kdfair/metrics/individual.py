"""Individual fairness: similar individuals should receive similar predictions.

Lipschitz estimate (Dwork et al. 2012), lower is fairer:

    I(f) = (1/|P|) sum_{(i, j) in P}  || f(x_i) - f(x_j) ||_1 / d(x_i, x_j)

f is the model's softmax output, d a distance in an embedding space shared by every compared
model, and P a set of pairs: each point with its k nearest neighbours (default) or random pairs.
Pairs at distance 0 (duplicates) are left out, since the ratio is undefined for them.

kNN consistency (Zemel et al. 2013), higher is fairer:

    consistency = 1 - (1/N) sum_i (1/k) sum_{j in kNN(i)} [yhat_j != yhat_i]

which for binary predictions equals Zemel's 1 - (1/N) sum_i |yhat_i - mean_{j in kNN(i)} yhat_j|.

Neighbours come from scikit-learn's NearestNeighbors, which works in chunks: 100k points never
need an N x N matrix. Build the `Neighbourhood` once per test set and reuse it for every model:
`neighbourhood(eval.individual, ...)` builds it from the eval settings, for a job's measuring
(kdfair.measure) and for `kdfair analyze --remeasure` (kdfair.analysis.remeasure) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax
from sklearn.neighbors import NearestNeighbors

from kdfair.errors import KdfairError

METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class Neighbourhood:
    """Pairs (i, j) of test points and their distance d(x_i, x_j) in the shared embedding."""

    i: np.ndarray  # int64 (P,)
    j: np.ndarray  # int64 (P,)
    distance: np.ndarray  # float64 (P,)
    k: int  # neighbours per point (kNN pairs), or 0 for random pairs

    @classmethod
    def knn(cls, embedding: np.ndarray, *, k: int = 10, metric: str = "euclidean") -> Neighbourhood:
        """Each point paired with its k nearest other points."""
        embedding = _check_embedding(embedding, metric)
        if not 1 <= k < len(embedding):
            raise ValueError(
                f"k must be in [1, {len(embedding) - 1}] for {len(embedding)} points, got {k}."
            )
        nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute")
        distance, index = nn.fit(embedding).kneighbors(embedding)
        # Drop each point itself; with duplicates it may not sit in column 0, so drop by identity.
        own = index == np.arange(len(embedding))[:, None]
        own[own.sum(1) == 0, -1] = True  # a point hidden among k+1 duplicates: drop the last
        keep = ~own  # exactly k per row, in row order
        return cls(np.repeat(np.arange(len(embedding)), k), index[keep], distance[keep], k)

    @classmethod
    def random_pairs(
        cls, embedding: np.ndarray, *, n_pairs: int, metric: str = "euclidean", seed: int = 0
    ) -> Neighbourhood:
        """n_pairs uniformly random pairs of distinct points."""
        embedding = _check_embedding(embedding, metric)
        rng = np.random.default_rng(seed)
        i = rng.integers(0, len(embedding), n_pairs)
        j = (i + rng.integers(1, len(embedding), n_pairs)) % len(embedding)  # never i itself
        a, b = embedding[i].astype(np.float64), embedding[j].astype(np.float64)
        if metric == "euclidean":
            distance = np.linalg.norm(a - b, axis=1)
        else:
            norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            distance = 1.0 - (a * b).sum(1) / np.maximum(norms, 1e-12)
        return cls(i, j, distance, 0)


def _check_embedding(embedding: np.ndarray, metric: str) -> np.ndarray:
    if metric not in METRICS:
        raise ValueError(f"distance metric must be one of {METRICS}, got {metric!r}.")
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.ndim != 2 or len(embedding) < 2:
        raise ValueError(
            f"the embedding must be a 2-d array of at least 2 points, got {embedding.shape}."
        )
    return embedding


def lipschitz_individual_fairness(logits: np.ndarray, pairs: Neighbourhood) -> float:
    """I(f) of the module docstring, with f = softmax(logits); lower is fairer."""
    keep = pairs.distance > 0
    if not keep.any():
        raise ValueError("every pair has distance 0; the embedding does not separate the points.")
    probs = softmax(np.asarray(logits, dtype=np.float64), axis=1)
    i, j = pairs.i[keep], pairs.j[keep]
    return float(np.mean(np.abs(probs[i] - probs[j]).sum(1) / pairs.distance[keep]))


def consistency(y_pred: np.ndarray, pairs: Neighbourhood) -> float:
    """kNN consistency of the module docstring; needs kNN pairs. In [0, 1], higher is fairer."""
    if pairs.k == 0:
        raise ValueError("consistency needs kNN pairs (Neighbourhood.knn), not random pairs.")
    y_pred = np.asarray(y_pred)
    return float(1.0 - np.mean(y_pred[pairs.i] != y_pred[pairs.j]))


def input_embedding(images: np.ndarray, *, dim: int = 256, seed: int = 0) -> np.ndarray:
    """Flattened inputs, scaled to [0, 1] and, above `dim` features, randomly projected to `dim`.

    A Gaussian random projection keeps pairwise distances within a small factor
    (Johnson-Lindenstrauss) and makes kNN on large images affordable. Deterministic for `seed`,
    so every model of an experiment is measured in the same space.
    """
    x = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    if x.shape[1] <= dim:
        return x
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((x.shape[1], dim), dtype=np.float32) / np.sqrt(dim)
    return x @ projection


def neighbourhood(
    individual: dict,
    *,
    reference_embedding: np.ndarray | None = None,
    test_inputs=None,
    dataset_name: str = "dataset",
) -> Neighbourhood | None:
    """The pairs individual fairness is measured on (None when eval.individual is disabled).

    `individual` is the eval.individual block; space=teacher needs `reference_embedding` (the
    reference teacher's penultimate features), space=input needs `test_inputs` (the test images
    as an array, or None for a streamed dataset).
    """
    if not individual["enabled"]:
        return None
    if individual["space"] == "input":
        if test_inputs is None:
            raise KdfairError(
                f"eval.individual.space=input needs the {dataset_name} test images in memory; "
                "use eval.individual.space=teacher for streamed datasets."
            )
        embedding = input_embedding(
            np.asarray(test_inputs),
            dim=int(individual["projection_dim"]),
            seed=int(individual["seed"]),
        )
    else:
        if reference_embedding is None:
            raise KdfairError(
                "eval.individual.space=teacher needs the reference teacher's embedding, but its "
                "predictions.npz has none (stored only for models trained as teachers). Retrain "
                "that teacher, or use eval.individual.space=input."
            )
        embedding = reference_embedding
    if individual["pairs"] == "knn":
        return Neighbourhood.knn(
            embedding, k=min(int(individual["k"]), len(embedding) - 1), metric=individual["metric"]
        )
    return Neighbourhood.random_pairs(
        embedding,
        n_pairs=int(individual["n_pairs"]),
        metric=individual["metric"],
        seed=int(individual["seed"]),
    )
