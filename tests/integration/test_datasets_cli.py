"""`kdfair train` on every file-based dataset, from fixture files in the real formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ..fixtures.datasets import (
    write_celeba,
    write_cifar,
    write_imagenet,
    write_svhn,
    write_tinyimagenet,
)
from .cli_helpers import run_kdfair
from .independent import check_results

WRITERS = {
    "svhn": write_svhn,
    "cifar10": write_cifar,
    "cifar100": lambda r: write_cifar(r, "cifar100"),
}


# CIFAR-100 in the default run; SVHN and CIFAR-10 share its CLI path (their readers are tested in
# tests/unit/test_datasets.py) and run with `make test-all`.
@pytest.mark.parametrize(
    "dataset",
    [
        "cifar100",
        pytest.param("cifar10", marks=pytest.mark.slow),
        pytest.param("svhn", marks=pytest.mark.slow),
    ],
)
def test_paper_experiment_trains_from_its_files(tmp_path, dataset):
    WRITERS[dataset](tmp_path / "data")
    experiment = f"{dataset}_resnet56_resnet20"
    result = run_kdfair(
        tmp_path,
        tmp_path / "data",
        "train",
        f"+experiment={experiment}",
        "+debug=smoke",
        "distill.temperature=4",
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "outputs" / experiment / "results.csv")
    assert table["role"].tolist() == ["teacher", "student", "distilled"]
    assert table["arch"].tolist() == ["resnet56", "resnet20", "resnet20"]
    assert not any(c.startswith(("dpd_", "eod_")) for c in table.columns)  # no protected attributes


def test_celeba_fills_binary_group_fairness_columns(tmp_path):
    """Cut to 40 of its 60 test images, each prediction still carries its own image's label and
    attributes, and every metric column equals its recomputation from predictions.npz."""
    written = write_celeba(tmp_path / "data", n=120, n_test=60)
    result = run_kdfair(
        tmp_path,
        tmp_path / "data",
        "train",
        "+experiment=trifeature_resnet20_lenet5",
        "+debug=smoke",
        "dataset=celeba",
        "dataset.image_size=32",
        "dataset.max_test=40",
        "distill.temperature=2",
    )
    assert result.returncode == 0, result.stderr
    experiment = tmp_path / "outputs" / "trifeature_resnet20_lenet5"
    table = check_results(experiment, num_classes=2)
    for column in ("dpd_Young", "eod_Young", "dpd_Male", "eod_Male"):
        assert table[column].between(0, 1).all(), column
    assert "CelebA balanced training set" in result.stderr
    test_rows = written["partition"] == 2
    for row in table.itertuples():
        with np.load(tmp_path / "outputs" / row.predictions) as p:
            assert len(p["index"]) == 40 and p["index"].max() < 60
            assert not np.array_equal(p["index"], np.arange(40))  # a subset, not the first 40
            np.testing.assert_array_equal(
                p["y_true"], written["attributes"]["Smiling"][test_rows][p["index"]]
            )
            for attr in ("Young", "Male"):
                expected = written["attributes"][attr][test_rows][p["index"]]
                np.testing.assert_array_equal(p[f"attr_{attr}"], expected)


@pytest.mark.parametrize("dataset", ["tinyimagenet", "imagenet"])
def test_folder_datasets_train_end_to_end(tmp_path, dataset):
    writer = write_tinyimagenet if dataset == "tinyimagenet" else write_imagenet
    writer(tmp_path / "data")
    extra = ["dataset.io.num_workers=0", "dataset.image_size=64"] if dataset == "imagenet" else []
    result = run_kdfair(
        tmp_path,
        tmp_path / "data",
        "train",
        "+experiment=trifeature_resnet20_lenet5",
        "+debug=smoke",
        f"dataset={dataset}",
        "dataset.num_classes=3",
        "distill.temperature=4",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "outputs" / "trifeature_resnet20_lenet5" / "results.csv")
    assert table["dataset"].tolist() == [dataset] * 3
