"""fit(): one training loop for every role.

Cross-entropy for teachers and non-distilled students; the KD objective of `kdfair.losses` when a
frozen teacher is given. SGD with step decay (the paper's schedule), bf16 autocast on CUDA, a tqdm
bar per epoch, a history row per epoch, and a resume checkpoint after every epoch: a rerun of a
killed job continues from the last finished epoch and ends with the same weights, because an
epoch's batches depend only on (seed, epoch).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from kdfair.data import DataBundle
from kdfair.errors import KdfairError
from kdfair.losses import kd_loss
from kdfair.store import torch_save

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """Epochs, batch size and the learning-rate factor of each epoch (see `lr_factor`)."""

    epochs: int
    batch_size: int
    milestones: tuple[int, ...]
    gamma: float = 0.1
    kind: str = "step"  # step, cosine or linear
    warmup_epochs: float = 0


def lr_factor(schedule: Schedule, epoch: float) -> float:
    """Multiplier of the base lr at `epoch` (0-based, fractional within an epoch).

    warm-up (epoch < W):  0.01 + 0.99 * epoch / W
    step:                 gamma ** (number of milestones <= epoch)
    cosine:               (1 + cos(pi * (epoch - W) / (epochs - W))) / 2
    linear:               (epochs - epoch) / (epochs - W)
    """
    w = schedule.warmup_epochs
    if epoch < w:
        return 0.01 + 0.99 * epoch / w
    progress = (epoch - w) / max(1e-9, schedule.epochs - w)
    if schedule.kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule.kind == "linear":
        return max(0.0, 1.0 - progress)
    return schedule.gamma ** sum(epoch >= m for m in schedule.milestones)


def _per_step(schedule: Schedule, steps_per_epoch: int, step: int) -> float:
    return lr_factor(schedule, step / steps_per_epoch)


@dataclass
class Distillation:
    """A frozen teacher and the KD settings of one distilled student."""

    teacher: nn.Module
    temperature: float
    alpha: float
    t_squared: bool = False


def scaled_milestones(milestones, epochs: int, reference_epochs: int) -> tuple[int, ...]:
    """Milestones given for `reference_epochs` moved proportionally to a run of `epochs`.

    The paper's 30/60/90 of 100 epochs become 3/6/9 of 10; milestones that would land on epoch 0
    or past the end are dropped.
    """
    scaled = (round(m * epochs / reference_epochs) for m in milestones)
    return tuple(sorted({m for m in scaled if 0 < m < epochs}))


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp`; a no-op elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


class TeacherLogits:
    """The frozen teacher's logits for a training batch.

    When the training stream has no augmentation the teacher sees the same image every epoch, so
    its logits are computed once for the whole training split and looked up by index afterwards:
    the teacher's forward, the dominant cost of distilling a small student, is paid once.
    """

    def __init__(
        self,
        distillation: Distillation,
        data: DataBundle,
        device: torch.device,
        amp: bool,
        batch_size: int,
    ):
        self.teacher = distillation.teacher.to(device).eval().requires_grad_(False)
        self.device, self.amp = device, amp
        self.cache: torch.Tensor | None = None
        if data.deterministic_train_stream:
            with torch.no_grad(), autocast(device, amp):
                chunks = [
                    self.teacher(x).float()
                    for x in data.train_batches_in_order(max(batch_size, 256), device=device)
                ]
            self.cache = torch.cat(chunks)

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[index.to(self.cache.device)]
        with torch.no_grad(), autocast(self.device, self.amp):
            return self.teacher(x).float()


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module, data: DataBundle, *, device: torch.device, amp: bool, batch_size: int = 512
) -> float:
    model.eval()
    correct = 0
    for x, y in data.test_batches(batch_size, device=device):
        with autocast(device, amp):
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(data.test)


def fit(
    model: nn.Module,
    data: DataBundle,
    make_optimizer: Callable[..., torch.optim.Optimizer],
    schedule: Schedule,
    *,
    seed: int,
    device: torch.device,
    amp: bool = False,
    distillation: Distillation | None = None,
    checkpoint: Path | None = None,
    description: str = "train",
    eval_every_epoch: bool = True,
) -> list[dict]:
    """Train `model` in place; return the per-epoch history (also kept in the checkpoint).

    Loss: CE(model(x), y), or kd_loss(model(x), teacher(x), y, T, alpha) with `distillation`.
    """
    model.to(device)
    optimizer = make_optimizer(model.parameters())
    # Stepped every batch, so warm-up and decay are smooth even over 3 epochs. A partial (not a
    # lambda) so the scheduler's state_dict can be saved and resumed.
    steps_per_epoch = -(-len(data.train) // schedule.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(_per_step, schedule, steps_per_epoch)
    )
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        try:
            state = torch.load(checkpoint, map_location=device, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except Exception as e:
            raise KdfairError(
                f"The resume checkpoint {checkpoint} cannot be loaded ({e}). Delete it to restart "
                "this model's training from epoch 0."
            ) from e
        history, start_epoch = list(state["history"]), int(state["epoch"])
        log.info(
            "%s: resuming after epoch %d/%d from %s",
            description,
            start_epoch,
            schedule.epochs,
            checkpoint,
        )
    teacher = (
        TeacherLogits(distillation, data, device, amp, schedule.batch_size)
        if distillation
        else None
    )

    for epoch in range(start_epoch, schedule.epochs):
        model.train()
        lr = optimizer.param_groups[0]["lr"]  # at the start of the epoch
        started = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        batches = data.train_batches(schedule.batch_size, seed=seed, epoch=epoch, device=device)
        bar = tqdm(
            batches,
            total=steps_per_epoch,
            desc=f"{description} {epoch + 1}/{schedule.epochs}",
            leave=False,
            disable=None,
            dynamic_ncols=True,
        )
        for x, y, index in bar:
            with autocast(device, amp):
                logits = model(x)
            if teacher is None:
                loss = F.cross_entropy(logits.float(), y)
            else:
                loss = kd_loss(
                    logits,
                    teacher(x, index),
                    y,
                    temperature=distillation.temperature,
                    alpha=distillation.alpha,
                    t_squared=distillation.t_squared,
                )
            if not torch.isfinite(loss):
                raise KdfairError(
                    f"{description}: the loss became {loss.item()} at epoch {epoch + 1}. Training "
                    "diverged; lower the learning rate (optim.optimizer.lr) or, for KD with "
                    "t_squared=true, the temperature."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
        }
        if eval_every_epoch or epoch + 1 == schedule.epochs:
            row["test_accuracy"] = evaluate_accuracy(model, data, device=device, amp=amp)
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        log.info(
            "%s epoch %d/%d: loss %.4f, train acc %.4f%s, %.1fs",
            description,
            epoch + 1,
            schedule.epochs,
            row["train_loss"],
            row["train_accuracy"],
            f", test acc {row['test_accuracy']:.4f}" if "test_accuracy" in row else "",
            row["seconds"],
        )
        if checkpoint is not None:
            torch_save(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "history": history,
                },
                checkpoint,
            )
    model.eval()
    return history


def resolve_device(device: str, amp) -> tuple[torch.device, bool]:
    """`auto` picks CUDA when available; amp `auto` turns bf16 autocast on for CUDA only."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    use_amp = resolved.type == "cuda" if str(amp) == "auto" else str(amp).lower() == "true"
    return resolved, use_amp
