"""`kdfair plan`: what a `kdfair train` command would train, without training anything.

The command line is expanded into jobs as Hydra's basic sweeper expands it (with `-m`: the
config's `hydra.sweeper.params`, then the command line's comma lists), each job's config is
composed and checked as `kdfair train` does, and its models are those the pipeline obtains
(kdfair.jobmodels.job_models, the one list), each with its state in the store: *stored*, *in
progress* or *missing*. Keys are those of a one-process run: a torchrun job's models carry its
process count in their keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kdfair.errors import KdfairError
from kdfair.jobmodels import IN_PROGRESS, MISSING, STORED, job_models, state, tune_models
from kdfair.settings import resolve_device
from kdfair.speed import Speed, describe_numerics, numerics
from kdfair.store import ModelStore

__all__ = [
    "IN_PROGRESS",
    "MISSING",
    "STORED",
    "Plan",
    "PlannedModel",
    "format_plan",
    "plan",
    "plan_tune",
]


@dataclass(frozen=True)
class PlannedModel:
    job: int  # the first job (hydra.job.num) that needs the model
    role: str  # teacher, student (the NDS) or distilled
    arch: str
    lr: float
    seed: int
    temperature: float | None
    key: str
    epochs: int
    status: str
    epochs_done: int  # finished epochs of a model in progress (its train.ckpt)
    store: Path
    numerics: str = "-"  # a stored model's, as recorded ("cpu fp32", "cuda bf16"); else "-"

    @property
    def epochs_to_train(self) -> int:
        return 0 if self.status == STORED else self.epochs - self.epochs_done


def job_overrides(overrides: list[str], *, multirun: bool) -> list[list[str]]:
    """The override list of every job the command line starts."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if not multirun:
        if sweeps:
            raise KdfairError(
                f"{sweeps[0]!r} is a sweep: add -m to plan every job of it "
                f"(kdfair plan -m {' '.join(overrides)})."
            )
        return [list(overrides)]
    from kdfair.compose import compose_train

    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    params = compose_train(fixed, with_hydra=True).hydra.sweeper.params or {}
    from_config = [f"{k}={v}" for k, v in params.items()]
    (jobs,) = BasicSweeper.split_arguments(parser.parse_overrides([*from_config, *overrides]), None)
    return jobs


@dataclass(frozen=True)
class Plan:
    jobs: int
    models: list[PlannedModel]  # once each, in the order the jobs first need them
    here: str = ""  # what this machine would train missing models with ("cpu fp32 (device=auto)")

    @property
    def epochs_to_train(self) -> int:
        return sum(m.epochs_to_train for m in self.models)

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.models)


def plan(overrides: list[str], *, multirun: bool = False) -> Plan:
    """Every model the jobs of `overrides` need, once each, with its state in the store."""
    jobs = job_overrides(overrides, multirun=multirun)
    return _plan(jobs, lambda settings, _: job_models(settings).every())


def plan_tune(overrides: list[str]) -> Plan:
    """Every model `kdfair tune <overrides>` trains: per tune seed, its teacher trials (with
    `teacher` among tune.roles) and its students' trials (kdfair.jobmodels.tune_models). With the
    teacher tuned, the students' trials are listed for the configured teacher: which teacher
    they learn from is chosen by the teacher's trials."""
    from kdfair.compose import compose_train
    from kdfair.tuning import TRIAL_OVERRIDES, check_validation, stage_jobs
    from kdfair.validate import validate

    cfg = compose_train([*overrides, *TRIAL_OVERRIDES])
    check_validation(cfg)
    settings = validate(cfg)
    stages = (["teacher"] if "teacher" in settings.tune.roles else []) + ["students"]
    jobs = [job for stage in stages for job in stage_jobs(overrides, settings, stage)]
    return _plan(jobs, lambda s, job: tune_models(s, job[-1].removeprefix("tune.stage=")).trained())


def _plan(jobs: list[list[str]], models_of) -> Plan:
    """The models `models_of(settings, job overrides)` lists for each job, once each."""
    from kdfair.compose import compose_train
    from kdfair.validate import validate

    planned: dict[str, PlannedModel] = {}
    here = ""
    for job, job_args in enumerate(jobs):
        settings = validate(compose_train(job_args))
        here = here or _here(settings)
        store = ModelStore(settings.paths.models)
        for model in models_of(settings, job_args):
            if model.key in planned:
                continue
            status, done = state(store, model.key)
            found = store.find(model.key) if status == STORED else None
            planned[model.key] = PlannedModel(
                job=job,
                role=model.role,
                arch=model.recipe.name,
                lr=model.lr,
                seed=model.seed,
                temperature=model.temperature,
                key=model.key,
                epochs=model.epochs,
                status=status,
                epochs_done=done,
                store=store.root,
                numerics=describe_numerics(found.metrics.get("numerics")) if found else "-",
            )
    return Plan(len(jobs), list(planned.values()), here)


def _here(settings) -> str:
    """The numerics new models of `settings` would get on this machine, and the settings asked."""
    hardware = settings.hardware
    device, amp = resolve_device(hardware.device, hardware.amp)
    speed = Speed(amp=amp, deterministic=hardware.deterministic)
    asked = f"device={hardware.device}, amp={hardware.amp}"
    return f"{describe_numerics(numerics(device, speed))} ({asked})"


def format_plan(plan: Plan) -> str:
    """The table `kdfair plan` prints, with a count per state and the epochs left to train."""
    models = plan.models
    table = pd.DataFrame(
        {
            "job": [m.job for m in models],
            "role": [m.role for m in models],
            "arch": [m.arch for m in models],
            "seed": [m.seed for m in models],
            "T": ["-" if m.temperature is None else f"{m.temperature:g}" for m in models],
            "lr": [f"{m.lr:g}" for m in models],
            "key": [m.key for m in models],
            "status": [
                f"{m.status} (epoch {m.epochs_done}/{m.epochs})"
                if m.status == IN_PROGRESS
                else m.status
                for m in models
            ],
            "epochs to train": [m.epochs_to_train for m in models],
            "numerics": [m.numerics for m in models],
        }
    )
    stores = sorted({str(m.store) for m in models})
    lines = [
        table.to_string(index=False),
        "",
        f"{len(models)} models for {plan.jobs} job(s): {plan.count(STORED)} stored, "
        f"{plan.count(IN_PROGRESS)} in progress, {plan.count(MISSING)} missing; "
        f"{plan.epochs_to_train} epochs to train (store: {', '.join(stores)}).",
    ]
    if plan.here:
        lines.append(f"Models trained here would be {plan.here}.")
    return "\n".join(lines)
