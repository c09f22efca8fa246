"""What a training run keeps: its resume checkpoint and, for keep="best", its best epoch.

A resume checkpoint is written after every epoch (by rank 0 under DDP) and read when a run
starts, so a rerun of a killed job continues from the last finished epoch. keep="best"
(eval.checkpoint) follows the epoch with the best validation accuracy and its weights, which the
checkpoint carries too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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


def save(run: Run, epochs_done: int) -> None:
    """`run`'s checkpoint after `epochs_done` epochs: weights, optimiser, scheduler, history and
    the best epoch so far (keep="best")."""
    if run.checkpoint is None:
        return
    state = {
        "epoch": epochs_done,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "history": run.history,
    }
    if run.best is not None:
        state["best"] = vars(run.best)
    # Rank 0 writes; a failure there is raised on every rank, none left waiting.
    distributed.from_main(lambda: torch_save(state, run.checkpoint))
