"""`kdfair plan` (what a command would train, and how far it has got) and the Python API
(`kdfair.train`, `kdfair.load_sweep`, `kdfair.analyze`) on one smoke job the module shares."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from filelock import FileLock

import kdfair
from kdfair.plan import IN_PROGRESS, MISSING, STORED, format_plan, plan

SMOKE = ["+experiment=demo", "+debug=smoke", "eval.individual.enabled=false"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KDFAIR_OUTPUTS", str(root / "outputs"))
        env.setenv("KDFAIR_DATA", str(root / "data"))
        rows = kdfair.train([*SMOKE, "seed=0"])
        yield root / "outputs", rows


@pytest.fixture
def env(outputs, monkeypatch):
    monkeypatch.setenv("KDFAIR_OUTPUTS", str(outputs[0]))
    return outputs[0]


def test_train_returns_the_jobs_rows_as_written_to_results_csv(outputs):
    root, rows = outputs
    assert sorted(rows["role"]) == ["distilled"] * 3 + ["student", "teacher"]
    written = pd.read_csv(root / "demo" / "results.csv")
    assert written["model_key"].tolist() == rows["model_key"].tolist()


def test_a_stored_job_plans_nothing_to_train_and_its_keys_are_the_stored_ones(outputs, env):
    planned = plan(SMOKE)
    assert planned.jobs == 1 and planned.epochs_to_train == 0
    assert [m.status for m in planned.models] == [STORED] * 5
    assert {m.key for m in planned.models} == set(outputs[1]["model_key"])


def test_plan_shows_each_stored_models_numerics_and_what_this_machine_would_use(outputs, env):
    table = format_plan(plan(SMOKE))
    assert "numerics" in table.splitlines()[0]
    assert table.count("cpu fp32") == 5 + 1  # the 5 stored models, and the footer
    assert "Models trained here would be cpu fp32 (device=cpu, amp=False)." in table
    for metrics in (outputs[0] / "models").glob("*/metrics.json"):
        recorded = json.loads(metrics.read_text())["numerics"]
        assert recorded == {"device": "cpu", "amp": None, "deterministic": False}


def test_a_sweep_lists_every_model_once_with_role_seed_and_temperature(env):
    planned = plan([*SMOKE, "seed=0,1", "distill.teacher_seed=0"], multirun=True)
    assert planned.jobs == 2
    by_seed = {}
    for m in planned.models:
        by_seed.setdefault(m.seed, []).append((m.role, m.temperature, m.status))
    # one shared teacher (distill.teacher_seed=0): listed once, stored
    assert by_seed[0][0] == ("teacher", None, STORED)
    assert sorted(t for role, t, _ in by_seed[1] if role == "distilled") == [1, 4, 10]
    assert {status for _, _, status in by_seed[1]} == {MISSING}
    assert not any(role == "teacher" for role, _, _ in by_seed[1])
    assert planned.epochs_to_train == 4  # NDS + 3 DS of seed 1, one smoke epoch each
    with pytest.raises(Exception, match="add -m"):
        plan([*SMOKE, "seed=0,1"])


def test_a_model_in_training_is_in_progress_with_its_epoch(env):
    overrides = [*SMOKE, "seed=3", "student_optim.epochs=5", "teacher_optim.epochs=4"]
    teacher, student, *_ = plan(overrides).models
    assert (teacher.status, student.status) == (MISSING, MISSING)
    folder = env / "models" / student.key
    folder.mkdir(parents=True)
    torch.save({"epoch": 2}, folder / "train.ckpt")  # what training leaves after epoch 2
    with FileLock(str(env / "models" / f"{teacher.key}.lock")):  # a job training the teacher
        now = {m.key: m for m in plan(overrides).models}
        table = format_plan(plan(overrides))
    assert (now[teacher.key].status, now[teacher.key].epochs_to_train) == (IN_PROGRESS, 4)
    assert (now[student.key].status, now[student.key].epochs_to_train) == (IN_PROGRESS, 3)
    assert "in progress (epoch 2/5)" in table
    assert "22 epochs to train" in table  # teacher 4 + NDS 3 + 3 distilled x 5
    assert plan(overrides).models[0].status == MISSING  # lock released: a leftover file only


def test_load_sweep_and_analyze_from_python(outputs, env):
    sweep = kdfair.load_sweep(outputs[0] / "demo")
    assert len(sweep.population("teacher")) == 1
    assert len(sweep.population("distilled", 4.0)) == 1
    assert {"accuracy", "dpd_color", "eod_texture"} <= set(sweep.metric_columns)
    first = sweep.results.iloc[0]
    assert len(sweep.predictions(first).y_pred) == 100  # the smoke test split
    report = kdfair.analyze(outputs[0] / "demo", resamples=100)
    assert report.name == "report.md" and "## Claims" in report.read_text()


def test_train_refuses_a_string_and_checks_overrides_like_the_cli():
    with pytest.raises(TypeError, match="list of overrides"):
        kdfair.train("+experiment=demo")
    with pytest.raises(Exception, match="available experiment names"):
        kdfair.train(["+experiment=no_such_study"])
