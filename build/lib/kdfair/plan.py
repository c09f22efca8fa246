"""`kdfair plan`: what a `kdfair train` command would train, without training anything.

The command line is expanded into jobs as Hydra's basic sweeper expands it (with `-m`: the
config's `hydra.sweeper.params`, then the command line's comma lists), each job's config is
composed and checked as `kdfair train` does, and each model's spec (kdfair.settings.model_spec)
gives its store key. A model is then *stored* (its entry is complete), *in progress* (a job
holds its training lock, or its `train.ckpt` records finished epochs) or *missing*. Keys are
those of a one-process run: a torchrun job's models carry its process count in their keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kdfair.errors import KdfairError
from kdfair.settings import Settings, common_spec, model_spec
from kdfair.store import ModelStore, model_key

STORED, IN_PROGRESS, MISSING = "stored", "in progress", "missing"


@dataclass(frozen=True)
class PlannedModel:
    job: int  # the first job (hydra.job.num) that needs the model
    role: str  # teacher, student (the NDS) or distilled
    arch: str
    seed: int
    temperature: float | None
    key: str
    epochs: int
    status: str
    epochs_done: int  # finished epochs of a model in progress (its train.ckpt)
    store: Path

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


def models_of(settings: Settings, *, with_reference: bool = True) -> list[tuple[str, dict]]:
    """(role, spec) of every model one job uses, in the order the pipeline obtains them (the
    reference teacher of individual fairness last, where it is needed and `with_reference`)."""
    common = common_spec(settings)
    teacher = model_spec(common, settings.teacher, settings.teacher_seed)
    needed = [
        ("teacher", teacher),
        ("student", model_spec(common, settings.student, settings.seed)),
    ]
    needed += [
        (
            "distilled",
            model_spec(
                common,
                settings.student,
                settings.seed,
                teacher_key=model_key(teacher),
                temperature=t,
                distill=settings.distill,
            ),
        )
        for t in settings.distill.temperatures
    ]
    individual = settings.individual
    if with_reference and individual["enabled"] and individual["space"] == "teacher":
        reference = model_spec(common, settings.teacher, int(individual["reference_seed"]))
        needed.append(("teacher", reference))  # individual fairness's reference teacher
    return needed


def progress(store: ModelStore, key: str) -> tuple[str, int]:
    """(status, finished epochs) of one model in the store; reads, never writes."""
    if store.find(key) is not None:
        return STORED, 0
    done = 0
    checkpoint = store.folder(key) / "train.ckpt"
    if checkpoint.is_file():
        import torch

        try:
            done = int(torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"])
        except Exception:  # noqa: BLE001 - being replaced right now; the next look reads it
            done = 0
        return IN_PROGRESS, done
    return (IN_PROGRESS if _lock_held(store.root / f"{key}.lock") else MISSING), done


def epochs_to_train(settings: Settings, store: ModelStore) -> int:
    """The epochs a job's teacher, NDS and distilled students still need (the progress line)."""
    total = 0
    for _, spec in models_of(settings, with_reference=False):
        status, done = progress(store, model_key(spec))
        total += 0 if status == STORED else int(spec["optim"]["epochs"]) - done
    return total


def _lock_held(path: Path) -> bool:
    """Whether a job holds this training lock (a lock file alone may be left over)."""
    if not path.exists():
        return False
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


@dataclass(frozen=True)
class Plan:
    jobs: int
    models: list[PlannedModel]  # once each, in the order the jobs first need them

    @property
    def epochs_to_train(self) -> int:
        return sum(m.epochs_to_train for m in self.models)

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.models)


def plan(overrides: list[str], *, multirun: bool = False) -> Plan:
    """Every model the jobs of `overrides` need, once each, with its state in the store."""
    from kdfair.compose import compose_train
    from kdfair.validate import validate

    planned: dict[str, PlannedModel] = {}
    jobs = job_overrides(overrides, multirun=multirun)
    for job, job_args in enumerate(jobs):
        settings = validate(compose_train(job_args))
        store = ModelStore(settings.paths.models)
        for role, spec in models_of(settings):
            key = model_key(spec)
            if key in planned:
                continue
            status, done = progress(store, key)
            planned[key] = PlannedModel(
                job=job,
                role=role,
                arch=spec["arch"]["name"],
                seed=spec["seed"],
                temperature=spec.get("distill", {}).get("temperature"),
                key=key,
                epochs=int(spec["optim"]["epochs"]),
                status=status,
                epochs_done=done,
                store=store.root,
            )
    return Plan(len(jobs), list(planned.values()))


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
            "key": [m.key for m in models],
            "status": [
                f"{m.status} (epoch {m.epochs_done}/{m.epochs})"
                if m.status == IN_PROGRESS
                else m.status
                for m in models
            ],
            "epochs to train": [m.epochs_to_train for m in models],
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
    return "\n".join(lines)
