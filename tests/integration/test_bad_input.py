"""Bad input: one clear error, a non-zero exit, no traceback, and results left untouched."""

from __future__ import annotations

import pytest

from .cli_helpers import run_kdfair

SMOKE = ["+debug=smoke"]


def _assert_clear_failure(result, *phrases):
    assert result.returncode == 2, result.stderr  # bad input; 1 would mean a bug
    assert "Traceback" not in result.stderr + result.stdout
    assert "Error in call to target" not in result.stderr  # Hydra's wrapping, not ours
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("overrides", "phrases"),
    [
        (
            ["+experiment=no_such_experiment"],
            ["experiment/no_such_experiment", "trifeature_resnet20_lenet5"],
        ),
        (["model@teacher=no_such_model"], ["model/no_such_model", "resnet56"]),
        (["dataset=no_such_dataset"], ["dataset/no_such_dataset", "trifeature"]),
        (["distill.temperature=0"], ["distill.temperature=0", "> 0"]),
        (["distill.temperature=-2"], ["distill.temperature=-2", "> 0"]),
        (["distill.alpha=1.5"], ["distill.alpha=1.5", "<= 1"]),
        (
            ["dataset.io.root=/no/such/folder/anywhere"],
            ["dataset.io.root='/no/such/folder/anywhere'", "does not exist"],
        ),
        (["seed=-1"], ["seed=-1"]),
        (  # the demo's settings are not silently applied to another dataset
            ["dataset=cifar10"],
            ["without an experiment", "+experiment=", "~default_experiment"],
        ),
        (  # a setting the dataset's factory does not take is named, with those it takes
            [
                "+experiment=cifar10_resnet56_resnet20",
                "+dataset.n_test=5",
                "dataset.io.root={data}",
            ],
            ["dataset cifar10 has no setting 'n_test'", "crop_padding"],
        ),
        (["dataset.root=/data"], ["dataset.io", "dataset.io.root=/data"]),
        (  # a KdfairError raised inside a factory that Hydra calls: itself, newlines intact
            ["+experiment=cifar10_resnet56_resnet20", "dataset.io.root={data}"],
            ["kdfair: error: CIFAR-10 not found", "\nExpected layout:\n", "download=true"],
        ),
        (["seed=[1,2"], ["kdfair: error: cannot read the overrides", "no viable alternative"]),
    ],
    ids=[
        "experiment",
        "model",
        "dataset",
        "temperature_zero",
        "temperature_negative",
        "alpha",
        "dataset_root",
        "seed",
        "dataset_on_the_demo",
        "setting_of_another_dataset",
        "io_setting_outside_io",
        "missing_cifar_files",
        "override_syntax",
    ],
)
def test_bad_input_gives_one_clear_error_and_writes_nothing(tmp_path, overrides, phrases):
    (tmp_path / "data").mkdir()
    overrides = [o.format(data=tmp_path / "data") for o in overrides]
    result = run_kdfair(tmp_path, tmp_path / "data", "train", *SMOKE, *overrides)
    _assert_clear_failure(result, *phrases)
    assert not (tmp_path / "outputs" / "models").exists()
    assert not list((tmp_path / "outputs").glob("*/results.csv"))


def test_a_corrupt_store_entry_is_named_with_the_fix(tmp_path):
    data = tmp_path / "data"
    assert run_kdfair(tmp_path, data, "train", *SMOKE, "distill.temperature=4").returncode == 0
    results = tmp_path / "outputs" / "demo" / "results.csv"
    before = results.read_text()
    teacher_key = before.splitlines()[1].split(",")[8]
    metrics = tmp_path / "outputs" / "models" / teacher_key / "metrics.json"
    metrics.write_text("{truncated")
    result = run_kdfair(tmp_path, data, "train", *SMOKE, "distill.temperature=4")
    _assert_clear_failure(result, "corrupt", teacher_key, "rm -r")
    assert results.read_text() == before


def test_unknown_command_is_explained(tmp_path):
    result = run_kdfair(tmp_path, tmp_path, "trian")
    _assert_clear_failure(result, "unknown command 'trian'", "train")


def test_an_unknown_name_in_a_sweep_is_refused_before_any_job_runs(tmp_path):
    result = run_kdfair(
        tmp_path, tmp_path / "data", "train", "-m", *SMOKE, "model@student=lenet5,lenet_5"
    )
    _assert_clear_failure(result, "model/lenet_5.yaml", "available model names", "resnet20")
    assert not (tmp_path / "outputs").exists()


def test_a_users_experiment_that_keeps_the_demo_is_named_with_the_fix(tmp_path, monkeypatch):
    """An experiment file of one's own (KDFAIR_CONFIG_DIR) without `override /default_experiment:
    null` would silently carry the demo's sizes and epochs: refused, naming the line to add."""
    configs = tmp_path / "configs"
    (configs / "experiment").mkdir(parents=True)  # only the user's file: the rest is packaged
    (configs / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /dataset: cifar10\nexperiment: mine\n"
    )
    monkeypatch.setenv("KDFAIR_CONFIG_DIR", str(configs))
    result = run_kdfair(tmp_path, tmp_path / "data", "train", *SMOKE, "+experiment=mine")
    _assert_clear_failure(result, "experiment/mine.yaml", "override /default_experiment: null")
    assert not (tmp_path / "outputs" / "models").exists()
