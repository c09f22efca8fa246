"""One progress line per model a job obtains, in the log of every run, terminal or not:

    progress: job 2/3 · models 3/5 done, 2 left · 1m02s elapsed, about 0m40s left

The estimate is the job's own: time per epoch trained so far in this job, times the epochs its
remaining models still need (a stored model needs none). The job's place in a sweep comes from
Hydra (hydra.job.num) and the job count `kdfair train -m` puts in $KDFAIR_SWEEP_JOBS.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

JOBS_ENV = "KDFAIR_SWEEP_JOBS"  # set by `kdfair train -m` for its jobs (and their launchers)


def job_position() -> tuple[int, int]:
    """(1-based job number, job count) of this job; (1, 1) outside a sweep."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    num = OmegaConf.select(HydraConfig.get(), "job.num") if HydraConfig.initialized() else None
    number = 1 if num is None else int(num) + 1  # a single run (or the API) has no job number
    total = int(os.environ.get(JOBS_ENV, "1") or 1)
    return number, max(total, number)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"


@dataclass
class JobProgress:
    """Counts a job's models as they are obtained; `done(...)` logs the progress line."""

    models: int  # how many models the job obtains
    epochs_left: int  # epochs its models still need to train (from the store at the start)
    job: tuple[int, int] = field(default_factory=job_position)
    started: float = field(default_factory=lambda: time.perf_counter())
    finished: int = 0
    epochs_trained: int = 0

    def done(self, count: int = 1, *, epochs_trained: int = 0) -> str:
        self.finished += count
        self.epochs_trained += epochs_trained
        self.epochs_left = max(self.epochs_left - epochs_trained, 0)
        elapsed = time.perf_counter() - self.started
        if self.finished >= self.models or self.epochs_left == 0:
            left = "done" if self.finished >= self.models else "about 0m00s left"
        elif self.epochs_trained:
            left = f"about {_clock(elapsed / self.epochs_trained * self.epochs_left)} left"
        else:
            left = "time left not known yet"
        line = (
            f"progress: job {self.job[0]}/{self.job[1]} · models {self.finished}/{self.models} "
            f"done, {self.models - self.finished} left · {_clock(elapsed)} elapsed, {left}"
        )
        log.info(line)
        return line
