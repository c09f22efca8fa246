"""Concurrency and resume, deterministically: processes released together on a barrier race for
one store key and one results.csv; distilled students (alone and fused) are killed after chosen
epochs and resumed; a damaged checkpoint is refused with the fix, never trained from silently."""

from __future__ import annotations

import multiprocessing as mp
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch

from kdfair import training
from kdfair.atomic import write_json
from kdfair.errors import KdfairError
from kdfair.results import append_results, read_results
from kdfair.schedule import Schedule
from kdfair.store import REQUIRED_FILES, ModelStore
from kdfair.training import Distillation, Run, fit, fit_many

from .test_distillation_wiring import Linear, _bundle

PROCESSES = 4
# Python >= 3.12 warns that fork() in a multi-threaded process may deadlock; these children use
# no thread of the parent (no torch work), only files and locks.
FORK_OK = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")


def _train_into(folders: list[Path], log: Path) -> None:
    for folder in folders:
        with log.open("a") as f:
            f.write(f"{folder.name}\n")
        time.sleep(0.3)  # a training that takes a while: the others arrive while it runs
        for name in REQUIRED_FILES:
            if name != "metrics.json":
                (folder / name).write_text("x")
        write_json(folder / "metrics.json", {"accuracy": 0.5})


def _race_for_a_key(root: str, barrier, results) -> None:
    barrier.wait()
    ((entry, trained),) = ModelStore(root).get_or_train(
        ["k1"], partial(_train_into, log=Path(root) / "trainings.log"), descriptions=["race"]
    )
    results.put((entry.key, trained))


def _race_to_append(path: str, worker: int, barrier) -> None:
    barrier.wait()
    for i in range(10):
        row = {"model_key": f"w{worker}m{i}", "role": "teacher", "eval": "e", "accuracy": 0.5}
        append_results(Path(path), [row])


def _start(target, make_args) -> list:
    """PROCESSES spawned processes running target(*make_args(i, barrier, queue)), released
    together by the barrier; what they put on the queue."""
    # fork: the children only touch files and locks (no torch work), and start at once
    context = mp.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    queue = context.Queue()
    processes = [
        context.Process(target=target, args=make_args(i, barrier, queue)) for i in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
        assert p.exitcode == 0
    return [queue.get() for _ in range(queue.qsize())] if not queue.empty() else []


@FORK_OK
def test_processes_racing_for_one_key_train_it_once(tmp_path):
    outcomes = _start(_race_for_a_key, lambda i, b, q: (str(tmp_path), b, q))
    assert (tmp_path / "trainings.log").read_text().splitlines() == ["k1"]
    assert sorted(trained for _, trained in outcomes) == [False] * (PROCESSES - 1) + [True]


@FORK_OK
def test_processes_racing_to_append_lose_no_row(tmp_path):
    path = tmp_path / "results.csv"
    _start(_race_to_append, lambda i, b, q: (str(path), i, b))
    table = read_results(path)
    assert len(table) == PROCESSES * 10 and table["model_key"].is_unique


class Killed(Exception):
    pass


def _train(students, data, teacher, *, kill_after: dict | None = None, patch=None):
    """fit_many over `students` ((name, model, checkpoint)); `kill_after` {name: epoch} stops
    the process (an exception) right after that run's checkpoint of that epoch is written."""
    if kill_after:
        real = training._end_epoch

        def end_epoch(run, stats, epoch, *args):
            real(run, stats, epoch, *args)
            if kill_after.get(run.description) == epoch + 1:
                raise Killed(run.description)

        patch.setattr(training, "_end_epoch", end_epoch)
    temperature = {"a": 2.0, "b": 8.0}  # each student's own, alone or fused
    runs = [
        Run(model, Distillation(teacher, temperature[name], 0.8), checkpoint, name)
        for name, model, checkpoint in students
    ]
    try:
        fit_many(
            runs,
            data,
            partial(torch.optim.SGD, lr=0.1, momentum=0.9),
            Schedule(epochs=4, batch_size=16, milestones=(2,)),
            seed=7,
            device=torch.device("cpu"),
            eval_every_epoch=False,
        )
    finally:
        if kill_after:
            patch.undo()
    return [r.model for r in runs]


@pytest.mark.parametrize("augmented", [False, True], ids=["cached-teacher", "live-teacher"])
def test_distilled_students_killed_at_different_epochs_resume_to_the_same_weights(
    tmp_path, monkeypatch, augmented
):
    data, teacher = _bundle(48, augmented), Linear(1)
    straight = _train([("a", Linear(2), None), ("b", Linear(3), None)], data, teacher)
    # Alone: a killed after epoch 1, b after epoch 3; then the two fused (b sits out the
    # epochs it has done), killed again after a's epoch 2; then resumed to the end.
    a_ckpt, b_ckpt = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    for name, model, ckpt, epoch in (("a", Linear(2), a_ckpt, 1), ("b", Linear(3), b_ckpt, 3)):
        with pytest.raises(Killed):
            _train(
                [(name, model, ckpt)], data, teacher, kill_after={name: epoch}, patch=monkeypatch
            )
    with pytest.raises(Killed):
        fused = [("a", Linear(2), a_ckpt), ("b", Linear(3), b_ckpt)]
        _train(fused, data, teacher, kill_after={"a": 2}, patch=monkeypatch)
    epochs = [torch.load(c, weights_only=True)["epoch"] for c in (a_ckpt, b_ckpt)]
    assert epochs == [2, 3]
    resumed = _train([("a", Linear(2), a_ckpt), ("b", Linear(3), b_ckpt)], data, teacher)
    for expected, got in zip(straight, resumed, strict=True):
        for key, value in expected.state_dict().items():
            torch.testing.assert_close(got.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("damage", ["garbage", "other_model"])
def test_a_damaged_checkpoint_is_refused_with_the_fix(tmp_path, damage):
    data, checkpoint = _bundle(32, False), tmp_path / "train.ckpt"
    if damage == "garbage":
        checkpoint.write_bytes(b"\x00not a checkpoint")
    else:  # a checkpoint of another model, e.g. a store folder reused by hand
        torch.save({"epoch": 1, "model": {"w": torch.zeros(1)}}, checkpoint)

    def train():
        return fit(
            Linear(2),
            data,
            partial(torch.optim.SGD, lr=0.1),
            Schedule(epochs=2, batch_size=16, milestones=()),
            seed=0,
            device=torch.device("cpu"),
            checkpoint=checkpoint,
            eval_every_epoch=False,
        )

    with pytest.raises(KdfairError, match="(?s)cannot be loaded.*Delete it"):
        train()
    checkpoint.unlink()  # the advice, followed: a clean restart
    assert [row["epoch"] for row in train()] == [1, 2]
    assert pd.notna(torch.load(checkpoint, weights_only=True)["epoch"])
