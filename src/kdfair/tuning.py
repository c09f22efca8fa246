"""`kdfair tune`: every population's learning rate chosen on the validation split.

A comparison of populations is fair only when each is trained as well as the budget allows, and
one learning rate for every role is not that: under the factor-free KD loss the soft term's
gradient shrinks as 1/T^2, so a high-T student at the NDS's lr is under-trained. `kdfair tune`
trains, per tuned role and seed, one *trial* per learning rate of a grid (the distilled students:
per temperature and lr) under the study's own budget and schedule, on the training split minus its
validation hold-out, and picks per role (and T) the lr with the best mean validation accuracy over
the tune seeds:

    lr*(role, T) = argmax_{lr in grid} mean_{s in seeds} val_accuracy(role, T, lr, s)

(ties go to the smaller lr; a trial whose loss diverged scores below every other). A choice at
either end of the grid is flagged: the best lr may lie outside it.

Trials are stored models like any other (kdfair.jobmodels.tune_models lists them), so a rerun trains
only what is missing; the students of a seed train fused (one data stream, one teacher pass, one
optimiser each). The jobs, one per seed, run through Hydra's launchers as `kdfair train -m` does;
with `teacher` among the roles its trials run first and the students' trials learn from the
chosen teacher. Outputs, in <paths.experiment>/tune/ (tune_<method or control>/ for the other
distilled populations, kdfair.variants.variant_name): tuning.csv (a row per trial) and tuned.yaml
(the overlay `kdfair train tuned=PATH` applies: kdfair.overlay).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from kdfair import distributed
from kdfair.errors import KdfairError
from kdfair.jobmodels import JobModel, tune_models
from kdfair.settings import Settings
from kdfair.store import ModelStore

log = logging.getLogger(__name__)

# Settings a tune sets for its own jobs: trials carry explicit learning rates, so the choices of
# an earlier tune (an overlay, or the experiment's own) neither move the grid nor need to cover
# the temperatures tuned.
TRIAL_OVERRIDES = ("distill.lr=null", "nds_optim.optimizer.lr=null")
COLUMNS = [
    "role",
    "temperature",
    "lr",
    "seed",
    "val_accuracy",
    "train_accuracy",
    "diverged",
    "chosen",
    "edge",
    "model_key",
]


def run_trials(cfg: DictConfig) -> None:
    """One tune job: the trials of `tune.stage` for the job's seed, each trained if missing."""
    from kdfair.pipeline import workshop
    from kdfair.provision import obtain, obtain_group
    from kdfair.validate import validate

    settings = validate(cfg)
    shop = workshop(settings, on_divergence="stop")  # a diverging lr is a result
    if shop.data.val is None:
        raise no_validation_split(settings.dataset["name"])
    models = tune_models(settings, str(cfg.tune.stage), distributed.world_size())
    teacher = obtain(shop, models.teacher) if models.teacher is not None else None
    for role in ("teacher", "student", "distilled"):
        group = [m for m in models.trials if m.role == role]
        if group:
            obtain_group(shop, group, teacher=teacher if role == "distilled" else None)


def no_validation_split(dataset: str) -> KdfairError:
    return KdfairError(
        f"kdfair tune chooses learning rates on a validation split, and {dataset} has none. "
        "Hold one out of the training split: add dataset.val_fraction=0.1 (the study itself can "
        "then train on the full split)."
    )


def check_validation(cfg: DictConfig) -> None:
    """Before any job starts: a dataset with a val_fraction setting must hold some out
    (datasets without the setting have an official validation split)."""
    if "val_fraction" in cfg.dataset and not cfg.dataset.val_fraction:
        raise no_validation_split(str(cfg.dataset.name))


def seeds(settings: Settings) -> list[int]:
    """The tune's seeds: the job's seed and the next tune.seeds - 1."""
    return [settings.seed + i for i in range(settings.tune.seeds)]


def stage_jobs(overrides: list[str], settings: Settings, stage: str) -> list[list[str]]:
    """The override list of each job (one per tune seed) of `stage`."""
    return [
        [*overrides, *TRIAL_OVERRIDES, f"seed={seed}", f"tune.stage={stage}"]
        for seed in seeds(settings)
    ]


def trials_table(jobs: list[list[str]], stage: str) -> pd.DataFrame:
    """A row per trial of `jobs` (all stored), read from the store: its last epoch's validation
    and training accuracy, and whether it diverged."""
    from kdfair.compose import compose_train
    from kdfair.validate import validate

    rows = []
    for job in jobs:
        settings = validate(compose_train(job))
        store = ModelStore(settings.paths.models)
        for model in tune_models(settings, stage).trials:
            rows.append(_trial_row(store, model))
    return pd.DataFrame(rows)


def _trial_row(store: ModelStore, model: JobModel) -> dict:
    entry = store.find(model.key)
    if entry is None:
        raise KdfairError(f"the tune trial {model.key} is not in the store {store.root}")
    history = pd.read_csv(entry.folder / "history.csv")
    last = history.iloc[-1]
    diverged = bool(entry.metrics.get("diverged")) or str(last.get("diverged")) == "True"
    return {
        "role": model.role,
        "temperature": model.temperature,
        "lr": model.lr,
        "seed": model.seed,
        "val_accuracy": np.nan if diverged else float(last["val_accuracy"]),
        "train_accuracy": np.nan if diverged else float(last["train_accuracy"]),
        "diverged": diverged,
        "model_key": model.key,
    }


def choose(trials: pd.DataFrame) -> pd.DataFrame:
    """Per role and temperature: the lr with the best mean validation accuracy over seeds (see
    the module docstring), its mean, and `edge` ("lowest"/"highest" when the choice is at an end
    of the grid, else ""). Adds `chosen` and `edge` to `trials` in place."""
    trials["chosen"], trials["edge"] = False, ""
    choices = []
    keys = trials[["role", "temperature"]].fillna({"temperature": -1.0}).drop_duplicates()
    for role, t in keys.itertuples(index=False):
        rows = trials[(trials.role == role) & (trials.temperature.fillna(-1.0) == t)]
        # a diverged seed makes its lr's mean NaN: ranked below every finite mean
        means = rows.groupby("lr")["val_accuracy"].apply(lambda v: v.mean(skipna=False))
        grid = sorted(means.index)
        ranked = means.fillna(-np.inf)
        best = min(lr for lr in grid if ranked[lr] == ranked.max())  # ties: the smaller lr
        edge = "lowest" if best == grid[0] else "highest" if best == grid[-1] else ""
        if len(grid) == 1:
            edge = ""
        picked = rows.index[rows.lr == best]
        trials.loc[picked, "chosen"], trials.loc[picked, "edge"] = True, edge
        choices.append(
            {
                "role": role,
                "temperature": None if t == -1.0 else t,
                "lr": best,
                "val_accuracy": means[best],
                "train_accuracy": rows[rows.lr == best]["train_accuracy"].mean(),
                "edge": edge,
            }
        )
    return pd.DataFrame(choices)


def tune(
    overrides: list[str],
    launch: Callable[[list[str]], None],
    *,
    command: str,
) -> Path:
    """Run every stage's jobs through `launch` (a `kdfair train -m`-like runner of a sweep's
    overrides), choose, write tuning.csv and tuned.yaml; returns the tune folder."""
    from kdfair.compose import compose_train
    from kdfair.overlay import write_overlay
    from kdfair.validate import validate

    cfg = compose_train([*overrides, *TRIAL_OVERRIDES])
    check_validation(cfg)
    settings = validate(cfg)
    stages = (["teacher"] if "teacher" in settings.tune.roles else []) + ["students"]
    tables, chosen_teacher_lr = [], None
    for stage in stages:
        if stage == "students" and chosen_teacher_lr is not None:
            overrides = [*overrides, f"teacher_optim.optimizer.lr={chosen_teacher_lr}"]
        if stage == "students" and not {"student", "distilled"} & set(settings.tune.roles):
            break
        jobs = stage_jobs(overrides, settings, stage)
        launch(_as_sweep(jobs))
        table = trials_table(jobs, stage)
        tables.append(table)
        if stage == "teacher":
            chosen_teacher_lr = float(choose(table.copy())["lr"].iloc[0])
    trials = pd.concat(tables, ignore_index=True)
    choices = choose(trials)
    # each method and control has its own choices (and overlay): tune/, tune_dkd/, ...
    population = settings.distill.population
    folder = settings.paths.experiment / ("tune" + (f"_{population}" if population else ""))
    folder.mkdir(parents=True, exist_ok=True)
    trials[COLUMNS].to_csv(folder / "tuning.csv", index=False)
    overlay = write_overlay(folder / "tuned.yaml", choices, settings, command=command)
    print(format_choices(choices, trials, overlay, overrides))
    return folder


def _as_sweep(jobs: list[list[str]]) -> list[str]:
    """The jobs (alike but for their seed) as one `-m` command line sweeping the seeds."""
    *fixed, seed, stage = jobs[0]
    seeds_listed = ",".join(job[-2].removeprefix("seed=") for job in jobs)
    return ["-m", *fixed, stage, f"seed={seeds_listed}"]


def format_choices(
    choices: pd.DataFrame, trials: pd.DataFrame, overlay: Path, overrides: list[str]
) -> str:
    """The summary `kdfair tune` prints: the choice per role and T, edges, the command to run."""
    table = choices.assign(
        T=["-" if pd.isna(t) else f"{t:g}" for t in choices.temperature],
        grid=[
            ", ".join(f"{lr:g}" for lr in sorted(set(trials[trials.role == r].lr)))
            for r in choices.role
        ],
    )[["role", "T", "lr", "val_accuracy", "train_accuracy", "edge", "grid"]]
    lines = [table.to_string(index=False, float_format=lambda v: f"{v:.4g}"), ""]
    edges = choices[choices.edge != ""]
    for row in edges.itertuples():
        t = "" if pd.isna(row.temperature) else f" T={row.temperature:g}"
        lines.append(
            f"warning: {row.role}{t}: the best lr {row.lr:g} is the {row.edge} of the grid; the "
            "best may lie beyond it: widen tune.grid and tune again (trials are reused)."
        )
    kept = [o for o in overrides if not o.split("=")[0].lstrip("+~").startswith(_TUNE_ONLY)]
    lines += [
        f"tuning.csv and the overlay: {overlay.parent}/",
        "Run the study at these learning rates (on the full training split):",
        "  kdfair train -m " + shlex.join([*kept, f"tuned={overlay}", "seed=0,1,2"]),
    ]
    return "\n".join(lines)


# Overrides of a tune command that the study it prints leaves out: the hold-out serves the tune.
_TUNE_ONLY = ("tune.", "dataset.val_fraction", "dataset.val_seed", "dataset.max_val", "seed")
