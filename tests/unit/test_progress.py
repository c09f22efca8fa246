"""The progress line: job i of n, models done and left, elapsed time and the time left."""

from __future__ import annotations

import kdfair.progress as progress
from kdfair.progress import JobProgress


def test_time_left_is_the_jobs_time_per_epoch_times_the_epochs_left(monkeypatch):
    clock = iter([100.0, 160.0, 190.0, 200.0])  # start, then one reading per line
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    monkeypatch.setenv(progress.JOBS_ENV, "3")
    job = JobProgress(models=5, epochs_left=110, job=(2, 3))
    # the teacher: 10 epochs in 60 s; the NDS and 3 DS need 100 more -> 600 s
    assert job.done(epochs_trained=10) == (
        "progress: job 2/3 · models 1/5 done, 4 left · 1m00s elapsed, about 10m00s left"
    )
    # the NDS was stored: 0 epochs; the estimate stays 6 s per epoch (90 s / 10 epochs)
    assert job.done().endswith("models 2/5 done, 3 left · 1m30s elapsed, about 15m00s left")
    assert job.done(3, epochs_trained=100).endswith("5/5 done, 0 left · 1m40s elapsed, done")


def test_a_job_outside_a_sweep_is_job_1_of_1(monkeypatch):
    monkeypatch.delenv(progress.JOBS_ENV, raising=False)
    assert progress.job_position() == (1, 1)
