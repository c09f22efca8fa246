import json
import re

import numpy as np
import pytest
import torch

from kdfair.atomic import atomic_path, write_json
from kdfair.errors import KdfairError
from kdfair.predictions import Predictions
from kdfair.store import REQUIRED_FILES, Entry, ModelStore, model_key


def test_key_depends_on_content_not_on_order():
    a = model_key({"arch": {"name": "resnet20"}, "seed": 0})
    assert a == model_key({"seed": 0, "arch": {"name": "resnet20"}})
    assert a != model_key({"arch": {"name": "resnet20"}, "seed": 1})
    assert len(a) == 12


def _fake_train(calls):
    def train(folders):
        for folder in folders:
            calls.append(folder)
            for name in REQUIRED_FILES:
                if name != "metrics.json":
                    (folder / name).write_text("x")
            write_json(folder / "metrics.json", {"accuracy": 0.5})

    return train


def test_get_or_train_trains_once_then_reuses(tmp_path):
    store, calls = ModelStore(tmp_path), []
    ((first, trained),) = store.get_or_train(["k1"], _fake_train(calls), descriptions=["m"])
    ((second, trained_again),) = store.get_or_train(["k1"], _fake_train(calls), descriptions=["m"])
    assert trained and not trained_again
    assert len(calls) == 1 and first.folder == second.folder
    assert second.metrics == {"accuracy": 0.5}


def test_an_interrupted_entry_is_not_taken_for_a_finished_one(tmp_path):
    store = ModelStore(tmp_path)
    (tmp_path / "k1").mkdir()
    (tmp_path / "k1" / "model.pt").write_text("half")  # no metrics.json: never finished
    assert store.find("k1") is None


@pytest.mark.parametrize("damage", ["bad_json", "missing_file"])
def test_a_corrupt_entry_gives_a_clear_error(tmp_path, damage):
    store = ModelStore(tmp_path)
    store.get_or_train(["k1"], _fake_train([]), descriptions=["m"])
    if damage == "bad_json":
        (tmp_path / "k1" / "metrics.json").write_text("{not json")
    else:
        (tmp_path / "k1" / "predictions.npz").unlink()
    with pytest.raises(KdfairError, match=r"corrupt.*rm -r"):
        store.find("k1")


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_the_old_file_whole(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_several_keys_train_the_missing_ones_together_once(tmp_path):
    store, calls = ModelStore(tmp_path), []
    store.get_or_train(["b"], _fake_train(calls), descriptions=["b"])
    batches = []
    outcomes = store.get_or_train(
        ["a", "b", "c"],
        lambda folders: batches.append([f.name for f in folders]) or _fake_train(calls)(folders),
        descriptions=["a", "b", "c"],
    )
    assert batches == [["a", "c"]]  # one call for the missing ones; b is reused
    assert [trained for _, trained in outcomes] == [True, False, True]
    assert [entry.key for entry, _ in outcomes] == ["a", "b", "c"]


def test_written_files_get_the_permissions_of_any_new_file(tmp_path):
    """Not mkstemp's private 0600: a shared outputs folder stays readable by the team."""
    import os

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "results.json", {"a": 1})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "results.json").stat().st_mode & 0o777
    assert mode == plain.stat().st_mode & 0o777 == 0o644


def _entry(seed: int = 0) -> Entry:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 20)
    predictions = Predictions(
        y_true=y, y_pred=y, logits=np.eye(3, dtype=np.float32)[y], index=np.arange(20)
    )
    weights = {"w": torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32))}
    return Entry({"seed": seed}, "teacher", weights, predictions, {"accuracy": 1.0}, [])


def _written(tmp_path) -> ModelStore:
    store = ModelStore(tmp_path)
    store.get_or_train(
        ["k1"], lambda folders: store.write(folders[0], _entry()), descriptions=["m"]
    )
    return store


@pytest.mark.parametrize("name", ["model.pt", "predictions.npz"])
@pytest.mark.parametrize("damage", ["changed", "cut_short", "replaced_by_another"])
def test_a_changed_file_of_an_entry_is_refused_by_its_checksum(tmp_path, name, damage):
    store = _written(tmp_path)
    path = tmp_path / "k1" / name
    if damage == "replaced_by_another":  # a whole, readable file of another model
        store.write(tmp_path / "other", _entry(seed=1))
        path.write_bytes((tmp_path / "other" / name).read_bytes())
    else:
        content = bytearray(path.read_bytes())
        if damage == "changed":
            content[len(content) // 2] ^= 0xFF
        path.write_bytes(bytes(content if damage == "changed" else content[: len(content) // 2]))
    assert store.find("k1") is not None  # looking is cheap and does not read the files ...
    folder = re.escape(str(tmp_path / "k1"))
    with pytest.raises(KdfairError, match=rf"m: .*{name} .*SHA-256.*rm -r {folder}"):
        store.get_or_train(["k1"], _fake_train([]), descriptions=["m"])  # ... reusing does


def test_an_entry_written_before_checksums_is_reused_as_it_is(tmp_path):
    store = _written(tmp_path)
    metrics = json.loads((tmp_path / "k1" / "metrics.json").read_text())
    assert set(metrics["sha256"]) == {"model.pt", "predictions.npz"}
    del metrics["sha256"]
    write_json(tmp_path / "k1" / "metrics.json", metrics)
    ((entry, trained),) = store.get_or_train(["k1"], _fake_train([]), descriptions=["m"])
    assert not trained and "sha256" not in entry.metrics


def test_predictions_replaced_through_the_store_keep_the_entry_verifiable(tmp_path):
    """A reference teacher's features are added to its predictions.npz after it was stored."""
    store = _written(tmp_path)
    entry = store.find("k1")
    predictions = Predictions.load(entry.predictions_path)
    predictions.embedding = np.ones((20, 2), np.float32)
    entry.replace_predictions(predictions)
    ((again, trained),) = store.get_or_train(["k1"], _fake_train([]), descriptions=["m"])
    assert not trained and Predictions.load(again.predictions_path).embedding.shape == (20, 2)
    assert isinstance(again.metrics["sha256"]["predictions.npz"], str)
