"""Kill a training job mid-run, rerun the same command: it resumes and matches an unkilled run."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from .cli_helpers import KDFAIR, kdfair_env, run_kdfair

ARGS = [
    "train",
    "+debug=smoke",
    "dataset.max_train=1000",
    "teacher_optim.epochs=3",
    "student_optim.epochs=2",
    "distill.temperature=4",
]


def _kill_after_first_checkpoint(workdir, data) -> None:
    process = subprocess.Popen(
        [KDFAIR, *ARGS],
        cwd=workdir,
        env=kdfair_env(workdir, data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    try:
        while not list((workdir / "outputs" / "models").glob("*/train.ckpt")):
            assert process.poll() is None, "the job ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _predictions(workdir):
    table = pd.read_csv(workdir / "outputs" / "demo" / "results.csv", dtype={"model_key": str})
    out = {}
    for _, row in table.iterrows():
        with np.load(workdir / "outputs" / row.predictions) as p:
            out[row.model_key] = p["logits"]
    return table, out


@pytest.mark.slow  # the same, deterministically and fast: tests/unit/test_races_and_resume.py
def test_a_killed_run_resumes_and_equals_an_uninterrupted_run(tmp_path):
    data = tmp_path / "data"
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    killed.mkdir(), straight.mkdir()

    _kill_after_first_checkpoint(killed, data)
    assert not (killed / "outputs" / "demo" / "results.csv").exists()  # nothing half-written
    resumed = run_kdfair(killed, data, *ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stderr
    assert run_kdfair(straight, data, *ARGS).returncode == 0

    table_killed, logits_killed = _predictions(killed)
    table_straight, logits_straight = _predictions(straight)
    assert table_killed["model_key"].tolist() == table_straight["model_key"].tolist()
    assert table_killed["accuracy"].tolist() == table_straight["accuracy"].tolist()
    for model, logits in logits_straight.items():
        np.testing.assert_array_equal(logits_killed[model], logits, err_msg=str(model))
    assert not list((killed / "outputs" / "models").glob("*/train.ckpt"))
