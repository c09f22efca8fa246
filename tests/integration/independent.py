"""Every metric column recomputed from a predictions.npz by its definition, with plain numpy
loops and none of kdfair.metrics: what results.csv must hold for that model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd


def _rates(y, p, groups, c):
    """Per group: P(yhat = c), P(yhat = c | y = c), P(yhat = c | y != c) (NaN if undefined)."""
    out = []
    for g in np.unique(groups):
        m = groups == g
        pos, neg = m & (y == c), m & (y != c)
        out.append(
            (
                np.mean(p[m] == c),
                np.mean(p[pos] == c) if pos.any() else math.nan,
                np.mean(p[neg] == c) if neg.any() else math.nan,
            )
        )
    return np.array(out)


def group_columns(npz, num_classes: int) -> dict[str, float]:
    """dpd_<attr>, eod_<attr>: max - min over groups, of class 1 for binary tasks, else averaged
    one-vs-rest over classes; EOD NaN when any rate it needs is undefined."""
    y, p = npz["y_true"], npz["y_pred"]
    out = {}
    names = [k[5:] for k in npz.files if k.startswith("attr_") and not k.endswith("_labels")]
    for attr in names:
        groups = npz[f"attr_{attr}"]
        classes = [1] if num_classes == 2 else range(num_classes)
        dpd, eod = [], []
        for c in classes:
            r = _rates(y, p, groups, c)
            spread = r.max(axis=0) - r.min(axis=0)
            dpd.append(spread[0])
            eod.append(max(spread[1], spread[2]))
        out[f"dpd_{attr}"] = float(np.mean(dpd))
        out[f"eod_{attr}"] = float(np.mean(eod))  # NaN propagates
    return out


def individual_columns(npz, embedding: np.ndarray, k: int) -> dict[str, float] | None:
    """Each point with its k nearest others (euclidean, brute force): the Lipschitz estimate
    mean ||softmax_i - softmax_j||_1 / d_ij over pairs with d > 0, and kNN consistency. None
    when the k nearest are not unique (a tie at the k-th distance: duplicate inputs), since any
    choice among the tied points is then as right as another."""
    logits = npz["logits"].astype(np.float64)
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    e = embedding.astype(np.float64)
    d = np.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    ordered = np.sort(d, axis=1)
    if np.any(ordered[:, k - 1] == ordered[:, k]):
        return None
    ratios, disagree = [], []
    for i in range(len(e)):
        for j in np.argsort(d[i], kind="stable")[:k]:
            disagree.append(npz["y_pred"][i] != npz["y_pred"][j])
            if d[i, j] > 0:
                ratios.append(np.abs(prob[i] - prob[j]).sum() / d[i, j])
    return {"individual_fairness": float(np.mean(ratios)), "consistency": 1 - np.mean(disagree)}


def check_results(
    experiment: Path, num_classes: int, *, ties_allowed: bool = False
) -> pd.DataFrame:
    """Assert that every metric column of every row equals its recomputation; return the table.
    With `ties_allowed` (text fixtures repeat posts), individual fairness is checked only where
    the neighbourhood is unique."""
    outputs = experiment.parent
    table = pd.read_csv(experiment / "results.csv", dtype={"model_key": str, "eval": str})
    evals = json.loads((experiment / "recipes.json").read_text())["evals"]
    for _, row in table.iterrows():
        settings = evals[row["eval"]]
        with np.load(outputs / row["predictions"]) as npz:
            expected = group_columns(npz, num_classes)
            if settings.get("eval.individual.enabled", True):
                assert settings["eval.individual.space"] == "teacher"
                reference = table[
                    (table.role == "teacher")
                    & (table.seed == settings["eval.individual.reference_seed"])
                ]
                with np.load(outputs / reference["predictions"].iloc[0]) as ref:
                    embedding = ref["embedding"]
                k = min(int(settings["eval.individual.k"]), len(embedding) - 1)
                individual = individual_columns(npz, embedding, k)
                assert individual is not None or ties_allowed, "tied neighbours"
                expected |= individual or {}
        for column, value in expected.items():
            got = row[column]
            assert (math.isnan(value) and math.isnan(got)) or got == _approx(value), (
                f"{row['role']} {row['model_key']} {column}: results.csv {got}, recomputed {value}"
            )
    return table


def _approx(value):
    import pytest

    return pytest.approx(value, rel=1e-6, abs=1e-9)
