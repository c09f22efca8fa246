"""DDP with torchrun on CPU (gloo, 2 processes): the same models as one process, written once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kdfair.store import REQUIRED_FILES

from .cli_helpers import run_kdfair, run_kdfair_torchrun

# LeNet-5 on both sides: no BatchNorm, whose statistics are per process, so DDP's step is the
# one-process step up to float rounding. 101 test images: the processes' shards differ in size.
EQUAL_RUN = [
    "train",
    "+debug=smoke",
    "model@teacher=lenet5",
    "dataset.max_train=400",
    "dataset.max_test=101",
    "teacher_optim.epochs=3",
    "student_optim.epochs=2",
    "distill.temperature=[1,4]",
]


def _stored(workdir):
    models = workdir / "outputs" / "models"
    return {d.name: d for d in models.iterdir() if d.is_dir()}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.mark.parametrize(
    "augmentation",
    [
        # no augmentation: the teacher's logits are cached once, each process a shard, gathered
        ["dataset.crop_padding=0", "dataset.horizontal_flip=false"],
        # augmentation: the teacher runs every step on each process's half of the batch
        pytest.param(
            ["dataset.crop_padding=2", "dataset.horizontal_flip=true"], marks=pytest.mark.slow
        ),
    ],
    ids=["teacher-cache", "augmented"],
)
def test_two_processes_train_the_models_one_process_trains(tmp_path, data_root, augmentation):
    alone, ddp = tmp_path / "alone", tmp_path / "ddp"
    alone.mkdir(), ddp.mkdir()
    result = run_kdfair(alone, data_root, *EQUAL_RUN, *augmentation)
    assert result.returncode == 0, result.stderr
    result = run_kdfair_torchrun(ddp, data_root, 2, *EQUAL_RUN, *augmentation)
    assert result.returncode == 0, result.stderr

    table_alone = pd.read_csv(alone / "outputs" / "demo" / "results.csv")
    table_ddp = pd.read_csv(ddp / "outputs" / "demo" / "results.csv")
    assert len(table_ddp) == 4 and table_ddp["model_key"].is_unique  # rank 0 alone writes rows
    assert np.allclose(table_ddp["accuracy"], table_alone["accuracy"])
    single, distributed = _stored(alone), _stored(ddp)
    assert len(distributed) == len(single) == 4
    for key_alone, key_ddp in zip(table_alone["model_key"], table_ddp["model_key"], strict=True):
        assert key_alone != key_ddp  # the process count is part of a model's identity
        a = np.load(single[key_alone] / "predictions.npz")
        b = np.load(distributed[key_ddp] / "predictions.npz")
        np.testing.assert_allclose(b["logits"], a["logits"], atol=1e-4, err_msg=key_ddp)
        assert len(b["y_pred"]) == 101 and np.array_equal(b["y_true"], a["y_true"])
        assert json.loads((distributed[key_ddp] / "metrics.json").read_text())["processes"] == 2


@pytest.mark.slow  # `make test-all`; the default run keeps one DDP training
def test_a_sweep_under_torchrun_with_a_batchnorm_teacher_writes_every_file_once(
    tmp_path, data_root
):
    result = run_kdfair_torchrun(
        tmp_path, data_root, 2, "train", "-m", "+debug=smoke", "distill.temperature=4", "seed=0,1"
    )
    assert result.returncode == 0, result.stderr
    stored = _stored(tmp_path)
    assert len(stored) == 6  # per seed: teacher, student, distilled
    for folder in stored.values():
        assert sorted(p.name for p in folder.iterdir()) == sorted(REQUIRED_FILES)  # no ckpt/tmp
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv")
    assert len(table) == 6 and table["model_key"].is_unique
    assert len(list((tmp_path / "outputs" / "demo").rglob(".hydra"))) == 2  # rank 0's, per job
    assert result.stderr.count("Results of this job") == 2  # rank 0's summary, once per job
    assert result.stderr.count(": training into") == 6  # rank 1 stays quiet in every job


def test_a_batch_that_cannot_split_over_the_processes_is_refused(tmp_path, data_root):
    result = run_kdfair_torchrun(
        tmp_path, data_root, 2, "train", "+debug=smoke", "dataset.batch_size=51"
    )
    assert result.returncode != 0
    assert "dataset.batch_size=51 does not split over 2 processes" in result.stderr
    assert not (tmp_path / "outputs" / "models").exists()  # refused before any training


@pytest.mark.slow  # `make test-all`; the default run keeps one DDP training
def test_two_processes_train_the_text_models(tmp_path):
    """BERT -> DistilBERT under DDP: every parameter of the [CLS] classifiers gets a gradient
    (DDP fails on unused ones) and token batches split like image batches."""
    from ..fixtures.text import tiny_hatexplain_experiment

    experiment = tiny_hatexplain_experiment(tmp_path)
    result = run_kdfair_torchrun(
        tmp_path, tmp_path / "data", 2, "train", *experiment, "distill.temperature=2"
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "outputs" / "hatexplain_bert_distilbert" / "results.csv")
    assert table["role"].tolist() == ["teacher", "student", "distilled"]
    assert table["accuracy"].between(0, 1).all()
