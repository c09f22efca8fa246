"""The checks a command line's overrides get before Hydra composes them.

Hydra would print its own report and exit 1 for a bad override or a missing config file; these
raise one KdfairError that names the fix. `kdfair train`, `kdfair plan` and `kdfair tune`
(kdfair.cli) run them, and so does `kdfair.train` (kdfair.api); check_experiment_file runs on
the composed job's config-group choices.
"""

from __future__ import annotations

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


def check_job_overrides(overrides: list[str]) -> None:
    """Every check a `kdfair train` (or `kdfair plan`) command line gets before Hydra."""
    check_overrides(overrides)
    check_demo_choices(overrides)


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
