"""Hydra launchers: parallel local jobs share one teacher through the model store's lock."""

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
