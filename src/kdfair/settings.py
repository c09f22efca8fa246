"""Typed settings: a composed train config, checked and turned into plain values once, at the edge.

`kdfair.validate.validate(cfg)` checks every value and returns `Settings`; nothing below the
pipeline reads a `DictConfig`. A model's spec (`model_spec`), whose hash is its store key, is
built here from these settings, so what identifies a model is written down in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from kdfair.errors import KdfairError
from kdfair.schedule import Schedule, scaled_milestones
from kdfair.variants import variant_name

# Dataset keys that say where or how data is read or cached, not what it is: the `dataset.io`
# node. Kept out of model keys (tests/unit/test_configs.py checks every dataset config).
DATASET_IO_NODE = "io"
# Dataset keys that describe the dataset to kdfair rather than configure its factory.
DATASET_META_KEYS = (
    "name",
    "num_classes",
    "batch_size",
    "max_train",
    "max_test",
    "max_val",
    "val_fraction",
    "val_seed",
)
# Validation settings left out of a model's key at these values (no hold-out, no cut), so models
# stored before the validation split existed keep their keys.
DATASET_UNKEYED_DEFAULTS = {"val_fraction": 0, "val_seed": 0, "max_val": None}


@dataclass(frozen=True)
class Recipe:
    """How one role's model is built (`arch`: the resolved model config) and trained (`optim`)."""

    arch: dict
    optim: dict

    @property
    def name(self) -> str:
        return self.arch["name"]

    def schedule(self, batch_size: int) -> Schedule:
        optim = self.optim
        return Schedule(
            epochs=int(optim["epochs"]),
            batch_size=batch_size,
            milestones=scaled_milestones(
                optim["milestones"], optim["epochs"], optim["reference_epochs"]
            ),
            gamma=float(optim["gamma"]),
            kind=str(optim["schedule"]),
            warmup_epochs=float(optim["warmup_epochs"]),
        )


@dataclass(frozen=True)
class Distill:
    """The distilled students of a job: one per temperature, all of one teacher."""

    temperatures: tuple[float, ...]
    alpha: float
    t_squared: bool
    teacher_seed: int | None  # None: the teacher of the job's own seed
    fused: bool  # train the missing students of one job together
    lr: dict[float, float] | None = None  # distill.lr: a learning rate per T; None: the student's
    method: str = "kd"  # kd, dkd or at (kdfair.objectives)
    control: str = "none"  # none, smoothing or shuffled (kdfair.controls)
    options: dict = field(default_factory=dict)  # the method's settings: {"dkd": {...}} or
    # {"at": {"beta": ..., "pairs": [[teacher stage, student stage], ...]}}

    @property
    def population(self) -> str:
        """The distilled population's name beyond its T: "" for kd without a control, else the
        method, the control, or both ("at+shuffled")."""
        return variant_name(self.method, self.control)

    @property
    def variant(self) -> dict:
        """What a distilled student's spec adds for its method and control: nothing for kd
        without a control, so the keys of models stored before methods existed stay valid."""
        extra = {} if self.method == "kd" else {"method": self.method, **self.options}
        return extra | ({} if self.control == "none" else {"control": self.control})


@dataclass(frozen=True)
class Tune:
    """`kdfair tune`: the learning rates tried (`grid`; None: around each role's configured lr),
    the seeds trained per lr and the roles tuned (docs/protocol.md, "Learning rates per role")."""

    grid: tuple[float, ...] | None
    seeds: int
    roles: tuple[str, ...]

    # The default grid: five values on a log scale spanning 20x, centred on the configured lr.
    SPAN, POINTS = 20.0, 5

    def lrs(self, configured: float) -> tuple[float, ...]:
        """The learning rates tried for a role configured at `configured` (3 significant digits,
        so they read well in keys, tables and configs)."""
        if self.grid is not None:
            return tuple(sorted(self.grid))
        steps = [i / (self.POINTS - 1) - 0.5 for i in range(self.POINTS)]
        return tuple(float(f"{configured * self.SPAN**step:.3g}") for step in steps)


@dataclass(frozen=True)
class Hardware:
    """Where and how models run (never what they learn: none of it is in a model key)."""

    device: str  # auto, cpu, cuda, cuda:N
    amp: str  # auto, true, false
    threads: int | None
    data_on_device: str  # auto, true, false
    channels_last: str  # auto, true, false
    compile: bool
    deterministic: bool = False  # speed.deterministic: deterministic algorithms (CUDA)


@dataclass(frozen=True)
class Paths:
    outputs: Path  # everything a run writes is below this folder
    models: Path  # the model store
    experiment: Path  # results.csv and analysis/ of this experiment


@dataclass(frozen=True)
class Settings:
    experiment: str
    seed: int
    dataset: dict  # the resolved dataset node: factory arguments, `io`, and the meta keys
    teacher: Recipe
    student: Recipe  # the distilled students' recipe (at distill.lr's learning rate, if set)
    nds: Recipe  # the non-distilled student's: the student's, with nds_optim's settings over it
    nds_optim: dict  # the settings nds_optim sets (flat, config-named); {}: the student's
    distill: Distill
    evaluation: dict  # the resolved eval node (batch_size, every_epoch, individual)
    hardware: Hardware
    tune: Tune
    paths: Paths
    logger: dict  # the resolved logger node (kdfair.tracking): in no model key or recipe

    def distilled_recipe(self, temperature: float) -> Recipe:
        """The recipe of the distilled student at `temperature`: the student's, at the learning
        rate distill.lr gives that temperature (when set)."""
        if self.distill.lr is None:
            return self.student
        optim = {**self.student.optim}
        optim["optimizer"] = {**optim["optimizer"], "lr": self.distill.lr[float(temperature)]}
        return Recipe(self.student.arch, optim)

    @property
    def teacher_seed(self) -> int:
        return self.seed if self.distill.teacher_seed is None else self.distill.teacher_seed

    @property
    def batch_size(self) -> int:
        return int(self.dataset["batch_size"])

    @property
    def checkpoint(self) -> str:
        """eval.checkpoint: "last" (the weights after the last epoch) or "best" (validation)."""
        return str(self.evaluation.get("checkpoint", "last"))

    @property
    def individual(self) -> dict:
        return self.evaluation["individual"]

    @classmethod
    def from_config(cls, cfg: DictConfig, temperatures: list[float]) -> Settings:
        """The settings of a composed (and checked) train config, resolved once."""
        c = OmegaConf.to_container(cfg, resolve=True)
        distill, speed, paths = c["distill"], c["speed"], c["paths"]
        nds_optim = set_leaves(c.get("nds_optim") or {})
        lr = distill.get("lr")
        tune = c.get("tune") or {}
        return cls(
            experiment=str(c["experiment"]),
            seed=int(c["seed"]),
            dataset=c["dataset"],
            teacher=Recipe(c["teacher"], c["teacher_optim"]),
            student=Recipe(c["student"], c["student_optim"]),
            nds=Recipe(c["student"], merged(c["student_optim"], nds_optim)),
            nds_optim={f"nds_optim.{k}": v for k, v in nds_optim.items()},
            distill=Distill(
                temperatures=tuple(temperatures),
                alpha=float(distill["alpha"]),
                t_squared=bool(distill["t_squared"]),
                teacher_seed=distill["teacher_seed"],
                fused=bool(distill["fused"]),
                lr=None if lr is None else {float(t): float(v) for t, v in lr.items()},
                method=str(distill.get("method", "kd")),
                control=str(distill.get("control", "none")),
                options=_method_options(cfg),
            ),
            evaluation=c["eval"],
            hardware=Hardware(
                device=str(c["device"]),
                amp=str(c["amp"]),
                threads=c["threads"],
                data_on_device=str(speed["data_on_device"]),
                channels_last=str(speed["channels_last"]),
                compile=bool(speed["compile"]),
                deterministic=bool(speed.get("deterministic", False)),
            ),
            paths=Paths(Path(paths["outputs"]), Path(paths["models"]), Path(paths["experiment"])),
            tune=Tune(
                grid=_numbers(tune.get("grid")),
                seeds=int(tune.get("seeds", 1)),
                roles=tuple(tune.get("roles", ("student", "distilled"))),
            ),
            logger=c.get("logger") or {"name": "none"},
        )


def _method_options(cfg: DictConfig) -> dict:
    """The settings of distill.method (none for kd), as the model spec holds them."""
    distill = OmegaConf.to_container(cfg.distill, resolve=True)
    method = distill.get("method", "kd")
    if method == "dkd":
        return {"dkd": {k: float(v) for k, v in distill["dkd"].items()}}
    if method == "at":
        return {"at": {"beta": float(distill["at"]["beta"]), "pairs": at_pairs(cfg)}}
    return {}


def at_pairs(cfg: DictConfig) -> list[list[str]]:
    """The (teacher stage, student stage) pairs distill.at.stages declares for this job's
    teacher and student architectures; KdfairError when it declares none."""
    teacher, student = cfg.teacher.name, cfg.student.name
    pairs = (cfg.distill.at.get("stages") or {}).get(teacher, {}).get(student)
    example = f"distill.at.stages.{teacher}.{student}=[[stages.2,body.1]]"
    if not pairs:
        raise KdfairError(
            f"distill.method=at has no stage pairs for {teacher} -> {student}: declare the "
            f"teacher and student submodules whose attention maps are matched, e.g. "
            f"'+{example}' (configs/distill/kd.yaml lists the declared pairs)."
        )
    if not all(len(pair) == 2 for pair in pairs):
        raise KdfairError(
            f"distill.at.stages.{teacher}.{student}={pairs!r} is invalid: give a list of "
            f"[teacher stage, student stage] pairs, e.g. {example}."
        )
    return [[str(t), str(s)] for t, s in pairs]


def _numbers(value) -> tuple[float, ...] | None:
    """A config value that is None, one number or a list of numbers, as a tuple of floats."""
    if value is None:
        return None
    return tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value]))


def set_leaves(node: dict, prefix: str = "") -> dict:
    """The non-null leaves of a nested dict, flat: {"optimizer.lr": 0.05} (nds_optim's)."""
    leaves = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            leaves.update(set_leaves(value, f"{name}."))
        elif value is not None:
            leaves[name] = value
    return leaves


def merged(optim: dict, leaves: dict) -> dict:
    """`optim` with the flat `leaves` ({"optimizer.lr": 0.05}) set over it (a copy)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in optim.items()}
    for name, value in leaves.items():
        *path, last = name.split(".")
        node = out
        for part in path:
            node[part] = dict(node[part])
            node = node[part]
        node[last] = value
    return out


def dataset_spec(dataset: dict | DictConfig) -> dict:
    """The dataset settings that identify a model: everything but the `io` node and the
    validation settings at their defaults (DATASET_UNKEYED_DEFAULTS; val_seed only matters
    with a hold-out)."""
    if isinstance(dataset, DictConfig):
        dataset = OmegaConf.to_container(dataset, resolve=True)
    held_out = bool(dataset.get("val_fraction"))
    return {
        k: v
        for k, v in dataset.items()
        if k != DATASET_IO_NODE
        and not (k in DATASET_UNKEYED_DEFAULTS and v == DATASET_UNKEYED_DEFAULTS[k])
        and not (k == "val_seed" and not held_out)
    }


def common_spec(settings: Settings, processes: int = 1) -> dict:
    """The spec entries every model of a job shares: dataset spec, batch size, under DDP the
    process count (BatchNorm statistics and streamed augmentation depend on it, so a
    DDP-trained model is not the one-process model) and eval.checkpoint when it is "best"."""
    common = {"dataset": dataset_spec(settings.dataset), "batch_size": settings.batch_size}
    if processes > 1:
        common["processes"] = processes
    if settings.checkpoint == "best":  # "last", the default, stays out: older keys stay valid
        common["checkpoint"] = "best"
    return common


def model_spec(
    common: dict,
    recipe: Recipe,
    seed: int,
    *,
    teacher_key: str | None = None,
    temperature: float | None = None,
    distill: Distill | None = None,
) -> dict:
    """Exactly the settings that determine a trained model; its hash is the store key.

    `common`: what every model of the job shares (dataset spec, batch size, DDP process count).
    A distilled student adds its teacher's key, T, alpha and the T^2 switch, and, other than
    kd without a control, its method with the method's settings and its control
    (Distill.variant).
    """
    spec = {
        **common,
        "objective": "kd" if teacher_key else "ce",
        "seed": int(seed),
        "arch": recipe.arch,
        "optim": recipe.optim,
    }
    if teacher_key is not None:
        spec["distill"] = {
            "teacher_key": teacher_key,
            "temperature": temperature,
            "alpha": distill.alpha,
            "t_squared": distill.t_squared,
            **distill.variant,
        }
    return spec


def resolve_device(device: str, amp) -> tuple[torch.device, bool]:
    """`auto` picks CUDA when available; amp `auto` turns bf16 autocast on for CUDA only."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    return resolved, switch(amp, auto=resolved.type == "cuda")


def switch(setting, *, auto: bool) -> bool:
    """An auto/true/false config switch (amp, speed.*): `auto` where it says auto."""
    if str(setting) == "auto":
        return auto
    return str(setting).lower() == "true"
