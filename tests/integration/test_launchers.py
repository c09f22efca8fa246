"""Hydra launchers: parallel local jobs share one teacher through the model store's lock; the
submitit path (the slurm preset's plugin, run by its local executor) runs a sweep's jobs and
hands a job's error back to the terminal."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

from .cli_helpers import run_kdfair

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", re.M)


def _lifetime(log) -> tuple[datetime, datetime]:
    """The first and last timestamps of a job's log."""
    stamps = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in STAMP.findall(log.read_text())]
    return min(stamps), max(stamps)


def test_two_parallel_jobs_train_their_shared_teacher_once(tmp_path):
    result = run_kdfair(
        tmp_path,
        tmp_path / "data",
        "train",
        "-m",
        "hydra/launcher=parallel",
        "hydra.launcher.n_jobs=2",
        "+debug=smoke",
        "distill.temperature=1,4",
        "seed=0",
    )
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "outputs" / "demo" / "multirun").rglob("*.log"))
    assert len(files) == 2
    # The jobs ran at the same time: each started before the other finished.
    (start_a, end_a), (start_b, end_b) = (_lifetime(f) for f in files)
    assert start_a < end_b and start_b < end_a
    logs = "".join(f.read_text() for f in files)
    assert logs.count("teacher resnet20 seed=0 lr=0.1: training into") == 1
    assert logs.count("teacher resnet20 seed=0 lr=0.1: reusing") == 1
    for number in (1, 2):  # each job's place in the sweep and its models, in its log file
        assert f"progress: job {number}/2 · models 3/3 done, 0 left" in logs
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv")
    assert len(table) == 4 and table["model_key"].is_unique  # whole: one row per model
    assert sorted(table["role"]) == ["distilled", "distilled", "student", "teacher"]


def test_the_slurm_preset_composes():
    from hydra import compose, initialize_config_dir

    from ..conftest import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train", overrides=["hydra/launcher=slurm"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == 1 and launcher.timeout_min == 720


def test_a_submitit_local_sweep_runs_both_jobs_and_trains_their_teacher_once(tmp_path):
    """The SLURM path without a cluster: each job pickled, run in its own process and folder by
    submitit, its result pickled back; both jobs' rows land and their teacher trains once."""
    result = run_kdfair(
        tmp_path,
        tmp_path / "data",
        "train",
        "-m",
        "hydra/launcher=submitit_local",
        "+debug=smoke",
        "distill.temperature=1,4",
    )
    assert result.returncode == 0, result.stderr
    sweep = next((tmp_path / "outputs" / "demo" / "multirun").iterdir())
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2  # ran by submitit
    logs = "".join(f.read_text() for f in sorted(sweep.glob("*/kdfair.log")))
    assert logs.count("teacher resnet20 seed=0 lr=0.1: training into") == 1
    assert logs.count("teacher resnet20 seed=0 lr=0.1: reusing") == 1
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv")
    assert sorted(table["temperature"].dropna()) == [1.0, 4.0]
    assert len(table) == 4 and table["model_key"].is_unique


def test_a_failed_submitit_job_fails_the_sweep_with_its_one_line_error(tmp_path):
    """A job's KdfairError, raised in a submitit worker, reaches the terminal as kdfair's one
    line with exit status 2, as a single job's does; the other job's rows still land."""
    data = tmp_path / "data"
    missing = tmp_path / "absent" / "data"
    result = run_kdfair(
        tmp_path,
        data,
        "train",
        "-m",
        "hydra/launcher=slurm_local",
        "+debug=smoke",
        "distill.temperature=4",
        f"dataset.io.root={data},{missing}",
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kdfair: error: ")]
    assert len(errors) == 1 and f"dataset.io.root={str(missing)!r} does not exist" in errors[0]
    assert "Traceback" not in result.stderr
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv")
    assert len(table) == 3  # the first job's teacher, NDS and distilled student
