"""Jobs in a Hydra launcher's worker processes (submitit, joblib): their errors back to the user.

`kdfair train` exits 2 with one line on bad input. A job run in `kdfair train`'s own process
(the basic launcher) does that itself; a job in a launcher's worker cannot: submitit would
report a job without a result, joblib a crashed worker, and either way the sweep would exit 1
with a traceback. The worker raises instead (kdfair.cli), Hydra returns the error with the
job's result, and `sweep_errors_raised` lets Hydra's sweep raise it into cli.main's one line.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

# The id of the process that runs `kdfair train`: a job in another process runs in a launcher's
# worker (hydra/launcher=submitit_local, slurm_local, slurm, parallel).
SWEEP_PROCESS = "KDFAIR_SWEEP_PROCESS"


def mark_sweep_process() -> None:
    """Record this process as the one running the sweep; its launchers' workers inherit it."""
    os.environ[SWEEP_PROCESS] = str(os.getpid())


def in_worker() -> bool:
    """Whether this job runs in a launcher's worker process rather than in `kdfair train`'s. A
    worker cannot exit 2 itself: submitit would report a job without a result, and joblib a
    crashed worker. It raises, and Hydra returns the error to the sweep's process."""
    return os.environ.get(SWEEP_PROCESS, str(os.getpid())) != str(os.getpid())


@contextmanager
def sweep_errors_raised():
    """Let a job's error reach `main`. A launcher's worker hands its job's exception back with
    the job's result, and Hydra's sweep raises it, where Hydra would print a traceback and exit
    1; HYDRA_FULL_ERROR makes Hydra raise it instead, so a KdfairError ends the sweep with
    main's one line and exit status 2, as in a single job (Hydra has already named the failed
    job's overrides). Hydra's own errors (a bad config) keep Hydra's report and exit 1."""
    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException

    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    except CompactHydraException as e:
        print(e, file=sys.stderr)
        if isinstance(e.__cause__, OmegaConfBaseException):
            print(e.__cause__, file=sys.stderr)
        sys.exit(1)
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous
