"""Config checks that run before anything is built: one clear error per bad value.

Each check names the key, the value, the allowed range and how to fix it, so a typo costs a
second instead of a traceback from deep inside torch after the teacher has trained.
"""

from __future__ import annotations

import os
from numbers import Real
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from kdfair import distributed
from kdfair.errors import KdfairError
from kdfair.settings import Settings, at_pairs, set_leaves

# The roles `kdfair tune` chooses a learning rate for (student: the NDS).
TUNABLE_ROLES = ("teacher", "student", "distilled")


def temperatures(cfg: DictConfig) -> list[float]:
    """distill.temperature as a list (a single value or a list of values), each checked > 0."""
    value = cfg.distill.temperature
    values = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    if not values:
        raise KdfairError("distill.temperature is an empty list; give at least one T > 0.")
    for t in values:
        if isinstance(t, bool) or not isinstance(t, Real) or not t > 0:
            raise KdfairError(
                f"distill.temperature={t!r} is invalid: a temperature must be a number > 0 "
                "(e.g. distill.temperature=4, or distill.temperature=[1,4,10] for several)."
            )
    if len(set(values)) != len(values):
        raise KdfairError(f"distill.temperature={values} lists a temperature twice.")
    return [float(t) for t in values]


def _check_number(
    key: str,
    value,
    *,
    low: float,
    high: float | None = None,
    integer: bool = False,
    low_inclusive: bool = True,
) -> None:
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int if integer else Real) and not isinstance(value, bool)
    if ok:
        ok = value >= low if low_inclusive else value > low
        ok = ok and (high is None or value <= high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (
            f" and <= {high}" if high is not None else ""
        )
        raise KdfairError(f"{key}={value!r} is invalid: it must be {kind} {bound}.")


def _check_dataset_root(root: str) -> None:
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise KdfairError(
            f"dataset.io.root={root!r} is a file, not a folder. Point it at a folder."
        )
    if not path.exists() and not path.parent.exists():
        raise KdfairError(
            f"dataset.io.root={root!r} does not exist (nor does its parent "
            f"{str(path.parent)!r}). Create it, or point dataset.io.root (or the KDFAIR_DATA "
            "environment variable) at the folder that holds the data."
        )


def _check_device(device: str) -> None:
    """The device exists here: cuda:N among the visible GPUs, and under torchrun (which gives
    each process the GPU of its LOCAL_RANK) a GPU for every local process, checked before
    anything is built rather than met as a CUDA error in the middle of a job."""
    if device == "auto":
        parsed = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise KdfairError(
                f"device={device!r} is not a device; use auto, cpu or cuda[:N]."
            ) from e
        if parsed.type not in ("cpu", "cuda"):
            raise KdfairError(f"device={device!r}: kdfair runs on cpu or cuda[:N] (or auto).")
    if parsed.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise KdfairError(
            f"device={device!r} was asked for but no CUDA GPU is visible; use device=cpu."
        )
    count = torch.cuda.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise KdfairError(
            f"device={device!r}: this machine shows {count} GPU(s) (cuda:0..cuda:{count - 1}, "
            "after CUDA_VISIBLE_DEVICES); use one of them, or device=cuda."
        )
    if distributed.launched_by_torchrun():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= count:
            raise KdfairError(
                f"LOCAL_RANK={local_rank}: under torchrun each process trains on the GPU of its "
                f"local rank, but this node shows {count} GPU(s). Start at most {count} "
                f"processes per node (torchrun --nproc_per_node={count}), or use device=cpu."
            )


def _check_choice(key: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise KdfairError(f"{key}={value!r} is invalid: use one of {', '.join(choices)}.")


def _check_individual(settings: DictConfig) -> None:
    key = "eval.individual"
    _check_choice(f"{key}.space", settings.space, ("input", "teacher"))
    _check_choice(f"{key}.pairs", settings.pairs, ("knn", "random"))
    _check_choice(f"{key}.metric", settings.metric, ("euclidean", "cosine"))
    _check_number(f"{key}.k", settings.k, low=1, integer=True)
    _check_number(f"{key}.n_pairs", settings.n_pairs, low=1, integer=True)
    _check_number(f"{key}.projection_dim", settings.projection_dim, low=1, integer=True)
    _check_number(f"{key}.reference_seed", settings.reference_seed, low=0, integer=True)


def _check_validation(cfg: DictConfig) -> None:
    fraction = cfg.dataset.get("val_fraction") or 0
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 <= fraction < 1:
        raise KdfairError(
            f"dataset.val_fraction={fraction!r} is invalid: it must be a number >= 0 and < 1 "
            "(the share of the training split held out for validation; 0: none)."
        )
    if cfg.dataset.get("val_seed") is not None:
        _check_number("dataset.val_seed", cfg.dataset.val_seed, low=0, integer=True)
    _check_choice("eval.checkpoint", cfg.eval.get("checkpoint", "last"), ("last", "best"))


def _check_nds_optim(cfg: DictConfig) -> None:
    """nds_optim sets only settings student_optim has, and a learning rate > 0."""
    node = cfg.get("nds_optim")
    if node is None:
        return
    student = OmegaConf.to_container(cfg.student_optim, resolve=True)
    for name, value in set_leaves(OmegaConf.to_container(node, resolve=True)).items():
        path, here = name.split("."), student
        for part in path:
            here = here.get(part, _ABSENT) if isinstance(here, dict) else _ABSENT
        if here is _ABSENT:
            raise KdfairError(
                f"nds_optim.{name}={value!r}: student_optim has no setting {name}, so the NDS "
                "cannot set its own; nds_optim takes student_optim's keys (e.g. "
                "nds_optim.optimizer.lr=0.05)."
            )
    lr = node.get("optimizer", {}).get("lr")
    if lr is not None:
        _check_number("nds_optim.optimizer.lr", lr, low=0.0, low_inclusive=False)


_ABSENT = object()


def _check_distill_lr(cfg: DictConfig, temps: list[float]) -> None:
    """distill.lr: null, or a learning rate > 0 for every temperature of the job."""
    lr = cfg.distill.get("lr")
    if lr is None:
        return
    if not isinstance(lr, DictConfig):
        raise KdfairError(
            f"distill.lr={lr!r} is invalid: give a learning rate per temperature, e.g. "
            "distill.lr={1:0.02,10:0.05}, or null for student_optim.optimizer.lr at every T."
        )
    given = {}
    for t, value in lr.items():
        _check_number(f"distill.lr[{t}]", value, low=0.0, low_inclusive=False)
        if isinstance(t, bool) or not isinstance(t, Real):
            raise KdfairError(f"distill.lr has the key {t!r}: its keys are temperatures (numbers).")
        given[float(t)] = value
    missing = [t for t in temps if t not in given]
    if missing:
        raise KdfairError(
            f"distill.lr gives learning rates for T = {', '.join(f'{t:g}' for t in given)} but "
            f"not for T = {', '.join(f'{t:g}' for t in missing)} of this job. Tune those "
            "temperatures too (kdfair tune distill.temperature=[...]), drop them, or set "
            "distill.lr=null to train every T at student_optim.optimizer.lr."
        )


def _check_method(cfg: DictConfig) -> None:
    """distill.method and distill.control: known names, their settings, and for attention
    transfer stage pairs declared for this teacher -> student pair."""
    from kdfair.variants import CONTROLS, METHODS

    distill = cfg.distill
    method, control = distill.get("method", "kd"), distill.get("control", "none")
    _check_choice("distill.method", method, METHODS)
    _check_choice("distill.control", control, CONTROLS)
    if method == "dkd":
        if distill.t_squared:
            raise KdfairError(
                "distill.t_squared=true has no meaning with distill.method=dkd, whose terms "
                "carry their own T^2 factor; drop distill.t_squared."
            )
        for key in ("alpha", "beta", "warmup_epochs"):
            _check_number(f"distill.dkd.{key}", distill.dkd[key], low=0.0)
        _check_number("distill.dkd.reference_epochs", distill.dkd.reference_epochs, low=1)
    if method == "at":
        _check_number("distill.at.beta", distill.at.beta, low=0.0)
        at_pairs(cfg)


def _check_tune(cfg: DictConfig) -> None:
    """The tune node; and an overlay (tuned=PATH) used on the experiment it was tuned for."""
    tune = cfg.get("tune")
    if tune is None:
        return
    if tune.grid is not None:
        grid = list(tune.grid) if isinstance(tune.grid, ListConfig) else [tune.grid]
        if not grid:
            raise KdfairError("tune.grid is empty; give learning rates, e.g. tune.grid=[0.01,0.1].")
        for lr in grid:
            _check_number("tune.grid: each learning rate", lr, low=0.0, low_inclusive=False)
    _check_number("tune.seeds", tune.seeds, low=1, integer=True)
    for role in tune.roles:
        _check_choice("tune.roles: each role", role, TUNABLE_ROLES)
    tuned_for = tune.get("tuned_for")
    if tuned_for is None:
        return
    here = {
        "experiment": cfg.experiment,
        "dataset": cfg.dataset.name,
        "teacher": cfg.teacher.name,
        "student": cfg.student.name,
        "method": cfg.distill.get("method", "kd"),
        "control": cfg.distill.get("control", "none"),
    }
    # an overlay without method/control was tuned for kd without a control
    tuned_for = {"method": "kd", "control": "none", **tuned_for}
    differ = {k: (v, here[k]) for k, v in tuned_for.items() if k in here and here[k] != v}
    if differ:
        raise KdfairError(
            "the learning rates of this overlay (tuned=...) were chosen for "
            + ", ".join(f"{k} {a}" for k, (a, _) in differ.items())
            + ", but this job is "
            + ", ".join(f"{k} {b}" for k, (_, b) in differ.items())
            + ". Tune this setup (kdfair tune ...) and apply its overlay, or drop tuned=."
        )


def validate(cfg: DictConfig) -> Settings:
    """The typed settings of a composed train config; KdfairError on its first invalid value."""
    temps = temperatures(cfg)
    _check_number("distill.alpha", cfg.distill.alpha, low=0.0, high=1.0)
    _check_number("seed", cfg.seed, low=0, integer=True)
    if cfg.distill.teacher_seed is not None:
        _check_number("distill.teacher_seed", cfg.distill.teacher_seed, low=0, integer=True)
    _check_number("dataset.batch_size", cfg.dataset.batch_size, low=1, integer=True)
    for key in ("max_train", "max_test", "max_val"):
        if cfg.dataset.get(key) is not None:
            _check_number(f"dataset.{key}", cfg.dataset[key], low=1, integer=True)
    _check_validation(cfg)
    _check_number("dataset.num_classes", cfg.dataset.num_classes, low=2, integer=True)
    for role in ("teacher_optim", "student_optim"):
        optim = cfg[role]
        _check_number(f"{role}.epochs", optim.epochs, low=1, integer=True)
        _check_number(f"{role}.optimizer.lr", optim.optimizer.lr, low=0.0, low_inclusive=False)
        _check_choice(f"{role}.schedule", optim.schedule, ("step", "cosine", "linear"))
        _check_number(f"{role}.warmup_epochs", optim.warmup_epochs, low=0)
    if not isinstance(cfg.distill.fused, bool):
        raise KdfairError(f"distill.fused={cfg.distill.fused!r} is invalid: use true or false.")
    _check_nds_optim(cfg)
    _check_distill_lr(cfg, temps)
    _check_method(cfg)
    _check_tune(cfg)
    _check_individual(cfg.eval.individual)
    _check_dataset_root(str(cfg.dataset.io.root))
    _check_device(str(cfg.device))
    for key, value in (
        ("amp", cfg.amp),
        ("speed.data_on_device", cfg.speed.data_on_device),
        ("speed.channels_last", cfg.speed.channels_last),
    ):
        if str(value) not in ("auto", "True", "False", "true", "false"):
            raise KdfairError(f"{key}={value!r} is invalid: use auto, true or false.")
    for key in ("compile", "deterministic"):
        if not isinstance(cfg.speed.get(key, False), bool):
            raise KdfairError(f"speed.{key}={cfg.speed[key]!r} is invalid: use true or false.")
    return Settings.from_config(cfg, temps)
