"""kdfair from Python (a notebook): the CLI's three steps as functions.

    import kdfair
    rows = kdfair.train(["+experiment=demo", "seed=1"])   # results.csv rows of the job(s)
    sweep = kdfair.load_sweep("outputs/demo")             # populations, predictions, metrics
    report = kdfair.analyze("outputs/demo")               # path of analysis/report.md

`train` composes the same configs with the same checks as `kdfair train`; a comma list
(`seed=0,1,2`) runs each job in turn, as `kdfair train -m` does with the basic launcher.
"""

from __future__ import annotations

import pandas as pd

from kdfair.analysis.load import Sweep
from kdfair.analysis.load import load_sweep as _load_sweep
from kdfair.analysis.report import analyze


def train(overrides: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Train (or reuse) every model of the job(s) of `overrides`; their results.csv rows."""
    from kdfair.compose import compose_train
    from kdfair.overlay import expand_tuned
    from kdfair.overrides import check_job_overrides
    from kdfair.pipeline import run
    from kdfair.plan import job_overrides

    if isinstance(overrides, str):
        raise TypeError("kdfair.train takes a list of overrides, e.g. ['+experiment=demo']")
    overrides = expand_tuned(list(overrides))  # tuned=NAME|PATH, as on the command line
    check_job_overrides(overrides)
    rows = [run(compose_train(job)) for job in job_overrides(overrides, multirun=True)]
    return pd.concat(rows, ignore_index=True)


def load_sweep(directory, *, recipes: list[str] | None = None, evaluation: str | None = None):
    """The sweep of an experiment folder (e.g. outputs/demo): `sweep.results` (one row per
    model), `sweep.population(role, T)`, `sweep.predictions(row)`, `sweep.metric_columns`."""
    return _load_sweep(directory, recipes=recipes, evaluation=evaluation)


__all__ = ["Sweep", "analyze", "load_sweep", "train"]
