"""The checks a command line's overrides get before Hydra composes them.

Hydra would print its own report and exit 1 for a bad override or a missing config file; these
raise one KdfairError that names the fix. `kdfair train`, `kdfair plan` and `kdfair tune`
(kdfair.cli) run them, and so does `kdfair.train` (kdfair.api); check_experiment_file runs on
the composed job's config-group choices.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from kdfair.compose import available
from kdfair.errors import KdfairError

# Settings of the dataset.io node (DataIO's fields), which older configs had at dataset.<key>.
IO_KEYS = ("root", "cache_dir", "download", "verify_checksums", "num_workers")
# Config groups an override may choose from, by the override's group name.
CHOICE_GROUPS = (
    "experiment",
    "default_experiment",
    "dataset",
    "model",
    "optim",
    "distill",
    "eval",
    "logger",
    "debug",
    "sweep",
)


def check_overrides(overrides: list[str]) -> None:
    """Hydra override syntax, and every config-group choice (each value of a sweep too) naming
    an existing file; a KdfairError that lists the available names otherwise. Run before Hydra,
    which would print its own report and exit 1 for either."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    plain = [o for o in overrides if "=" in o and not o.startswith("-")]  # not flags, their values
    try:
        parsed = OverridesParser.create().parse_overrides(plain)
    except OverrideParseException as e:
        raise KdfairError(f"cannot read the overrides: {e}") from None
    for override in parsed:
        group = override.key_or_group
        moved = group.removeprefix("dataset.")
        if group.startswith("dataset.") and moved in IO_KEYS:
            raise KdfairError(
                f"{override.input_line!r}: where and how data is read lives in dataset.io; "
                f"write dataset.io.{moved}={override.get_value_element_as_str()}."
            )
        if group not in CHOICE_GROUPS or override.is_delete():
            continue  # hydra/launcher=...: Hydra's plugins add choices of their own
        values = (
            list(override.sweep_string_iterator())
            if override.is_sweep_override()
            else [override.value()]
        )
        names = available(group, overrides)
        for value in values:
            if not isinstance(value, str) or value not in names:
                raise KdfairError(
                    f"there is no {group}/{value}.yaml for {override.input_line!r}; available "
                    f"{group} names: {', '.join(names)}."
                )


def _selects_experiment(overrides: list[str]) -> bool:
    return any(a.lstrip("+~").startswith("experiment=") for a in overrides)


def check_demo_choices(overrides: list[str]) -> None:
    """Without +experiment=..., train.yaml's default_experiment runs the demo. Its sizes, epochs
    and temperatures are the demo's, so a dataset chosen on top of it is refused with the two
    ways to say what was meant (a study would otherwise land in outputs/demo on demo settings)."""
    if _selects_experiment(overrides) or "~default_experiment" in overrides:
        return
    chosen = [o for o in overrides if o.lstrip("+").startswith("dataset=")]
    if chosen:
        raise KdfairError(
            f"{chosen[0]!r} without an experiment: a bare `kdfair train` runs the demo study "
            "(Trifeature sizes, 6 + 30 epochs, T = 1, 4, 10) into outputs/demo. Choose an "
            "experiment (+experiment=<name>, e.g. +experiment=cifar10_resnet56_resnet20), or add "
            "~default_experiment to compose your own from train.yaml's defaults (the paper's "
            "protocol; written to outputs/custom, or name it in an experiment file of your own)."
        )


def check_experiment_file(choices: dict) -> None:
    """An experiment file must drop the demo (`override /default_experiment: null`), or the
    demo's settings would silently mix into it."""
    experiment = choices.get("experiment")
    if experiment not in (None, "demo") and choices.get("default_experiment") is not None:
        raise KdfairError(
            f"experiment/{experiment}.yaml keeps the demo's settings: add "
            "`- override /default_experiment: null` to its defaults list (as every packaged "
            "experiment has)."
        )


def check_job_overrides(overrides: list[str], *, tuning: bool = False) -> None:
    """Every check a `kdfair train` (or `plan`, or with `tuning`, `tune`) command line gets
    before Hydra."""
    check_overrides(overrides)
    check_demo_choices(overrides)
    if not tuning:  # a tune's trials set their own learning rates around the student's
        check_shadowed_learning_rates(overrides)


# The student's lr, and the settings that, when the experiment sets them, replace it per population.
STUDENT_LR = "student_optim.optimizer.lr"
OWN_LEARNING_RATES = {"distill.lr": "the distilled students", "nds_optim.optimizer.lr": "the NDS"}


def check_shadowed_learning_rates(overrides: list[str]) -> None:
    """`student_optim.optimizer.lr=X` on an experiment whose populations have their own learning
    rates (distill.lr, nds_optim: the demo's, or a tuned= overlay's) would not reach them: one
    error naming the override that does, rather than a study silently at the old rates."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o]
    if STUDENT_LR not in keys:
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from kdfair.compose import compose_train

    parsed = OverridesParser.create().parse_overrides(
        [o for o in overrides if "=" in o and not o.startswith("-")]
    )
    cfg = compose_train([o.input_line for o in parsed if not o.is_sweep_override()])
    shadowed = [
        (key, whom)
        for key, whom in OWN_LEARNING_RATES.items()
        if key not in keys and OmegaConf.select(cfg, key) is not None
    ]
    if shadowed:
        whom = " and ".join(w for _, w in shadowed)
        own = "; ".join(f"{k}={OmegaConf.select(cfg, k)}" for k, _ in shadowed)
        nulls = " ".join(f"{k}=null" for k, _ in shadowed)
        raise KdfairError(
            f"{STUDENT_LR} does not reach {whom}: this experiment gives them their own learning "
            f"rates ({own}). Add {nulls} to train them at {STUDENT_LR}, or set those to the "
            "rates you want."
        )


def check_tune_overrides(overrides: list[str]) -> None:
    """A tune sweeps learning rates and its own seeds (tune.seeds): no comma sweeps."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    plain = [o for o in overrides if "=" in o and not o.startswith("-")]
    for override in OverridesParser.create().parse_overrides(plain):
        if override.is_sweep_override() and not override.key_or_group.startswith("hydra"):
            raise KdfairError(
                f"{override.input_line!r} is a sweep: kdfair tune trains one job per tune seed "
                "(tune.seeds=N) and tunes every temperature of distill.temperature in each; "
                "give temperatures as a list (distill.temperature=[1,4,10])."
            )
