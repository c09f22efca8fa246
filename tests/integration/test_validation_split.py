"""A held-out validation split through a whole job: per-epoch accuracy comes from it, the test
split is predicted once per model, and eval.checkpoint=best is part of the models' recipe."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import kdfair
from kdfair.data.bundle import DataBundle
from kdfair.errors import KdfairError

SMOKE = ["+experiment=demo", "+debug=smoke", "eval.individual.enabled=false"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("KDFAIR_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("KDFAIR_DATA", str(tmp_path / "data"))
    return tmp_path / "outputs"


def _count_test_passes(monkeypatch) -> list[str]:
    """Record the split of every evaluation pass (DataBundle.test_batches call)."""
    passes = []
    original = DataBundle.test_batches

    def counted(self, *args, split="test", **kwargs):
        passes.append(split)
        return original(self, *args, split=split, **kwargs)

    monkeypatch.setattr(DataBundle, "test_batches", counted)
    return passes


def test_with_a_validation_split_each_model_predicts_the_test_split_once(env, monkeypatch):
    passes = _count_test_passes(monkeypatch)
    overrides = [*SMOKE, "dataset.val_fraction=0.25", "student_optim.epochs=2"]
    rows = kdfair.train([*overrides, "eval.checkpoint=best"])
    assert len(rows) == 5  # teacher, NDS and three distilled students
    assert passes.count("test") == len(rows)  # once each, after training
    assert passes.count("val") == 1 + 4 * 2  # every epoch of every model (teacher: 1 epoch)
    models = env / "models"
    for key in rows["model_key"]:
        history = pd.read_csv(models / key / "history.csv")
        assert "val_accuracy" in history and "test_accuracy" not in history
        metrics = json.loads((models / key / "metrics.json").read_text())
        best = int(history["val_accuracy"].idxmax()) + 1  # idxmax: the first best epoch
        assert metrics["kept_epoch"] == best
        assert metrics["dataset_info"]["n_val"] == 50  # a quarter of the 200 smoke images
    recipes = json.loads((env / "demo" / "recipes.json").read_text())["recipes"]
    settings = [r["settings"] for r in recipes.values()]
    assert all(s["eval.checkpoint"] == "best" for s in settings)
    assert all(s["dataset.val_fraction"] == 0.25 for s in settings)

    last = kdfair.train(overrides)  # eval.checkpoint=last: other models, other recipes
    assert set(last["model_key"]).isdisjoint(rows["model_key"])
    assert set(last["recipe"]).isdisjoint(rows["recipe"])


def test_checkpoint_best_without_a_validation_split_fails_before_training(env):
    with pytest.raises(KdfairError, match="no validation split"):
        kdfair.train([*SMOKE, "eval.checkpoint=best"])
    assert not (env / "models").exists() or not any((env / "models").iterdir())
