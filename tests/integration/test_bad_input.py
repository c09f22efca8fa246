"""Bad input: one clear error, a non-zero exit, no traceback, and results left untouched."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from .cli_helpers import run_kdfair

SMOKE = ["+debug=smoke"]


def _assert_clear_failure(result, *phrases):
    assert result.returncode == 2, result.stderr  # bad input; 1 would mean a bug
    assert "Traceback" not in result.stderr + result.stdout
    assert "Error in call to target" not in result.stderr  # Hydra's wrapping, not ours
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def _one_error_line(result) -> str:
    """Exit status 2, no traceback, and exactly one `kdfair: error:` line: returned (train logs
    it, so its line starts with the log's time and logger)."""
    _assert_clear_failure(result)
    lines = [line for line in result.stderr.splitlines() if "kdfair: error:" in line]
    assert len(lines) == 1 and result.stderr.count("kdfair: error:") == 1, result.stderr
    return lines[0]


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
    teacher_key = pd.read_csv(results, dtype=str).query("role == 'teacher'")["model_key"].iloc[0]
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


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Outputs of a real (smoke-sized) `kdfair train`: teacher, NDS and DS T=4 rows and folders.
    Tests damage a copy, as a researcher would damage a copy of the demo's outputs."""
    root = tmp_path_factory.mktemp("demo")
    result = run_kdfair(root, root / "data", "train", *SMOKE, "distill.temperature=4")
    assert result.returncode == 0, result.stderr
    return root


def _copy_outputs(demo, tmp_path):
    shutil.copytree(demo / "outputs", tmp_path / "outputs")
    results = tmp_path / "outputs" / "demo" / "results.csv"
    return results, pd.read_csv(results, dtype=str)


@pytest.mark.parametrize(
    ("row", "phrases"),
    [
        (0, ["teacher", "seed=0"]),  # the first row's file: read for the number of classes
        (2, ["distilled", "seed=0", "T=4"]),  # read by the analyses
    ],
    ids=["first_row", "distilled"],
)
def test_a_cut_short_predictions_file_is_named_with_its_model_and_the_fix(
    demo, tmp_path, row, phrases
):
    results, table = _copy_outputs(demo, tmp_path)
    key = table.loc[row, "model_key"]
    folder = tmp_path / "outputs" / "models" / key
    predictions = folder / "predictions.npz"
    content = predictions.read_bytes()
    predictions.write_bytes(content[: len(content) // 2])
    line = _one_error_line(run_kdfair(tmp_path, demo / "data", "analyze", str(results.parent)))
    for phrase in [str(predictions), key, *phrases, f"rm -r {folder}", "kdfair train"]:
        assert phrase in line, line


@pytest.mark.parametrize(
    "cut",
    ["in_a_metric", "in_predictions", "in_finished_at", "then_a_line_end_added"],
)
def test_a_results_csv_cut_mid_row_is_named_with_its_line_and_the_fix(demo, tmp_path, cut):
    results, table = _copy_outputs(demo, tmp_path)
    text = results.read_text()
    start = text.rstrip("\n").rindex("\n") + 1  # the last row's first character
    fields = text[start:].split(",")

    def field_start(column: str) -> int:
        return start + sum(len(f) + 1 for f in fields[: list(table.columns).index(column)])

    at = {
        "in_a_metric": field_start("dpd_color") + 4,
        "in_predictions": field_start("predictions") + 10,
        "in_finished_at": len(text.rstrip("\n")) - 9,  # "...T22:55" parses as a time
        "then_a_line_end_added": field_start("dpd_color") + 4,
    }[cut]
    results.write_text(text[:at] + ("\n" if cut == "then_a_line_end_added" else ""))
    number = len(table) + 1  # the header is line 1
    line = _one_error_line(run_kdfair(tmp_path, demo / "data", "analyze", str(results.parent)))
    for phrase in [str(results), f"line {number}", "cut short", "copy", "kdfair train"]:
        assert phrase in line, line


@pytest.mark.parametrize("damage", ["changed", "cut_short"])
def test_a_stored_model_whose_weights_changed_is_never_silently_reused(demo, tmp_path, damage):
    """model.pt no longer matches the SHA-256 recorded when the entry was written: the job that
    would reuse the model (here the NDS; its weights are not even loaded on reuse) stops."""
    results, table = _copy_outputs(demo, tmp_path)
    key = table.set_index("role").loc["student", "model_key"]
    folder = tmp_path / "outputs" / "models" / key
    assert "model.pt" in json.loads((folder / "metrics.json").read_text())["sha256"]
    weights = bytearray((folder / "model.pt").read_bytes())
    if damage == "changed":
        weights[len(weights) // 2] ^= 0xFF  # one byte of the weights: torch.load would not notice
    else:
        weights = weights[: len(weights) // 2]
    (folder / "model.pt").write_bytes(bytes(weights))
    before = results.read_text()
    result = run_kdfair(tmp_path, demo / "data", "train", *SMOKE, "distill.temperature=4")
    line = _one_error_line(result)
    for phrase in ["student", "corrupt", "model.pt", "SHA-256", f"rm -r {folder}"]:
        assert phrase in line, line
    assert results.read_text() == before


def test_a_cut_short_recipes_json_is_named_with_the_fix(demo, tmp_path):
    results, _ = _copy_outputs(demo, tmp_path)
    recipes = results.with_name("recipes.json")
    recipes.write_text(recipes.read_text()[:40])
    line = _one_error_line(run_kdfair(tmp_path, demo / "data", "analyze", str(results.parent)))
    for phrase in [str(recipes), "cut short", "copy it again", "kdfair train"]:
        assert phrase in line, line
