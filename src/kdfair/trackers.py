"""The two experiment trackers of kdfair.tracking: MLflow and TensorBoard.

kdfair.tracking says what a run holds and when it is written (one run per model, its
parameters, history and results, reuse tags); this module says how each tool stores it: MLflow
through MlflowClient (explicit run ids, as fused students' runs are open at once) in an SQLite
store or on a server, TensorBoard as event files written by torch's SummaryWriter. Each reaches
its store when it is made, so an unreachable one stops a job before anything trains.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from kdfair.errors import KdfairError
from kdfair.extras import require
from kdfair.tracking import (
    Tracker,
    epoch_values,
    model_params,
    result_values,
    run_name,
    stored_history,
    warn_on_failure,
)

if TYPE_CHECKING:
    from kdfair.jobmodels import JobModel

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = "10"  # seconds the first request to an MLflow server may take, no retries


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
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            local = self.uri.startswith("sqlite:///")
            where = Path(self.uri.removeprefix("sqlite:///")).parent / "mlartifacts"
            try:
                return self.client.create_experiment(
                    name, artifact_location=where.as_uri() if local else None
                )
            except MlflowException:  # a job of the sweep created it meanwhile (on a server)
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
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

    @warn_on_failure
    def training(self, model, teacher_spec):
        found = self._find(model.key)  # a killed job's run: the model resumes, so does its run
        if found is None:
            run_id = self._create(model, teacher_spec, origin="trained")
        else:
            run_id = found.info.run_id
            self.client.update_run(run_id, status="RUNNING")
            self.open[model.key] = run_id
        return partial(self._epoch, run_id)

    @warn_on_failure
    def _epoch(self, run_id: str, row: dict) -> None:
        self._log(run_id, epoch_values(row), int(row["epoch"]))

    @warn_on_failure
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

    @warn_on_failure
    def results(self, rows):
        for row in rows.to_dict("records"):
            run_id = self.open.pop(row["model_key"], None)
            if run_id is not None:
                self._log(run_id, result_values(row), 0)
                self.client.set_terminated(run_id, "FINISHED")

    @warn_on_failure
    def close(self, failed):
        for run_id in self.open.values():
            self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        self.open.clear()

    @warn_on_failure
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

    @warn_on_failure
    def training(self, model, teacher_spec):
        self._open(model, teacher_spec, origin="trained")
        return partial(self._epoch, model.key)

    @warn_on_failure
    def _epoch(self, key: str, row: dict) -> None:
        writer = self.open[key][0]
        step = int(row["epoch"])
        for name, value in epoch_values(row).items():
            writer.add_scalar(name, value, step)
        self.open[key][2] = step

    @warn_on_failure
    def reused(self, model, entry, teacher_spec):
        folder = self._folder(model.key)
        if folder is None:  # trained while the logger was off: its run, from the store
            self._open(model, teacher_spec, origin="store")
            for row in stored_history(entry):
                self._epoch(model.key, row)
            return
        with self._writer(folder) as writer:
            writer.add_text("reused_by", self.job, 0)

    @warn_on_failure
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

    @warn_on_failure
    def close(self, failed):
        for writer, _, _ in self.open.values():
            if failed:
                writer.add_text("status", "the job failed before its results were recorded", 0)
            writer.close()
        self.open.clear()

    @warn_on_failure
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
