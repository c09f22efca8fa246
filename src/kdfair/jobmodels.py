"""The models one job uses, computed once from its typed settings, and their state in the store.

This is the one list that the pipeline obtains, `kdfair plan` shows and the progress line counts.
A job uses, in this order:

1. the teacher of its teacher seed (`distill.teacher_seed`, or the job's seed);
2. the non-distilled student (NDS) of its seed: the student architecture on hard labels;
3. one distilled student per temperature, learning from that teacher (trained fused when
   `distill.fused`);
4. where individual fairness measures in a teacher's feature space, the reference teacher of
   `eval.individual.reference_seed` (often the job's own teacher: the same key).

A model is *stored* (its entry is complete), *in progress* (a job holds its training lock, or
its `train.ckpt` records finished epochs) or *missing*.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdfair.settings import Recipe, Settings, common_spec, model_spec
from kdfair.store import ModelStore, model_key

STORED, IN_PROGRESS, MISSING = "stored", "in progress", "missing"


@dataclass(frozen=True)
class JobModel:
    role: str  # teacher, student (the NDS) or distilled
    recipe: Recipe  # how it is built and trained
    spec: dict  # kdfair.settings.model_spec: what its store key hashes

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
    common = common_spec(settings, processes)

    def model(role: str, recipe: Recipe, seed: int, **distilled) -> JobModel:
        return JobModel(role, recipe, model_spec(common, recipe, seed, **distilled))

    teacher = model("teacher", settings.teacher, settings.teacher_seed)
    distilled = tuple(
        model(
            "distilled",
            settings.student,
            settings.seed,
            teacher_key=teacher.key,
            temperature=t,
            distill=settings.distill,
        )
        for t in settings.distill.temperatures
    )
    individual = settings.individual
    reference = None
    if individual["enabled"] and individual["space"] == "teacher":
        reference = model("teacher", settings.teacher, int(individual["reference_seed"]))
    return JobModels(
        teacher=teacher,
        student=model("student", settings.student, settings.seed),
        distilled=distilled,
        reference=reference,
    )


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
