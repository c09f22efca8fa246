"""Tuned learning rates as an overlay: written by `kdfair tune`, applied by `tuned=NAME|PATH`.

An overlay is a small YAML file of config settings, named as overrides are:

    teacher_optim.optimizer.lr: 0.1               # only when the teacher was tuned
    nds_optim.optimizer.lr: 0.0423                # the non-distilled student's
    distill.lr: {1: 0.02, 4: 0.0423, 10: 0.0894}  # the distilled students', per temperature
    tune.tuned_for: {experiment: demo, dataset: trifeature, teacher: resnet20, student: lenet5}

`tuned=PATH` (or `tuned=NAME`: configs/tuned/NAME.yaml, packaged or in $KDFAIR_CONFIG_DIR) on a
`kdfair train`, `plan` or `tune` command line is replaced by these settings as overrides, before
anything else reads the command line; `tune.tuned_for` makes the job refuse an overlay chosen for
another experiment, dataset or pair of architectures (kdfair.validate).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from kdfair.errors import KdfairError
from kdfair.settings import Settings

GROUP = "tuned"  # configs/tuned/<name>.yaml: overlays shipped with kdfair or the user's configs


def write_overlay(path: Path, choices: pd.DataFrame, settings: Settings, *, command: str) -> Path:
    """The overlay of `choices` (kdfair.tuning.choose's table) at `path`."""
    settings_out: dict = {}
    for row in choices.itertuples():
        if row.role == "teacher":
            settings_out["teacher_optim.optimizer.lr"] = float(row.lr)
        elif row.role == "student":
            settings_out["nds_optim.optimizer.lr"] = float(row.lr)
    distilled = choices[choices.role == "distilled"]
    if len(distilled):
        settings_out["distill.lr"] = {
            _number(t): float(lr) for t, lr in zip(distilled.temperature, distilled.lr, strict=True)
        }
    settings_out["tune.tuned_for"] = {
        "experiment": settings.experiment,
        "dataset": settings.dataset["name"],
        "teacher": settings.teacher.name,
        "student": settings.student.name,
        **{k: v for k, v in settings.distill.variant.items() if k in ("method", "control")},
    }
    header = (
        "# Learning rates chosen on the validation split by\n"
        f"#   {command}\n"
        "# (tuning.csv beside this file has every trial).\n"
        "# Apply: kdfair train tuned=<this file> ...\n"
    )
    path.write_text(header + yaml.safe_dump(settings_out, sort_keys=False, default_flow_style=None))
    return path


def _number(t: float):
    return int(t) if float(t).is_integer() else float(t)


def expand_tuned(overrides: list[str]) -> list[str]:
    """`overrides` with each `tuned=NAME|PATH` replaced by its overlay's settings, and a
    `distill.lr={...}` replacing the configured mapping rather than merging into it."""
    out = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+") == GROUP:
            out += overlay_overrides(find_overlay(value))
        elif sep and key in REPLACED_MAPPINGS and value.lstrip().startswith("{"):
            out += [f"{key}=null", override]  # Hydra merges a {...} into a mapping already set
        else:
            out.append(override)
    return out


# Mappings a {...} override replaces whole (Hydra would merge it into the experiment's own:
# `distill.lr={1:0.02}` on the demo would keep the demo's T = 4 and 10 learning rates).
REPLACED_MAPPINGS = ("distill.lr",)


def find_overlay(value: str) -> Path:
    """The overlay file a `tuned=` value names: a path, or a name in configs/tuned/."""
    from kdfair.compose import available, find_config

    path = Path(value).expanduser()
    if path.is_file():
        return path
    if "/" not in value and not value.endswith((".yaml", ".yml")):
        found = find_config(GROUP, value)
        if found is not None:
            return found
    names = available(GROUP)
    raise KdfairError(
        f"tuned={value}: no such overlay file. Give the tuned.yaml `kdfair tune` wrote (its path "
        f"is printed at the end of the tune) or a shipped overlay: {', '.join(names) or 'none'}."
    )


def overlay_overrides(path: Path) -> list[str]:
    """The overlay at `path` as Hydra overrides (`key=value`)."""
    try:
        settings = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise KdfairError(f"tuned={path}: cannot read it as YAML ({e}).") from e
    allowed = ("teacher_optim.", "nds_optim.", "distill.lr", "tune.tuned_for")
    if not isinstance(settings, dict) or not all(str(k).startswith(allowed) for k in settings):
        raise KdfairError(
            f"tuned={path} is not an overlay written by kdfair tune: it may set only "
            f"{', '.join(allowed)} settings (got {list(settings or [])})."
        )
    overrides = []
    for key, value in settings.items():
        if isinstance(value, dict):  # replace, not merge into, a mapping the config already has
            overrides.append(f"{key}=null")
        overrides.append(f"{key}={_hydra_value(value)}")
    return overrides


def _hydra_value(value) -> str:
    """A YAML value in Hydra's override syntax ({1:0.02,4:0.05}, {experiment:'demo'})."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return repr(value)
