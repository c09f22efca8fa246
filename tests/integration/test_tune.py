"""`kdfair tune` end to end on tiny data, its overlay applied by `kdfair train tuned=PATH`, its
bad input, and the per-temperature learning rates it writes trained fused and alone alike."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml

from kdfair import provision, tuning
from kdfair.compose import compose_train
from kdfair.jobmodels import job_models
from kdfair.overlay import expand_tuned
from kdfair.plan import plan_tune
from kdfair.validate import validate

from .cli_helpers import run_kdfair
from .test_bad_input import _one_error_line

# Tiny data; the grid's 1e6 makes SGD's loss overflow within the first epoch.
TUNE = ["+debug=smoke", "dataset.val_fraction=0.25", "distill.temperature=[1,4]"]
GRID = "tune.grid=[0.01,1000000.0]"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One tune of the NDS and two temperatures over a grid with a diverging value, run twice."""
    work = tmp_path_factory.mktemp("tune")
    first = run_kdfair(work, work / "data", "tune", *TUNE, GRID)
    again = run_kdfair(work, work / "data", "tune", *TUNE, GRID)
    return SimpleNamespace(work=work, first=first, again=again, folder=work / "outputs/demo/tune")


def test_tune_keeps_the_finite_lr_records_the_divergence_and_writes_its_outputs(tuned):
    assert tuned.first.returncode == 0, tuned.first.stderr
    trials = pd.read_csv(tuned.folder / "tuning.csv")
    assert list(trials.columns) == tuning.COLUMNS
    # the NDS and T = 1, 4, each at two learning rates, one seed
    assert len(trials) == 6 and set(trials.role) == {"student", "distilled"}
    assert trials[trials.lr == 1e6].diverged.all() and not trials[trials.lr == 0.01].diverged.any()
    assert trials[trials.chosen].lr.unique().tolist() == [0.01]
    assert (trials[trials.chosen].edge == "lowest").all()  # 0.01 is the grid's lower end
    assert "the best lr 0.01 is the lowest of the grid" in tuned.first.stdout
    overlay = yaml.safe_load((tuned.folder / "tuned.yaml").read_text())
    assert overlay["nds_optim.optimizer.lr"] == 0.01
    assert overlay["distill.lr"] == {1: 0.01, 4: 0.01}
    assert "kdfair train -m +debug=smoke 'distill.temperature=[1,4]' tuned=" in tuned.first.stdout


def test_a_rerun_trains_nothing_and_plan_shows_every_trial_stored(tuned):
    assert tuned.again.returncode == 0, tuned.again.stderr
    assert "training into" not in tuned.again.stderr  # every trial found in the store
    assert "training into" in tuned.first.stderr
    result = run_kdfair(tuned.work, tuned.work / "data", "plan", "--tune", *TUNE, GRID)
    assert result.returncode == 0, result.stderr
    assert "7 models for 1 job(s): 7 stored" in result.stdout  # 6 trials and the teacher


def test_the_overlay_applies_to_the_study_and_a_mismatched_one_is_refused(tuned, tmp_path):
    overlay = tuned.folder / "tuned.yaml"
    study = [f"tuned={overlay}", "+debug=smoke", "distill.temperature=[1,4]"]
    result = run_kdfair(tuned.work, tuned.work / "data", "train", *study)
    assert result.returncode == 0, result.stderr
    rows = pd.read_csv(tuned.work / "outputs/demo/results.csv")
    assert set(rows[rows.role != "teacher"].lr) == {0.01}
    assert rows.groupby("role")["recipe"].nunique().max() == 1  # one recipe per role
    result = run_kdfair(tuned.work, tuned.work / "data", "analyze", "outputs/demo")
    assert result.returncode == 0, result.stderr
    assert "NDS 0.01 (nds_optim.optimizer.lr); DS 1: 0.01, 4: 0.01 (distill.lr)" in result.stdout
    # a temperature the overlay has no lr for
    result = run_kdfair(
        tuned.work, tuned.work / "data", "train", *study[:2], "distill.temperature=7"
    )
    assert "not for T = 7" in _one_error_line(result)
    # an overlay tuned for another experiment
    result = run_kdfair(
        tmp_path, tmp_path / "data", "plan", f"tuned={overlay}", "+experiment=trifeature_cpu"
    )
    assert "chosen for experiment demo" in _one_error_line(result)
    result = run_kdfair(tmp_path, tmp_path / "data", "plan", "tuned=no_such_overlay")
    assert "no such overlay" in _one_error_line(result)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["+debug=smoke", "dataset.val_fraction=0.25", "tune.grid=[0.1,-0.01]"], "tune.grid"),
        (["+debug=smoke", "dataset.val_fraction=0.25", "tune.grid=[0.1,0]"], "tune.grid"),
        (["+debug=smoke"], "dataset.val_fraction=0.1"),  # the demo has no validation split
        (["+debug=smoke", "dataset.val_fraction=0.25", "seed=0,1"], "tune.seeds"),
        (["+debug=smoke", "dataset.val_fraction=0.25", "--roles", "nds,dean"], "tune.roles"),
    ],
    ids=["negative-lr", "zero-lr", "no-validation-split", "seed-sweep", "unknown-role"],
)
def test_bad_tune_input_is_one_error_and_trains_nothing(tmp_path, args, phrase):
    result = run_kdfair(tmp_path, tmp_path / "data", "tune", *args)
    assert phrase in _one_error_line(result)
    assert not (tmp_path / "outputs" / "models").exists()


def test_plan_tune_lists_exactly_the_models_each_tune_stage_trains(tmp_path, monkeypatch):
    """With the teacher tuned too: its trials in the first stage, the students' (NDS and each
    temperature at each lr, learning from the configured teacher) in the second."""
    monkeypatch.setenv("KDFAIR_OUTPUTS", str(tmp_path))
    overrides = [*TUNE, "tune.seeds=2", "tune.roles=[teacher,student,distilled]"]
    planned = [(m.role, m.key) for m in plan_tune(overrides).models]

    obtained: list[tuple[str, str]] = []
    record = lambda models: obtained.extend((m.role, m.key) for m in models)  # noqa: E731
    shop = SimpleNamespace(data=SimpleNamespace(val=object()))
    monkeypatch.setattr("kdfair.pipeline.workshop", lambda settings, **_: shop)
    monkeypatch.setattr(provision, "obtain", lambda shop, model: record([model]))
    monkeypatch.setattr(provision, "obtain_group", lambda shop, models, **_: record(models))
    settings = validate(compose_train([*overrides, *tuning.TRIAL_OVERRIDES]))
    for stage in ("teacher", "students"):
        for job in tuning.stage_jobs(overrides, settings, stage):
            tuning.run_trials(compose_train(job))
    assert list(dict.fromkeys(obtained)) == planned
    roles = pd.Series([role for role, _ in planned]).value_counts().to_dict()
    # 5 teacher trials per seed; the distilled trials' teacher (the demo's teacher_seed 0, at the
    # configured lr) is seed 0's trial at that lr: one model, listed once
    assert roles == {"teacher": 2 * 5, "student": 2 * 5, "distilled": 2 * 2 * 5}


def test_per_temperature_learning_rates_train_fused_and_alone_to_identical_weights(tmp_path):
    weights = {}
    for fused in ("true", "false"):
        work = tmp_path / fused
        work.mkdir()
        result = run_kdfair(
            work,
            tmp_path / "data",
            "train",
            "+debug=smoke",
            "distill.temperature=[1,4]",
            "distill.lr={1:0.01,4:0.05}",
            f"distill.fused={fused}",
        )
        assert result.returncode == 0, result.stderr
        rows = pd.read_csv(work / "outputs/demo/results.csv")
        for row in rows[rows.role == "distilled"].itertuples():
            state = torch.load(
                work / "outputs/models" / row.model_key / "model.pt", weights_only=True
            )["state_dict"]
            weights.setdefault(row.temperature, []).append((row.model_key, row.lr, state))
    for (key_fused, _, fused), (key_alone, _, alone) in weights.values():
        assert key_fused == key_alone
        assert all(torch.equal(fused[name], alone[name]) for name in fused)
    assert sorted(lr for (_, lr, _), _ in weights.values()) == [0.01, 0.05]


def test_a_shipped_overlay_is_found_by_name_and_matches_its_experiment(monkeypatch, tmp_path):
    """configs/tuned/<name>.yaml: its settings compose with its experiment (keys change only
    through the learning rates)."""
    monkeypatch.setenv("KDFAIR_OUTPUTS", str(tmp_path))
    names = sorted(p.stem for p in (Path(tuning.__file__).parent / "configs/tuned").glob("*.yaml"))
    assert names, "no overlay is shipped"
    for name in names:
        path = Path(tuning.__file__).parent / "configs/tuned" / f"{name}.yaml"
        overlay = yaml.safe_load(path.read_text())
        experiment = overlay["tune.tuned_for"]["experiment"]
        temperatures = "distill.temperature=[" + ",".join(map(str, overlay["distill.lr"])) + "]"
        base_args = [f"+experiment={experiment}", temperatures]
        settings = validate(compose_train([*base_args, *expand_tuned([f"tuned={name}"])]))
        base = validate(compose_train(base_args))
        assert settings.nds_optim == {"nds_optim.optimizer.lr": overlay["nds_optim.optimizer.lr"]}
        tuned, plain = job_models(settings), job_models(base)
        assert tuned.teacher.key == plain.teacher.key
        for after, before in zip(tuned.distilled, plain.distilled, strict=True):
            assert after.lr == overlay["distill.lr"][int(after.temperature)]
            assert {**after.spec, "optim": before.spec["optim"]} == before.spec
