"""Edges that decide results: the collapse boundary, float16 logits, HateXplain's target rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kdfair.analysis.load import collapse_threshold, load_sweep
from kdfair.data import DataIO
from kdfair.data.hatexplain import DEFAULT_ATTRIBUTES, load_hatexplain, post_groups
from kdfair.errors import KdfairError
from kdfair.metrics.columns import metric_columns
from kdfair.metrics.individual import Neighbourhood
from kdfair.predictions import HALF_PRECISION_MIN_CLASSES, Predictions

from ..fixtures.text import write_hatexplain, write_tokenizer
from ..integration.sweep_fixture import write_fairness_sweep


def test_the_collapse_flag_at_its_boundary(tmp_path):
    """Collapsed below chance + 10% of the gap to perfect: 0.1 + 0.1 * 0.9 = 0.19 for 10 classes."""
    assert collapse_threshold(10) == pytest.approx(0.19)
    assert collapse_threshold(2) == pytest.approx(0.55)
    experiment = write_fairness_sweep(tmp_path, seeds=[0])
    path = experiment / "results.csv"
    table = pd.read_csv(path, dtype=str)
    table.loc[2, "accuracy"] = repr(0.19 - 1e-9)  # just below
    table.loc[3, "accuracy"] = repr(0.19 + 1e-9)  # just above
    table.to_csv(path, index=False)
    flags = load_sweep(experiment).results["collapsed"].tolist()
    assert flags[2] and not flags[3]
    assert sum(flags) == 1


def test_float16_logits_of_many_classes_round_trip_into_the_metrics(tmp_path):
    rng = np.random.default_rng(0)
    n, classes = 20_000, HALF_PRECISION_MIN_CLASSES + 50  # ~40 per (class, group) cell
    logits = rng.normal(scale=3, size=(n, classes)).astype(np.float32)
    y_pred = logits.argmax(1)
    original = Predictions(
        y_true=rng.integers(0, classes, n),
        y_pred=y_pred,
        logits=logits,
        index=np.arange(n),
        attributes={"a": rng.integers(0, 2, n)},
        attribute_labels={"a": ["x", "y"]},
    )
    original.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as stored:
        assert stored["logits"].dtype == np.float16  # stored at half precision ...
    loaded = Predictions.load(tmp_path / "p.npz")
    assert loaded.logits.dtype == np.float32 and np.array_equal(loaded.y_pred, y_pred)
    pairs = Neighbourhood.random_pairs(rng.normal(size=(n, 3)), n_pairs=5000)
    before = metric_columns(original, num_classes=classes, neighbourhood=pairs)
    after = metric_columns(loaded, num_classes=classes, neighbourhood=pairs)
    assert after.keys() == before.keys() and np.isfinite(before["eod_a"])
    del before["consistency"]  # undefined for random pairs
    for key, value in before.items():  # ... and measures what full precision measures
        assert after[key] == pytest.approx(value, rel=1e-3, abs=1e-6), key


def _annotators(*targets):
    return [{"label": "normal", "target": list(t)} for t in targets]


def test_a_community_counts_when_two_of_three_annotators_name_it_not_one():
    gender = DEFAULT_ATTRIBUTES["gender"]
    assert post_groups(_annotators(["Women"], ["None"], ["None"]), gender) == "none"
    assert post_groups(_annotators(["Women"], ["Women"], ["None"]), gender) == "women"
    # an annotator naming a community twice is still one annotator
    assert post_groups(_annotators(["Men", "Men"], ["None"], ["None"]), gender) == "none"


def test_two_communities_of_one_attribute_take_the_mapping_order():
    gender, race = DEFAULT_ATTRIBUTES["gender"], DEFAULT_ATTRIBUTES["race"]
    both = _annotators(["Men", "Women"], ["Women", "Men"], ["None"])
    assert post_groups(both, gender) == "women"  # Women comes first in the mapping
    assert post_groups(both, {"Men": "men", "Women": "women"}) == "men"
    mixed = _annotators(["Asian", "African"], ["African", "Asian"], ["Asian"])
    assert post_groups(mixed, race) == "african"


def test_an_unknown_hatexplain_label_is_a_clear_error(tmp_path):
    write_hatexplain(tmp_path)
    path = tmp_path / "hatexplain" / "dataset.json"
    posts = json.loads(path.read_text())
    first = sorted(posts)[0]
    for annotator in posts[first]["annotators"]:
        annotator["label"] = "spam"
    path.write_text(json.dumps(posts))
    tokenizer = str(write_tokenizer(tmp_path / "tokenizer"))
    with pytest.raises(KdfairError, match=f"post {first} has the unknown label 'spam'"):
        load_hatexplain(
            DataIO(str(tmp_path), cache_dir=str(tmp_path / "cache")), tokenizer=tokenizer
        )
