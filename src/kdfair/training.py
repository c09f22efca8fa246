"""fit() / fit_many(): one training loop for every role.

Cross-entropy for teachers and non-distilled students; a distillation objective when a frozen
teacher is given (`kdfair.objectives`: the method of `kdfair.losses` on the teacher's targets or a
control's). SGD with step decay (the paper's schedule), bf16 autocast on CUDA, a tqdm
bar per epoch, a history row per epoch, and a resume checkpoint after every epoch: a rerun of a
killed job continues from the last finished epoch and ends with the same weights, because an
epoch's batches depend only on (seed, epoch).

Under torchrun the same loop trains data-parallel (`kdfair.distributed`): each process takes its
share of every batch, DDP averages the gradients, and only rank 0 writes checkpoints. Beside this
room: `kdfair.teacherlogits` (the teacher's logits, cached when the stream allows),
`kdfair.checkpoints` (resume checkpoints, the best epoch of keep="best") and `kdfair.speed` (the
CUDA fast path's switches, docs/design.md section 6).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from kdfair import checkpoints, distributed
from kdfair.checkpoints import Best, check_keep, resume
from kdfair.data import DataBundle
from kdfair.errors import KdfairError
from kdfair.objectives import Objective
from kdfair.predict import evaluate_accuracy
from kdfair.schedule import Schedule, per_step_factor
from kdfair.speed import Speed, autocast, formatted
from kdfair.teacherlogits import TeacherLogits

log = logging.getLogger(__name__)

PLAIN = Speed()  # the default: no fast path (Speed is frozen, so one instance serves all)


@dataclass
class Distillation:
    """A frozen teacher and the distillation settings of one distilled student (the `distill`
    part of its model spec: kdfair.settings.model_spec)."""

    teacher: nn.Module
    temperature: float
    alpha: float
    t_squared: bool = False
    method: str = "kd"  # kd, dkd or at (kdfair.variants.METHODS)
    control: str = "none"  # none, smoothing or shuffled (kdfair.variants.CONTROLS)
    dkd: dict | None = None  # alpha, beta, warmup_epochs, reference_epochs (method dkd)
    at: dict | None = None  # beta, pairs: [[teacher stage, student stage], ...] (method at)


def monitored_split(data: DataBundle) -> str:
    """The split per-epoch accuracy is measured on: val when the data has one (the test split is
    then predicted once, after training), else test (the paper's protocol)."""
    return "test" if data.val is None else "val"


@dataclass
class Run:
    """One model trained by `fit_many`, with its optimiser state and history."""

    model: nn.Module
    distillation: Distillation | None = None
    checkpoint: Path | None = None
    description: str = "train"
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    forward: nn.Module | None = None  # what runs the batch: the model, DDP-wrapped or compiled
    best: Best | None = None  # checkpoint="best": the best validation epoch so far
    make_optimizer: Callable[..., torch.optim.Optimizer] | None = None  # None: fit_many's
    diverged: bool = False  # its loss became inf or nan (on_divergence="stop" ends its training)
    objective: Objective | None = None  # a distilled run's loss (set by fit_many)
    rng: dict | None = None  # the random streams its checkpoint saved (checkpoints.restore_rng)
    on_epoch: Callable[[dict], None] | None = None  # sees each history row (kdfair.tracking)


def fit(
    model: nn.Module,
    data: DataBundle,
    make_optimizer: Callable[..., torch.optim.Optimizer],
    schedule: Schedule,
    *,
    seed: int,
    device: torch.device,
    speed: Speed = PLAIN,
    distillation: Distillation | None = None,
    checkpoint: Path | None = None,
    description: str = "train",
    eval_every_epoch: bool = True,
    keep: str = "last",
) -> list[dict]:
    """Train `model` in place; return the per-epoch history (also kept in the checkpoint).

    Loss: CE(model(x), y), or kd_loss(model(x), teacher(x), y, T, alpha) with `distillation`.
    `keep`: "last" (the weights after the last epoch) or "best" (those of the epoch with the
    best validation accuracy; needs a validation split).
    """
    run = Run(model, distillation, checkpoint, description)
    fit_many(
        [run],
        data,
        make_optimizer,
        schedule,
        seed=seed,
        device=device,
        speed=speed,
        eval_every_epoch=eval_every_epoch,
        keep=keep,
    )
    return run.history


def fit_many(
    runs: list[Run],
    data: DataBundle,
    make_optimizer: Callable[..., torch.optim.Optimizer] | None,
    schedule: Schedule,
    *,
    seed: int,
    device: torch.device,
    speed: Speed = PLAIN,
    eval_every_epoch: bool = True,
    keep: str = "last",
    on_divergence: str = "raise",
) -> None:
    """Train several models on one data stream: each batch is drawn and augmented once and, for
    distilled students of one teacher, the teacher's forward pass is computed once and shared.

    Every model sees exactly the batches it would see trained alone (they depend only on seed and
    epoch) and keeps its own optimiser (`run.make_optimizer`, else `make_optimizer`: fused models
    may differ in learning rate), schedule, history and checkpoint, so a model fused with
    others ends with the weights it would have alone (for models without dropout; dropout draws
    from the global random stream, which fused models share). Each run resumes from its own
    checkpoint; a run that is ahead sits out the epochs it has done.

    Accuracy is measured after each epoch (`eval_every_epoch`, always after the last, and every
    epoch for keep="best") on the validation split when there is one, else on the test split.
    keep="best" ends each model with the weights of its best validation epoch.

    A loss that becomes inf or nan raises a KdfairError (`on_divergence="raise"`), or, with
    "stop" (`kdfair tune`, where a diverging learning rate is a result), ends that model's
    training there: its history's last row records `diverged`, and the others go on.
    """
    teachers = {id(r.distillation.teacher) for r in runs if r.distillation}
    if len(teachers) > 1 or (teachers and any(r.distillation is None for r in runs)):
        raise ValueError("fused runs must all distil from one teacher, or all use plain CE")
    check_keep(keep, data)
    loop = _Loop(data, schedule, seed, device, speed, eval_every_epoch, on_divergence)
    for run in runs:
        _start(run, make_optimizer, loop, keep)
    checkpoints.restore_rng(runs, device)  # dropout continues where a killed run stopped
    distributed.seed_this_rank(seed)
    teacher = _teacher_outputs(runs, data, device, speed, schedule.batch_size)
    for run in runs:
        if run.distillation is not None:
            run.objective = Objective(
                run.distillation, run.model, teacher, seed=seed, epochs=schedule.epochs
            )
    names = runs[0].description if len(runs) == 1 else f"{len(runs)} fused models"
    for epoch in range(min(r.start_epoch for r in runs), schedule.epochs):
        active = [r for r in runs if r.start_epoch <= epoch and not r.diverged]
        if not active:
            break
        bar = f"{names} {epoch + 1}/{schedule.epochs}"
        stats, seconds = _train_epoch(active, epoch, teacher, loop, bar)
        for run in active:
            _end_epoch(run, stats[id(run)], epoch, seconds, loop)
    for run in runs:
        _finish(run)


def _teacher_outputs(runs: list[Run], data, device, speed, batch_size) -> TeacherLogits | None:
    """The shared teacher's outputs for distilled runs (None for plain CE): its logits, and the
    stage activations every attention-transfer run reads."""
    distilling = [r.distillation for r in runs if r.distillation is not None]
    if not distilling:
        return None
    stages = {t: None for d in distilling if d.method == "at" for t, _ in d.at["pairs"]}
    return TeacherLogits(distilling[0], data, device, speed, batch_size, stages=list(stages))


@dataclass(frozen=True)
class _Loop:
    """What every epoch of one fit_many call shares: the data, the schedule, how to run."""

    data: DataBundle
    schedule: Schedule
    seed: int
    device: torch.device
    speed: Speed
    eval_every_epoch: bool
    on_divergence: str

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch: each process's share of the split, in local batches."""
        local_batch = distributed.local_batch_size(self.schedule.batch_size)
        share = math.ceil(len(self.data.train) / distributed.world_size())
        return math.ceil(share / local_batch)


def _start(
    run: Run, make_optimizer: Callable[..., torch.optim.Optimizer] | None, loop: _Loop, keep: str
) -> None:
    """A run ready for its first epoch: on the device, with its optimiser and scheduler, resumed
    from its checkpoint where one exists."""
    _prepare(run, loop.device, loop.speed)
    run.optimizer = (run.make_optimizer or make_optimizer)(run.model.parameters())
    # Stepped every batch, so warm-up and decay are smooth even over 3 epochs. A partial (not a
    # lambda) so the scheduler's state_dict can be saved and resumed.
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(
        run.optimizer, partial(per_step_factor, loop.schedule, loop.steps_per_epoch)
    )
    run.best = Best() if keep == "best" else None
    resume(run, loop.schedule.epochs)


def _train_epoch(
    active: list[Run], epoch: int, teacher: TeacherLogits | None, loop: _Loop, description: str
) -> tuple[dict[int, _EpochStats], float]:
    """One epoch of the active runs on one stream of batches: each run's sums, and the seconds
    the (possibly fused) epoch took."""
    device, speed = loop.device, loop.speed
    stats = {id(r): _EpochStats(device, r.optimizer.param_groups[0]["lr"]) for r in active}
    for run in active:
        run.model.train()
    started = time.perf_counter()
    batches = loop.data.train_batches(
        loop.schedule.batch_size,
        seed=loop.seed,
        epoch=epoch,
        device=device,
        rank=distributed.rank(),
        world_size=distributed.world_size(),
    )
    bar = tqdm(
        batches,
        total=loop.steps_per_epoch,
        desc=description,
        leave=False,
        disable=None if distributed.is_main() else True,
        dynamic_ncols=True,
    )
    for x, y, index in bar:
        x = formatted(x, speed)
        z_teacher = teacher(x, index) if teacher is not None else None
        for run in active:
            _step(run, x, y, index, z_teacher, stats[id(run)], epoch, speed.amp)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # steps run ahead of the host: time the GPU's work
    return stats, time.perf_counter() - started


def _finish(run: Run) -> None:
    """keep="best": back to the best validation epoch's weights; the model left in eval mode,
    without the objective's hooks."""
    if run.objective is not None:
        run.objective.close()
    if run.best is not None:
        run.model.load_state_dict(run.best.state)
        log.info(
            "%s: keeping epoch %d (best validation accuracy %.4f)",
            run.description,
            run.best.epoch,
            run.best.accuracy,
        )
    run.model.eval()


def _prepare(run: Run, device: torch.device, speed: Speed) -> None:
    """Move the model to `device` (channels_last if asked) and set what runs its batches: the
    model, wrapped in DDP under torchrun and compiled if asked. `run.model` stays the plain
    module, so checkpoints and state_dicts never carry wrapper prefixes."""
    run.model.to(device)
    if speed.channels_last:
        run.model.to(memory_format=torch.channels_last)
    forward = distributed.wrap(run.model, device)
    run.forward = torch.compile(forward) if speed.compile else forward


class _EpochStats:
    """Loss and accuracy sums of one run over one epoch, kept on the device so a step never
    waits for the GPU; read once, at the end of the epoch."""

    def __init__(self, device: torch.device, lr: float):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0
        self.lr = lr

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss_sum += loss.detach() * len(y)
        self.correct += (logits.detach().argmax(1) == y).sum()
        self.seen += len(y)


def _step(run: Run, x, y, index, z_teacher, stats: _EpochStats, epoch: int, amp: bool) -> None:
    """One optimiser step of one run."""
    with autocast(x.device, amp):
        logits = run.forward(x)
    if z_teacher is None:
        loss = F.cross_entropy(logits.float(), y)
    else:
        loss = run.objective(logits, z_teacher, y, index, epoch)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.scheduler.step()
    stats.add(loss, logits, y)


def _diverged(run: Run, epoch: int, loss: float, lr: float, on_divergence: str) -> None:
    """A run whose loss is no longer finite: an error, or (on_divergence="stop") its end."""
    if on_divergence != "stop":
        raise KdfairError(
            f"{run.description}: the training loss became {loss} in epoch {epoch + 1}. Training "
            "diverged; lower the learning rate (optim.optimizer.lr) or, for KD with "
            "t_squared=true, the temperature."
        )
    log.warning(
        "%s: diverged in epoch %d at lr %g; its training ends", run.description, epoch + 1, lr
    )
    run.diverged = True
    _add_history(run, {"epoch": epoch + 1, "lr": lr, "train_loss": loss, "diverged": True})


def _add_history(run: Run, row: dict) -> None:
    """A row of the run's history, shown to its observer (an experiment tracker's run)."""
    run.history.append(row)
    if run.on_epoch is not None:
        run.on_epoch(row)


def _end_epoch(run: Run, stats: _EpochStats, epoch: int, seconds: float, loop: _Loop) -> None:
    """History row, log line and checkpoint (rank 0) of one run after one epoch."""
    loss_sum, correct, seen = distributed.sum_across(
        [stats.loss_sum.item(), float(stats.correct.item()), float(stats.seen)]
    )
    if not math.isfinite(loss_sum):
        _diverged(run, epoch, loss_sum / seen, stats.lr, loop.on_divergence)
        return
    row = {
        "epoch": epoch + 1,
        "lr": stats.lr,
        "train_loss": loss_sum / seen,
        "train_accuracy": correct / seen,
    }
    distributed.sync_buffers(run.model)  # every rank scores (and saves) rank 0's model
    split = monitored_split(loop.data)
    measured = f"{split}_accuracy"
    epochs = loop.schedule.epochs
    if loop.eval_every_epoch or run.best is not None or epoch + 1 == epochs:
        row[measured] = evaluate_accuracy(
            run.model, loop.data, device=loop.device, amp=loop.speed.amp, split=split
        )
        if run.best is not None:
            run.best.offer(epoch + 1, row[measured], run.model)
    row["seconds"] = seconds  # of the whole (possibly fused) epoch
    _add_history(run, row)
    log.info(
        "%s epoch %d/%d: loss %.4f, train acc %.4f%s, %.1fs",
        run.description,
        epoch + 1,
        epochs,
        row["train_loss"],
        row["train_accuracy"],
        f", {split} acc {row[measured]:.4f}" if measured in row else "",
        seconds,
    )
    checkpoints.save(run, epoch + 1, loop.device)
