import json

import pytest

from kdfair.atomic import atomic_path, write_json
from kdfair.errors import KdfairError
from kdfair.store import REQUIRED_FILES, ModelStore, model_key


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
