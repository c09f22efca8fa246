"""What a training run keeps: its resume checkpoint and, for keep="best", its best epoch.

A resume checkpoint is written after every epoch (by rank 0 under DDP) and read when a run
starts, so a rerun of a killed job continues from the last finished epoch. keep="best"
(eval.checkpoint) follows the epoch with the best validation accuracy and its weights, which the
checkpoint carries too.

A checkpoint also holds every random stream training draws from (Python's `random`, NumPy's
global generator, torch's CPU generator and, on CUDA, the training device's): the epoch order
and augmentation come from explicit (seed, epoch) generators, but dropout draws from torch's
global stream, so a resumed text model (or any model with dropout) continues exactly where the
killed run stopped.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from kdfair import distributed
from kdfair.atomic import torch_save
from kdfair.data import DataBundle
from kdfair.errors import KdfairError

if TYPE_CHECKING:
    from kdfair.training import Run

log = logging.getLogger(__name__)


def check_keep(keep: str, data: DataBundle) -> None:
    """`keep` ("last" or "best", eval.checkpoint) is possible on `data`: "best" needs a
    validation split (the pipeline checks this before anything trains)."""
    if keep not in ("last", "best"):
        raise ValueError(f"keep must be 'last' or 'best', got {keep!r}")
    if keep == "best" and data.val is None:
        raise KdfairError(
            f"eval.checkpoint=best keeps each model's epoch with the best validation accuracy, "
            f"but {data.name} has no validation split. Hold one out (dataset.val_fraction=0.1) "
            "or use eval.checkpoint=last."
        )


@dataclass
class Best:
    """The epoch with the best validation accuracy so far, and its weights (on the CPU)."""

    epoch: int = 0
    accuracy: float = -1.0
    state: dict | None = None

    def offer(self, epoch: int, accuracy: float, model: nn.Module) -> None:
        if accuracy > self.accuracy:  # ties keep the earlier epoch
            self.epoch, self.accuracy = epoch, accuracy
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def resume(run: Run, epochs: int) -> None:
    """Continue `run` from its checkpoint, if one exists (under DDP rank 0 reads it and sends it:
    every rank resumes from the same state, even where another node cannot see the file yet)."""
    if run.checkpoint is None:
        return
    checkpoint = run.checkpoint

    def read() -> dict | None:
        if not checkpoint.exists():
            return None
        try:
            return torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as e:
            raise _unreadable(checkpoint, e) from e

    state = distributed.from_main(read)
    if state is None:
        return
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
    except Exception as e:
        raise _unreadable(checkpoint, e) from e
    run.history, run.start_epoch = list(state["history"]), int(state["epoch"])
    run.rng = state.get("rng")  # absent in checkpoints written before it was kept
    if run.best is not None and state.get("best"):
        run.best = Best(**state["best"])
    log.info(
        "%s: resuming after epoch %d/%d from %s",
        run.description,
        run.start_epoch,
        epochs,
        checkpoint,
    )


def _unreadable(checkpoint: Path, error: Exception) -> KdfairError:
    return KdfairError(
        f"The resume checkpoint {checkpoint} cannot be loaded ({error}). Delete it to restart "
        "this model's training from epoch 0."
    )


def save(run: Run, epochs_done: int, device: torch.device | None = None) -> None:
    """`run`'s checkpoint after `epochs_done` epochs: weights, optimiser, scheduler, history,
    the random streams (`rng_state`, with `device`'s CUDA generator) and the best epoch so far
    (keep="best"). Written device-free and contiguous (kdfair.atomic.torch_save)."""
    if run.checkpoint is None:
        return
    state = {
        "epoch": epochs_done,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "history": run.history,
        "rng": rng_state(device),
    }
    if run.best is not None:
        state["best"] = vars(run.best)
    # Rank 0 writes; a failure there is raised on every rank, none left waiting.
    distributed.from_main(lambda: torch_save(state, run.checkpoint))


def rng_state(device: torch.device | None = None) -> dict:
    """Every global random stream, in types `torch.load(weights_only=True)` reads: Python's,
    NumPy's, torch's CPU generator and, when `device` is a GPU, its CUDA generator."""
    version, mt, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    state = {
        "python": [version, list(mt), gauss],
        "numpy": {
            "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Restore the streams `rng_state` saved (the CUDA one only on a CUDA `device`)."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    numpy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def restore_rng(runs: list[Run], device: torch.device) -> None:
    """Before the first epoch of `runs` (fused runs share one stream): the random streams saved
    with the checkpoint of a run that starts first, when it resumes (a fresh run keeps the
    streams as it was built; runs that are ahead sit out the epochs before theirs)."""
    first = min(r.start_epoch for r in runs)
    saved = [r.rng for r in runs if r.start_epoch == first and r.rng is not None]
    if first > 0 and saved:
        set_rng_state(saved[0], device)
