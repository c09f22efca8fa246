"""kdfair tune's choice on planted objectives, its default grid, and the learning-rate settings'
keys: the NDS's own optimiser group and distill.lr change exactly the keys they should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdfair.jobmodels import job_models
from kdfair.recipes import recipe_hash, recipe_settings
from kdfair.settings import Tune, model_spec
from kdfair.tuning import choose
from kdfair.validate import validate
from tests.conftest import compose_train

GRID = [0.001, 0.003, 0.01, 0.03, 0.1]


def _trials(objective, *, seeds=(0, 1, 2), noise=0.0, role="distilled", temperature=4.0):
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for lr in GRID:
            value = objective(lr)
            rows.append(
                {
                    "role": role,
                    "temperature": temperature,
                    "lr": lr,
                    "seed": seed,
                    "val_accuracy": value + noise * rng.standard_normal(),
                    "train_accuracy": 0.9,
                    "diverged": np.isnan(value),
                    "model_key": f"{lr}-{seed}",
                }
            )
    return pd.DataFrame(rows)


def test_the_lr_a_planted_objective_favours_is_chosen():
    # Validation accuracy peaks at lr = 0.03 (on the log scale), plus per-seed noise.
    peak = np.log10(0.03)
    trials = _trials(lambda lr: 0.9 - 0.05 * (np.log10(lr) - peak) ** 2, noise=0.005)
    (choice,) = choose(trials).itertuples()
    assert choice.lr == 0.03 and choice.edge == ""
    assert trials[trials.chosen].lr.unique().tolist() == [0.03]  # every seed's row marked


def test_a_diverging_lr_is_never_chosen_and_an_edge_is_flagged():
    # Accuracy grows with the lr until 0.1 diverges: the best finite lr is 0.03, not at an edge
    # of the values tried, but the diverged one sits at the top of the grid.
    trials = _trials(lambda lr: np.nan if lr == 0.1 else 0.5 + lr)
    (choice,) = choose(trials).itertuples()
    assert choice.lr == 0.03
    assert trials[trials.lr == 0.1].diverged.all()
    # Without the diverging value, the largest lr wins and is flagged as the grid's highest.
    (choice,) = choose(_trials(lambda lr: 0.5 + lr)).itertuples()
    assert choice.lr == 0.1 and choice.edge == "highest"
    (choice,) = choose(_trials(lambda lr: 0.5 - lr)).itertuples()
    assert choice.lr == 0.001 and choice.edge == "lowest"


def test_one_diverged_seed_ranks_its_lr_below_every_finite_mean():
    trials = _trials(lambda lr: 0.5 + lr)
    trials.loc[(trials.lr == 0.1) & (trials.seed == 1), "val_accuracy"] = np.nan
    (choice,) = choose(trials).itertuples()
    assert choice.lr == 0.03


def test_ties_go_to_the_smaller_lr_and_roles_are_chosen_apart():
    flat = _trials(lambda lr: 0.7, role="student", temperature=np.nan)
    peaked = _trials(lambda lr: 0.9 if lr == 0.01 else 0.5)
    choices = choose(pd.concat([flat, peaked], ignore_index=True))
    by_role = dict(zip(choices.role, choices.lr, strict=True))
    assert by_role == {"student": 0.001, "distilled": 0.01}


def test_the_default_grid_spans_20x_on_a_log_scale_around_the_configured_lr():
    lrs = Tune(grid=None, seeds=1, roles=("student",)).lrs(0.02)
    assert len(lrs) == 5 and lrs[2] == 0.02
    assert lrs[-1] / lrs[0] == pytest.approx(20, rel=0.01)
    ratios = np.diff(np.log(lrs))
    assert np.allclose(ratios, ratios[0], rtol=0.01)  # evenly spaced on the log scale
    assert Tune(grid=(0.1, 0.01), seeds=1, roles=()).lrs(0.02) == (0.01, 0.1)


def _models(*overrides):
    return job_models(validate(compose_train(["+experiment=demo", *overrides])))


def test_the_nds_optimiser_group_changes_the_nds_key_only_when_set():
    plain = _models("nds_optim.optimizer.lr=null", "distill.lr=null")
    # Unset: the NDS is the student recipe, exactly as before nds_optim existed.
    settings = validate(compose_train(["+experiment=demo", "distill.lr=null"]))
    legacy = {**plain.student.spec}
    assert legacy["optim"] == settings.student.optim
    same = _models(
        f"nds_optim.optimizer.lr={settings.student.optim['optimizer']['lr']}", "distill.lr=null"
    )
    assert same.student.key == plain.student.key
    own = _models("nds_optim.optimizer.lr=0.05", "distill.lr=null")
    assert own.student.key != plain.student.key
    assert own.student.spec["optim"]["optimizer"]["lr"] == 0.05
    assert own.teacher.key == plain.teacher.key
    assert [m.key for m in own.distilled] == [m.key for m in plain.distilled]


def test_distill_lr_changes_each_temperatures_key_and_only_its_lr():
    plain = _models("distill.lr=null", "nds_optim.optimizer.lr=null")
    tuned = _models("distill.lr={1:0.01,4:0.02,10:0.05}", "nds_optim.optimizer.lr=null")
    assert tuned.teacher.key == plain.teacher.key and tuned.student.key == plain.student.key
    for before, after, lr in zip(plain.distilled, tuned.distilled, (0.01, 0.02, 0.05), strict=True):
        assert after.lr == lr
        unchanged = {**after.spec, "optim": before.spec["optim"]}
        assert unchanged == before.spec  # the lr is the only difference
        assert (after.key == before.key) == (lr == before.lr)


def test_one_tune_reads_as_one_recipe_per_role_that_still_matches_the_nds():
    models = _models("distill.lr={1:0.01,4:0.02,10:0.05}", "nds_optim.optimizer.lr=0.03")
    teacher_spec = models.teacher.spec
    hashes = {
        recipe_hash(recipe_settings(m.spec, "distilled", teacher_spec, chosen=m.chosen))
        for m in models.distilled
    }
    assert len(hashes) == 1  # three learning rates, one population recipe
    ds = recipe_settings(
        models.distilled[0].spec, "distilled", teacher_spec, models.distilled[0].chosen
    )
    nds = recipe_settings(models.student.spec, "student", chosen=models.student.chosen)
    assert ds["distill.lr"] == "1: 0.01, 4: 0.02, 10: 0.05"
    assert nds["nds_optim.optimizer.lr"] == 0.03
    assert "student_optim.optimizer.lr" not in ds and "student_optim.optimizer.lr" not in nds
    shared = set(ds) & set(nds)
    assert shared and all(ds[k] == nds[k] for k in shared)  # analyze pairs them


def test_model_spec_of_the_nds_is_the_students_when_nds_optim_is_unset():
    settings = validate(compose_train(["+experiment=demo", "distill.lr=null"]))
    models = job_models(settings)
    common = {k: v for k, v in models.student.spec.items() if k in ("dataset", "batch_size")}
    assert models.student.spec == model_spec(common, settings.student, settings.seed)


def test_a_distill_lr_mapping_on_the_command_line_replaces_the_experiments():
    """Hydra merges a {...} override into a mapping the config already has; the demo's T = 4
    and 10 rates must not survive `distill.lr={1:0.01}`."""
    from kdfair.overlay import expand_tuned

    args = expand_tuned(["+experiment=demo", "distill.lr={1:0.01}", "distill.temperature=[1]"])
    assert validate(compose_train(args)).distill.lr == {1.0: 0.01}


def test_the_students_lr_where_populations_have_their_own_is_one_clear_error():
    from kdfair.errors import KdfairError
    from kdfair.overrides import check_job_overrides

    with pytest.raises(KdfairError, match="distill.lr=null nds_optim.optimizer.lr=null"):
        check_job_overrides(["student_optim.optimizer.lr=0.05"])  # the demo sets both
    check_job_overrides(
        ["student_optim.optimizer.lr=0.05", "distill.lr=null", "nds_optim.optimizer.lr=null"]
    )
    check_job_overrides(["+experiment=trifeature_cpu", "student_optim.optimizer.lr=0.05"])
    check_job_overrides(["student_optim.optimizer.lr=0.05"], tuning=True)  # a tune's centre
