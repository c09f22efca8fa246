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
`kdfair analyze --logger` logs a sweep's report and figures (`log_analysis`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial, wraps
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from kdfair.errors import KdfairError
from kdfair.extras import require
from kdfair.recipes import readable_columns, recipe_hash, recipe_settings
from kdfair.results import LEADING, TRAILING

if TYPE_CHECKING:  # torch-free at import: `kdfair analyze --logger mlflow` needs no torch
    from kdfair.jobmodels import JobModel
    from kdfair.settings import Settings
    from kdfair.store import StoredModel

log = logging.getLogger(__name__)

LOGGERS = ("none", "mlflow", "tensorboard")
PROBE_TIMEOUT_S = "10"  # seconds the first request to an MLflow server may take, no retries


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
    name = logger.get("name", "none")
    if name == "mlflow":
        return MlflowTracker(mlflow_uri(logger.get("tracking_uri"), outputs), experiment, job)
    if name == "tensorboard":
        return TensorBoardTracker(tensorboard_dir(logger.get("log_dir"), outputs), experiment, job)
    if name != "none":
        raise KdfairError(f"logger={name!r} is unknown: use one of {', '.join(LOGGERS)}.")
    return Tracker()


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


def _warn_on_failure(method):
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


class MlflowTracker(Tracker):
    """Runs in an MLflow tracking store, through MlflowClient (explicit run ids, so fused
    students' runs are open at once)."""

    name = "mlflow"
    enabled = True

    def __init__(self, uri: str, experiment: str, job: str):
        require("mlflow", "mlflow", "logger=mlflow")
        from mlflow import MlflowClient

        self.uri, self.experiment, self.job, self.open = uri, experiment, job, {}
        with _store_lock(uri), _probing(uri):
            try:
                self.client = MlflowClient(tracking_uri=uri)
                self.experiment_id = self._experiment(experiment)
            except KdfairError:
                raise
            except Exception as e:
                raise KdfairError(
                    f"logger=mlflow cannot reach the tracking store {uri} ({type(e).__name__}: "
                    f"{_first_line(e)}). Start the tracking server, fix logger.tracking_uri, or "
                    "run with logger=none; nothing was trained."
                ) from None

    def _experiment(self, name: str) -> str:
        """The MLflow experiment named after kdfair's, created if missing (artifacts beside the
        embedded store's database; a server chooses its own)."""
        found = self.client.get_experiment_by_name(name)
        if found is None:
            local = self.uri.startswith("sqlite:///")
            where = Path(self.uri.removeprefix("sqlite:///")).parent / "mlartifacts"
            return self.client.create_experiment(
                name, artifact_location=where.as_uri() if local else None
            )
        if found.lifecycle_stage != "active":
            raise KdfairError(
                f"The MLflow experiment {name!r} in {self.uri} is deleted: restore it (mlflow "
                "experiments restore) or remove it for good (mlflow gc), then run again."
            )
        return found.experiment_id

    def _find(self, key: str):
        """The run of the model `key` in any experiment of the store, or None."""
        from mlflow.entities import ViewType

        ids = [
            e.experiment_id for e in self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
        ]
        runs = self.client.search_runs(
            ids, filter_string=f"params.model_key = '{key}'", max_results=1
        )
        return runs[0] if runs else None

    def _create(self, model: JobModel, teacher_spec: dict | None, origin: str) -> str:
        from mlflow.entities import Param, RunTag

        run = self.client.create_run(self.experiment_id, run_name=run_name(model))
        run_id = run.info.run_id
        params = model_params(self.experiment, model, teacher_spec)
        self.client.log_batch(
            run_id,
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag("kdfair.origin", origin), RunTag("kdfair.job", self.job)],
        )
        self.open[model.key] = run_id
        return run_id

    def _log(self, run_id: str, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(datetime.now(timezone.utc).timestamp() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        self.client.log_batch(run_id, metrics=metrics)

    @_warn_on_failure
    def training(self, model, teacher_spec):
        found = self._find(model.key)  # a killed job's run: the model resumes, so does its run
        if found is None:
            run_id = self._create(model, teacher_spec, origin="trained")
        else:
            run_id = found.info.run_id
            self.client.update_run(run_id, status="RUNNING")
            self.open[model.key] = run_id
        return partial(self._epoch, run_id)

    @_warn_on_failure
    def _epoch(self, run_id: str, row: dict) -> None:
        self._log(run_id, epoch_values(row), int(row["epoch"]))

    @_warn_on_failure
    def reused(self, model, entry, teacher_spec):
        from mlflow.entities import RunTag

        found = self._find(model.key)
        if found is None:  # trained while the logger was off: its run, from the store
            run_id = self._create(model, teacher_spec, origin="store")
            for row in stored_history(entry):
                self._log(run_id, epoch_values(row), int(row["epoch"]))
            return
        reuses = int(found.data.tags.get("kdfair.reuses", "0")) + 1
        tags = {"kdfair.reused": "true", "kdfair.reuses": str(reuses), "kdfair.reused_by": self.job}
        self.client.log_batch(found.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    @_warn_on_failure
    def results(self, rows):
        for row in rows.to_dict("records"):
            run_id = self.open.pop(row["model_key"], None)
            if run_id is not None:
                self._log(run_id, result_values(row), 0)
                self.client.set_terminated(run_id, "FINISHED")

    @_warn_on_failure
    def close(self, failed):
        for run_id in self.open.values():
            self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        self.open.clear()

    @_warn_on_failure
    def log_analysis(self, folder: Path) -> None:
        """A sweep's analysis folder (report.md, CSVs, figures) as artifacts of one run."""
        run = self.client.create_run(
            self.experiment_id, run_name="analysis", tags={"kdfair.origin": "analysis"}
        )
        self.client.log_artifacts(run.info.run_id, str(folder), "analysis")
        self.client.set_terminated(run.info.run_id, "FINISHED")


class TensorBoardTracker(Tracker):
    """Event files, one folder per model (run_name) under <log_dir>/<experiment>/, written with
    torch's SummaryWriter; the parameters as text and as hparams, so TensorBoard's HPARAMS tab
    lists every model with its final values."""

    name = "tensorboard"
    enabled = True

    def __init__(self, log_dir: Path, experiment: str, job: str):
        require("tensorboard", "tensorboard", "logger=tensorboard")
        self.log_dir, self.experiment, self.job = log_dir, experiment, job
        self.open: dict[str, tuple] = {}  # key -> (writer, params, last epoch)
        try:
            (log_dir / experiment).mkdir(parents=True, exist_ok=True)
            if not os.access(log_dir / experiment, os.W_OK):
                raise PermissionError(f"{log_dir / experiment} is not writable")
        except OSError as e:
            raise KdfairError(
                f"logger=tensorboard cannot write to logger.log_dir={str(log_dir)!r} ({e}). Point "
                "logger.log_dir at a writable folder, or run with logger=none; nothing was "
                "trained."
            ) from None

    def _folder(self, key: str) -> Path | None:
        """The run folder of the model `key` under any experiment, or None."""
        return next(iter(sorted(self.log_dir.glob(f"*/*_{key}"))), None)

    def _writer(self, folder: Path):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(folder))

    def _open(self, model: JobModel, teacher_spec: dict | None, origin: str):
        folder = self._folder(model.key) or self.log_dir / self.experiment / run_name(model)
        writer = self._writer(folder)
        params = {**model_params(self.experiment, model, teacher_spec), "origin": origin}
        table = "\n".join(
            ["| parameter | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in params.items()]
        )
        writer.add_text("parameters", table, 0)
        self.open[model.key] = [writer, params, 0]
        return writer

    @_warn_on_failure
    def training(self, model, teacher_spec):
        self._open(model, teacher_spec, origin="trained")
        return partial(self._epoch, model.key)

    @_warn_on_failure
    def _epoch(self, key: str, row: dict) -> None:
        writer = self.open[key][0]
        step = int(row["epoch"])
        for name, value in epoch_values(row).items():
            writer.add_scalar(name, value, step)
        self.open[key][2] = step

    @_warn_on_failure
    def reused(self, model, entry, teacher_spec):
        folder = self._folder(model.key)
        if folder is None:  # trained while the logger was off: its run, from the store
            self._open(model, teacher_spec, origin="store")
            for row in stored_history(entry):
                self._epoch(model.key, row)
            return
        with self._writer(folder) as writer:
            writer.add_text("reused_by", self.job, 0)

    @_warn_on_failure
    def results(self, rows):
        from torch.utils.tensorboard.summary import hparams

        for row in rows.to_dict("records"):
            if row["model_key"] not in self.open:
                continue
            writer, params, step = self.open.pop(row["model_key"])
            values = {f"results/{k}": v for k, v in result_values(row).items()}
            for summary in hparams(params, values):
                writer.file_writer.add_summary(summary)
            for name, value in values.items():
                writer.add_scalar(name, value, step)
            writer.close()

    @_warn_on_failure
    def close(self, failed):
        for writer, _, _ in self.open.values():
            if failed:
                writer.add_text("status", "the job failed before its results were recorded", 0)
            writer.close()
        self.open.clear()

    @_warn_on_failure
    def log_analysis(self, folder: Path) -> None:
        """A sweep's report (text) and figures (images) in <log_dir>/<experiment>/analysis."""
        from matplotlib.image import imread

        with self._writer(self.log_dir / self.experiment / "analysis") as writer:
            report = folder / "report.md"
            if report.exists():
                writer.add_text("report", report.read_text(), 0)
            for png in sorted(folder.glob("*.png")):
                writer.add_image(png.stem, imread(png)[..., :3], 0, dataformats="HWC")


def _first_line(error: Exception, limit: int = 160) -> str:
    line = (str(error).strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


@contextmanager
def _store_lock(uri: str):
    """The embedded store's file, its folder made, held under a lock while a job first reaches
    it: jobs of a sweep that start together create its tables once."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri.removeprefix("sqlite:///"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KdfairError(
            f"logger=mlflow cannot create the tracking store {uri} ({e}). Point "
            "logger.tracking_uri at a writable place, or run with logger=none."
        ) from None
    from filelock import FileLock

    with FileLock(f"{path}.lock"):
        yield


@contextmanager
def _probing(uri: str):
    """A server's first request: no retries and a short timeout (MLflow's own settings), so an
    unreachable server is reported in seconds, not after minutes of back-off."""
    if not uri.startswith(("http://", "https://")):
        yield
        return
    probe = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": PROBE_TIMEOUT_S}
    saved = {k: os.environ.get(k) for k in probe}
    os.environ.update(probe)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
