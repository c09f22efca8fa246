"""Experiment trackers (logger=mlflow, logger=tensorboard) on tiny data, offline: one run per
model with its parameters, per-epoch history and final results, read back with each tracker's
own reader; no second run for a model found in the store; an unreachable tracker stops the job
before anything trains; the logger is in no model key or recipe."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from .cli_helpers import kdfair_in_process, run_kdfair

# Tiny and quick: the students train 2 epochs (a history of two points), the teacher 1.
SMOKE = ["+debug=smoke", "student_optim.epochs=2"]
PARAMS = ("role", "arch", "seed", "recipe", "model_key", "temperature", "alpha")


@pytest.fixture(scope="module")
def mlflow_sweep(tmp_path_factory):
    """A two-temperature smoke sweep with logger=mlflow, run twice (the second finds every
    model in the store); the folder it ran in."""
    pytest.importorskip("mlflow")
    workdir = tmp_path_factory.mktemp("mlflow_sweep")
    for _ in range(2):
        result = run_kdfair(
            workdir,
            workdir / "data",
            "train",
            "-m",
            "logger=mlflow",
            *SMOKE,
            "distill.temperature=1,4",
        )
        assert result.returncode == 0, result.stderr
    return workdir


def _mlflow_runs(outputs):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{outputs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("demo")
    return client, client.search_runs([experiment.experiment_id])


def test_mlflow_holds_one_run_per_model_with_its_params_history_and_results(mlflow_sweep):
    outputs = mlflow_sweep / "outputs"
    table = pd.read_csv(outputs / "demo" / "results.csv", dtype={"model_key": str})
    assert len(table) == 4  # teacher, NDS, T = 1 and T = 4: the second sweep appended nothing
    client, runs = _mlflow_runs(outputs)
    runs = [r for r in runs if r.data.tags.get("kdfair.origin") != "analysis"]
    assert {r.data.tags.get("kdfair.origin") for r in runs} == {"trained"}
    by_key = {r.data.params["model_key"]: r for r in runs}
    assert len(runs) == len(by_key) == 4 and set(by_key) == set(table["model_key"])
    for row in table.to_dict("records"):
        run = by_key[row["model_key"]]
        assert run.info.status == "FINISHED"
        params = run.data.params
        for name in PARAMS:
            if not (isinstance(row[name], float) and math.isnan(row[name])):
                assert params[name] == str(row[name]), name
        assert params["experiment"] == "demo"
        history = pd.read_csv(outputs / "models" / row["model_key"] / "history.csv")
        for column in ("train_loss", "train_accuracy"):
            points = client.get_metric_history(run.info.run_id, column)
            assert [p.step for p in points] == list(history["epoch"])
            assert [p.value for p in points] == pytest.approx(list(history[column]))
        finals = [c for c in table.columns if c.startswith(("dpd_", "eod_"))]
        finals += ["accuracy", "individual_fairness", "consistency"]
        for column in finals:
            if not math.isnan(row[column]):
                assert run.data.metrics[column] == pytest.approx(row[column]), column
    # Reused models are tagged, never logged twice: the teacher and NDS were found by the
    # second job of the first sweep and by both jobs of the second; each DS by one job.
    reuses = {
        r["role"]: by_key[r["model_key"]].data.tags.get("kdfair.reuses")
        for _, r in table.iterrows()
        if r["role"] != "distilled"
    }
    assert reuses == {"teacher": "3", "student": "3"}
    for key in table.loc[table["role"] == "distilled", "model_key"]:
        assert by_key[key].data.tags["kdfair.reuses"] == "1"
        assert by_key[key].data.tags["kdfair.reused"] == "true"


def test_analyze_logs_the_report_and_figures_to_mlflow(mlflow_sweep, capsys, monkeypatch):
    outputs = mlflow_sweep / "outputs"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = kdfair_in_process(
        capsys, "analyze", str(outputs / "demo"), "--logger", "mlflow", "--resamples", "100"
    )
    assert result.returncode == 0, result.stderr
    client, runs = _mlflow_runs(outputs)
    (analysis,) = [r for r in runs if r.data.tags.get("kdfair.origin") == "analysis"]
    names = {f.path for f in client.list_artifacts(analysis.info.run_id, "analysis")}
    assert "analysis/report.md" in names and "analysis/summary.csv" in names
    assert any(name.endswith(".png") for name in names)


def test_tensorboard_event_files_hold_the_per_epoch_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = run_kdfair(
        tmp_path, tmp_path / "data", "train", "logger=tensorboard", *SMOKE, "distill.temperature=4"
    )
    assert result.returncode == 0, result.stderr
    outputs = tmp_path / "outputs"
    table = pd.read_csv(outputs / "demo" / "results.csv", dtype={"model_key": str})
    folders = sorted((outputs / "tensorboard" / "demo").iterdir())
    assert len(folders) == 3
    for row in table.to_dict("records"):
        (folder,) = [f for f in folders if f.name.endswith(f"_{row['model_key']}")]
        assert folder.name.startswith(f"{row['role']}_{row['arch']}_seed0")
        events = EventAccumulator(str(folder))
        events.Reload()
        history = pd.read_csv(outputs / "models" / row["model_key"] / "history.csv")
        for column in ("train_loss", "train_accuracy", "test_accuracy", "lr"):
            logged = history.dropna(subset=[column])  # test accuracy: the last epoch's only
            points = events.Scalars(column)
            assert [p.step for p in points] == list(logged["epoch"]), column
            assert [p.value for p in points] == pytest.approx(list(logged[column]), rel=1e-6)
        (final,) = events.Scalars("results/accuracy")
        assert final.value == pytest.approx(row["accuracy"], rel=1e-6)


def test_an_unreachable_tracker_stops_the_job_before_training(tmp_path):
    pytest.importorskip("mlflow")
    result = run_kdfair(
        tmp_path,
        tmp_path / "data",
        "train",
        "logger=mlflow",
        "logger.tracking_uri=http://127.0.0.1:9",  # the discard port: nothing listens
        "+debug=smoke",
        timeout=120,  # MLflow's own retries would take minutes: the probe has none
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "kdfair: error:" in line]
    assert len(errors) == 1 and "cannot reach the tracking store http://127.0.0.1:9" in errors[0]
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "outputs").rglob("model.pt"))  # nothing trained
