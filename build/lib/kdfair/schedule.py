"""Learning-rate schedules: the paper's step decay, and cosine / linear decay with warm-up.

A `Schedule` is plain data; `lr_factor` gives the multiplier of the base learning rate at any
(fractional) epoch, and training steps it every batch through `per_step_factor`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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


def per_step_factor(schedule: Schedule, steps_per_epoch: int, step: int) -> float:
    """`lr_factor` at optimiser step `step` (LambdaLR's argument): schedules move every batch."""
    return lr_factor(schedule, step / steps_per_epoch)


def scaled_milestones(milestones, epochs: int, reference_epochs: int) -> tuple[int, ...]:
    """Milestones given for `reference_epochs` moved proportionally to a run of `epochs`.

    The paper's 30/60/90 of 100 epochs become 3/6/9 of 10; milestones that would land on epoch 0
    or past the end are dropped.
    """
    scaled = (round(m * epochs / reference_epochs) for m in milestones)
    return tuple(sorted({m for m in scaled if 0 < m < epochs}))
