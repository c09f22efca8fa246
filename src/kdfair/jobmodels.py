"""The models one job uses, computed once from its typed settings, and their state in the store.

This is the one list that the pipeline obtains, `kdfair plan` shows and the progress line counts.
A job uses, in this order:

1. the teacher of its teacher seed (`distill.teacher_seed`, or the job's seed);
2. the non-distilled student (NDS) of its seed: the student architecture on hard labels;
3. one distilled student per temperature, learning from that teacher (trained fused when
   `distill.fused`);
4. where individual fairness measures in a teacher's feature space, the reference teacher of
   `eval.individual.reference_seed` (often the job's own teacher: the same key).

`kdfair tune` trains trials instead (`tune_models`): per tuned role, one model per learning rate of
the grid (the distilled students: per temperature and learning rate), each a stored model like any
other, whose key differs from the study's model only in its learning rate (and the held-out split).

A model is *stored* (its entry is complete), *in progress* (a job holds its training lock, or
its `train.ckpt` records finished epochs) or *missing*.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from kdfair.settings import Recipe, Settings, common_spec, model_spec
from kdfair.store import ModelStore, model_key

STORED, IN_PROGRESS, MISSING = "stored", "in progress", "missing"


@dataclass(frozen=True)
class JobModel:
    role: str  # teacher, student (the NDS) or distilled
    recipe: Recipe  # how it is built and trained
    spec: dict  # kdfair.settings.model_spec: what its store key hashes
    # Settings chosen for this population that its recipe names instead of the student_optim
    # ones they replace (kdfair.recipes.recipe_settings): nds_optim.*, or distill.lr
    chosen: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return model_key(self.spec)

    @property
    def seed(self) -> int:
        return int(self.spec["seed"])

    @property
    def temperature(self) -> float | None:
        return self.spec.get("distill", {}).get("temperature")

    @property
    def epochs(self) -> int:
        return int(self.spec["optim"]["epochs"])

    @property
    def lr(self) -> float:
        return float(self.spec["optim"]["optimizer"]["lr"])


@dataclass(frozen=True)
class JobModels:
    teacher: JobModel
    student: JobModel
    distilled: tuple[JobModel, ...]
    reference: JobModel | None  # individual fairness's reference teacher; None: not needed

    def trained(self) -> list[JobModel]:
        """The models the job trains if they are missing: teacher, NDS, distilled students."""
        return [self.teacher, self.student, *self.distilled]

    def every(self) -> list[JobModel]:
        """Every model the job uses, the reference teacher last (where it is needed)."""
        return self.trained() + ([self.reference] if self.reference is not None else [])


def job_models(settings: Settings, processes: int = 1) -> JobModels:
    """The models of one job (see the module docstring); `processes`: the DDP process count,
    which enters every key when above one."""
    model = _maker(settings, processes)
    teacher = model("teacher", settings.teacher, settings.teacher_seed)
    lrs = settings.distill.lr
    chosen = (
        {}
        if lrs is None
        else {"distill.lr": ", ".join(f"{t:g}: {v:g}" for t, v in sorted(lrs.items()))}
    )
    distilled = tuple(
        replace(
            _distilled(model, settings, teacher, t, settings.distilled_recipe(t)), chosen=chosen
        )
        for t in settings.distill.temperatures
    )
    individual = settings.individual
    reference = None
    if individual["enabled"] and individual["space"] == "teacher":
        reference = model("teacher", settings.teacher, int(individual["reference_seed"]))
    return JobModels(
        teacher=teacher,
        student=replace(model("student", settings.nds, settings.seed), chosen=settings.nds_optim),
        distilled=distilled,
        reference=reference,
    )


def _maker(settings: Settings, processes: int):
    """model(role, recipe, seed, **distilled) -> JobModel, with the job's common spec."""
    common = common_spec(settings, processes)

    def model(role: str, recipe: Recipe, seed: int, **distilled) -> JobModel:
        return JobModel(role, recipe, model_spec(common, recipe, seed, **distilled))

    return model


def _distilled(model, settings: Settings, teacher: JobModel, t: float, recipe: Recipe) -> JobModel:
    return model(
        "distilled",
        recipe,
        settings.seed,
        teacher_key=teacher.key,
        temperature=t,
        distill=settings.distill,
    )


TUNE_STAGES = ("teacher", "students")  # kdfair tune's teacher trials come first, if tuned


@dataclass(frozen=True)
class TuneModels:
    """The models one seed's tune job trains: the trials of its stage and, for distilled trials,
    the teacher they learn from."""

    teacher: JobModel | None  # the job's teacher (at its configured or tuned lr); None: unused
    trials: tuple[JobModel, ...]

    def trained(self) -> list[JobModel]:
        return ([self.teacher] if self.teacher is not None else []) + list(self.trials)


def tune_models(settings: Settings, stage: str, processes: int = 1) -> TuneModels:
    """The trials of `kdfair tune`'s `stage` for the job's seed: "teacher" (the teacher's
    recipe at each lr of the grid) or "students" (the NDS at each lr; the distilled student at
    each temperature and lr, learning from the job's teacher), for the roles settings.tune
    names. Grids centre on each role's configured lr (Tune.lrs)."""
    model, roles = _maker(settings, processes), settings.tune.roles
    if stage == "teacher":
        recipe = settings.teacher
        trials = tuple(
            model("teacher", _at_lr(recipe, lr), settings.seed)
            for lr in settings.tune.lrs(_lr(recipe))
        )
        return TuneModels(None, trials if "teacher" in roles else ())
    if stage != "students":
        raise ValueError(f"unknown tune stage {stage!r}; one of {TUNE_STAGES}")
    student = settings.student
    lrs = settings.tune.lrs(_lr(student))
    trials = []
    if "student" in roles:  # the NDS's recipe (nds_optim's other settings kept) at each lr
        trials += [model("student", _at_lr(settings.nds, lr), settings.seed) for lr in lrs]
    teacher = None
    if "distilled" in roles:
        teacher = model("teacher", settings.teacher, settings.teacher_seed)
        trials += [
            _distilled(model, settings, teacher, t, _at_lr(student, lr))
            for t in settings.distill.temperatures
            for lr in lrs
        ]
    return TuneModels(teacher, tuple(trials))


def _lr(recipe: Recipe) -> float:
    return float(recipe.optim["optimizer"]["lr"])


def _at_lr(recipe: Recipe, lr: float) -> Recipe:
    optim = {**recipe.optim, "optimizer": {**recipe.optim["optimizer"], "lr": lr}}
    return Recipe(recipe.arch, optim)


def state(store: ModelStore, key: str) -> tuple[str, int]:
    """(stored / in progress / missing, epochs finished so far) of one key in the store."""
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


def epochs_to_train(models: list[JobModel], store: ModelStore) -> int:
    """The epochs `models` still need (the progress line: the job's trained models)."""
    total = 0
    for model in models:
        status, done = state(store, model.key)
        total += 0 if status == STORED else model.epochs - done
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
