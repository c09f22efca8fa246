"""Permutation floors of DPD and EOD: equal to a plain loop, and right under a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdfair.analysis.claims import claims
from kdfair.analysis.floors import floors, model_floors, with_floors, within_class_shuffles
from kdfair.analysis.load import Sweep
from kdfair.metrics.catalog import claimed, describe, floored, lower_is_fairer, scale
from kdfair.metrics.columns import metric_columns
from kdfair.metrics.group import multiclass_dpd, multiclass_eod
from kdfair.predictions import Predictions


def _predictions(rng, *, classes=10, groups=5, per_cell=40, accuracy=0.8, biased=0.0):
    """Balanced test split; errors independent of the group unless `biased` > 0, which takes
    that much accuracy from group 0."""
    y = np.repeat(np.arange(classes), groups * per_cell)
    g = np.tile(np.repeat(np.arange(groups), per_cell), classes)
    hit = rng.random(len(y)) < np.where(g == 0, accuracy - biased, accuracy)
    y_pred = np.where(hit, y, (y + rng.integers(1, classes, len(y))) % classes)
    return Predictions(
        y_true=y,
        y_pred=y_pred,
        logits=np.zeros((len(y), 0), np.float32),
        index=np.arange(len(y)),
        attributes={"color": g},
        attribute_labels={"color": [f"g{i}" for i in range(groups)]},
    )


def test_shuffles_permute_the_attribute_within_each_true_class():
    rng = np.random.default_rng(0)
    p = _predictions(rng)
    shuffles = within_class_shuffles(p.y_true, p.attributes["color"], 50, seed=1)
    for row in shuffles[:5]:
        for c in range(10):
            members = p.y_true == c
            assert sorted(row[members]) == sorted(p.attributes["color"][members])
    assert (shuffles != p.attributes["color"]).any(axis=1).all()  # each row really shuffles


@pytest.mark.parametrize("classes", [2, 10])
def test_floors_equal_a_plain_loop_over_the_same_shuffles(classes):
    rng = np.random.default_rng(classes)
    p = _predictions(rng, classes=classes, biased=0.1)
    codes = p.attributes["color"]
    shuffles = within_class_shuffles(p.y_true, codes, 60, seed=2)
    observed = {
        "dpd_color": multiclass_dpd(
            p.y_true, p.y_pred, sensitive_features=codes, num_classes=classes
        )[0],
        "eod_color": multiclass_eod(
            p.y_true, p.y_pred, sensitive_features=codes, num_classes=classes
        )[0],
    }
    fast = model_floors(p, {"color": shuffles}, classes, observed)
    for metric, function in (("dpd_color", multiclass_dpd), ("eod_color", multiclass_eod)):
        loop = np.array(
            [
                function(p.y_true, p.y_pred, sensitive_features=row, num_classes=classes)[0]
                for row in shuffles
            ]
        )
        assert fast[f"{metric}_floor"] == pytest.approx(loop.mean(), abs=1e-12)
        assert fast[f"{metric}_excess"] == pytest.approx(observed[metric] - loop.mean())
        expected_p = (1 + np.sum(loop >= observed[metric] - 1e-12)) / (len(loop) + 1)
        assert fast[f"{metric}_perm_p"] == pytest.approx(expected_p)


def test_group_blind_errors_sit_on_their_floor_and_a_biased_model_above_it():
    rng = np.random.default_rng(3)
    rows = []
    for biased in (0.0, 0.0, 0.0, 0.0, 0.2):
        p = _predictions(rng, biased=biased)
        codes = p.attributes["color"]
        shuffles = within_class_shuffles(p.y_true, codes, 200, seed=4)
        eod = multiclass_eod(p.y_true, p.y_pred, sensitive_features=codes, num_classes=10)[0]
        rows.append(model_floors(p, {"color": shuffles}, 10, {"eod_color": eod}))
    blind, biased = rows[:4], rows[4]
    assert all(r["eod_color_floor"] > 0.1 for r in blind)  # ~40 examples a cell: a high floor
    assert all(abs(r["eod_color_excess"]) < 0.04 and r["eod_color_perm_p"] > 0.01 for r in blind)
    assert biased["eod_color_excess"] > 0.08 and biased["eod_color_perm_p"] < 0.01


def _sweep_of(tmp_path, rng, *, seeds=5, temperatures=(1, 2, 4, 7, 10)) -> Sweep:
    """A sweep whose accuracy falls with T while every error is blind to the attribute."""
    rows, cache = [], {}
    for seed in range(seeds):
        models = [("teacher", np.nan, 0.95), ("student", np.nan, 0.9)]
        models += [("distilled", float(t), 0.92 - 0.05 * np.log(t)) for t in temperatures]
        for role, t, accuracy in models:
            p = _predictions(rng, groups=10, per_cell=50, accuracy=accuracy + rng.normal(0, 0.005))
            path = f"m{seed}_{role}_{t}.npz"
            cache[tmp_path / path] = p
            columns = metric_columns(p, num_classes=10, neighbourhood=None)
            label = {"teacher": "teacher", "student": "NDS"}.get(role, f"DS T={t:g}")
            rows.append(
                {
                    "role": role,
                    "temperature": t,
                    "seed": seed,
                    "model_key": f"{role}{t}{seed}",
                    "teacher_key": f"teachernan{seed}" if role == "distilled" else np.nan,
                    "predictions": path,
                    "label": label,
                    "collapsed": False,
                    **columns,
                }
            )
    sweep = Sweep(tmp_path / "sweep", pd.DataFrame(rows), 10, [str(c) for c in range(10)])
    sweep._cache.update(cache)
    return sweep


def test_falling_accuracy_moves_raw_eod_but_no_excess_claim(tmp_path):
    sweep = _sweep_of(tmp_path, np.random.default_rng(5))
    table = floors(sweep, permutations=200)
    assert list(table.columns[:5]) == ["model", "seed", "role", "temperature", "model_key"]
    assert {"eod_color_floor", "eod_color_excess", "dpd_color_perm_p"} <= set(table.columns)
    result = claims(with_floors(sweep, table), correction="none").set_index(["claim", "metric"])
    assert result.loc[("fairness_improves_with_T", "eod_color"), "verdict"] == "reversed"
    excess = result[[m.endswith("_excess") for _, m in result.index]]
    assert len(excess) >= 4
    assert (excess["verdict"].isin(["not held", "not testable"])).all(), excess["verdict"]
    beyond = result.loc[("fairness_changes_beyond_accuracy", "eod_color_excess")]
    assert beyond["verdict"] != "held" and beyond["verdict"] != "reversed"


def test_the_metric_table_names_each_column_once():
    assert describe("eod_color").title == "EOD (color)" and describe("eod_color").floor
    assert describe("eod_color_excess").title == "EOD (color) excess over floor"
    assert describe("individual_fairness_excess") is None  # no floor, so no excess
    assert describe("model_key") is None
    columns = ["accuracy", "dpd_color", "eod_color", "eod_color_floor", "eod_color_excess"]
    columns += ["individual_fairness", "consistency"]
    assert floored(columns) == ["dpd_color", "eod_color"]
    assert claimed(columns) == ["dpd_color", "eod_color", "eod_color_excess", "individual_fairness"]
    assert lower_is_fairer("eod_color_excess") and not lower_is_fairer("consistency")
    assert scale("eod_color") == 100 and scale("individual_fairness") == 1
