"""Experiment trackers, the `logger` config group: none (the default), mlflow or tensorboard.

A sweep of 75 models is easier to browse in a tracker than in CSV files, so a job can copy what
it records into one. The CSV files and the model store stay the record: a tracker only receives
copies (nothing here is read back by training or measuring, and the logger node enters no model
key and no recipe), so a job writes the same keys, results and CSV files with any logger.

One run per model:
- created when the model starts training, under its store lock (so a job that later finds the
  model in the store also finds its run), with the model's parameters; one point per epoch of
  its history (training.Run.on_epoch observes fit_many's history rows); its final accuracy and
  every fairness column of its results.csv row once the job has recorded them;
- a model found in the store gets no second run: its run is tagged as reused by the job
  (`kdfair.reused_by`, `kdfair.reuses`). A stored model without a run in this tracker (trained
  while the logger was off) gets one, from its stored history.

A tracker that cannot be reached stops the job before anything trains (`open_tracker`). Once
the job trains, a failing tracker costs a warning, never the training.
`kdfair analyze --logger` logs a sweep's report and figures (`log_analysis`). This module says
what a run holds and when it is written; kdfair.trackers, how MLflow and TensorBoard store it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from kdfair.errors import KdfairError
from kdfair.recipes import readable_columns, recipe_hash, recipe_settings
from kdfair.results import LEADING, TRAILING

if TYPE_CHECKING:  # torch-free at import: `kdfair analyze --logger mlflow` needs no torch
    from kdfair.jobmodels import JobModel
    from kdfair.settings import Settings
    from kdfair.store import StoredModel

log = logging.getLogger(__name__)

LOGGERS = ("none", "mlflow", "tensorboard")


def mlflow_uri(tracking_uri: str | None, outputs: Path) -> str:
    """logger.tracking_uri, or the embedded default: an SQLite store in the outputs folder
    (recent MLflow releases refuse plain file stores by default)."""
    return tracking_uri or f"sqlite:///{(Path(outputs) / 'mlflow.db').resolve()}"


def tensorboard_dir(log_dir: str | None, outputs: Path) -> Path:
    """logger.log_dir, or <outputs>/tensorboard."""
    return Path(log_dir) if log_dir else Path(outputs) / "tensorboard"


def open_tracker(logger: dict, *, outputs: Path, experiment: str, job: str) -> Tracker:
    """The tracker of a job's `logger` node, reached once now: an unreachable or unwritable one is
    a KdfairError before anything trains. `job` names this job in reuse tags."""
    from kdfair.trackers import MlflowTracker, TensorBoardTracker

    name = logger.get("name", "none")
    if name == "mlflow":
        return MlflowTracker(mlflow_uri(logger.get("tracking_uri"), outputs), experiment, job)
    if name == "tensorboard":
        return TensorBoardTracker(tensorboard_dir(logger.get("log_dir"), outputs), experiment, job)
    if name != "none":
        raise KdfairError(f"logger={name!r} is unknown: use one of {', '.join(LOGGERS)}.")
    return Tracker()


def analysis_tracker(
    experiment_dir, name: str, tracking_uri: str | None, log_dir: str | None
) -> Tracker:
    """`kdfair analyze --logger`'s tracker, with the logger group's defaults: the store or folder
    in the outputs folder that holds the experiment folder (or $MLFLOW_TRACKING_URI)."""
    folder = Path(experiment_dir).resolve()
    logger = {
        "name": name,
        "tracking_uri": tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"),
        "log_dir": log_dir,
    }
    return open_tracker(logger, outputs=folder.parent, experiment=folder.name, job="analysis")


def job_tracker(settings: Settings) -> Tracker:
    """The tracker of a train job's `logger` setting, reached once now."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    temperatures = ",".join(f"{t:g}" for t in settings.distill.temperatures)
    return open_tracker(
        settings.logger,
        outputs=settings.paths.outputs,
        experiment=settings.experiment,
        job=f"{settings.experiment} seed={settings.seed} T={temperatures} at {now}",  # reuse tags
    )


def model_params(experiment: str, model: JobModel, teacher_spec: dict | None) -> dict:
    """A model's parameters in its run: what identifies it in results.csv (the same recipe
    hash), None values left out."""
    spec, distill = model.spec, model.spec.get("distill") or {}
    settings = recipe_settings(
        spec, model.role, teacher_spec if distill else None, chosen=model.chosen
    )
    params = {
        "experiment": experiment,
        "role": model.role,
        "arch": spec["arch"]["name"],
        "dataset": spec["dataset"]["name"],
        "temperature": distill.get("temperature"),
        "alpha": distill.get("alpha"),
        "seed": model.seed,
        "recipe": recipe_hash(settings),
        "model_key": model.key,
        "teacher_key": distill.get("teacher_key"),
        **readable_columns(spec),
    }
    return {k: v for k, v in params.items() if v is not None}


def run_name(model: JobModel) -> str:
    """<role>_<arch>_seed<seed>[_T<T>]_<key>: readable in a tracker's run list, unique by key."""
    t = model.temperature
    return "_".join(
        [model.role, model.recipe.name, f"seed{model.seed}"]
        + ([f"T{t:g}"] if t is not None else [])
        + [model.key]
    )


def epoch_values(row: dict) -> dict[str, float]:
    """A history row's numbers by name (train_loss, train_accuracy, val/test_accuracy, lr,
    seconds), the epoch left out: it is the step. Non-finite values (a diverged loss) are not
    logged."""
    return _finite({k: v for k, v in row.items() if k != "epoch"})


def result_values(row: dict) -> dict[str, float]:
    """A results.csv row's accuracy and every metric column (dpd_*, eod_*, individual fairness,
    consistency); empty ones left out."""
    metrics = {k: v for k, v in row.items() if k not in LEADING and k not in TRAILING}
    return _finite({"accuracy": row.get("accuracy"), **metrics})


def _finite(values: dict) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def stored_history(entry: StoredModel) -> list[dict]:
    """The per-epoch history of a stored model (its history.csv)."""
    return pd.read_csv(entry.folder / "history.csv").to_dict("records")


def warn_on_failure(method):
    """Once training has started, a tracker that fails costs a warning, not the job."""

    @wraps(method)
    def quiet(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:  # the tracker's own errors, whatever its client raises
            log.warning(
                "logger=%s: %s failed (%s: %s)", self.name, method.__name__, type(e).__name__, e
            )
            return None

    return quiet


class Tracker:
    """logger=none: a tracker that records nothing. The others override every method."""

    name = "none"
    enabled = False

    def training(self, model: JobModel, teacher_spec: dict | None) -> Callable[[dict], None] | None:
        """Open the run of a model about to train; return its per-epoch observer."""
        return None

    def reused(self, model: JobModel, entry: StoredModel, teacher_spec: dict | None) -> None:
        """A model the job found in the store: tag its run (or create it from the store)."""

    def results(self, rows: pd.DataFrame) -> None:
        """The job's results.csv rows: final values of the runs this job opened, which end."""

    def close(self, failed: bool) -> None:
        """End the runs still open (FAILED when the job failed)."""

    def log_analysis(self, folder: Path) -> None:
        """A sweep's analysis folder (`kdfair analyze --logger`): its report and figures."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(failed=kind is not None)
