"""A distilled student's loss per batch: its method on its teacher's targets, or on a control's.

`distill.method` picks the objective of `kdfair.losses` (kd, dkd, at) and `distill.control`
(`kdfair.controls`) what stands in for the teacher's logits (none: the teacher's own). A fused
group may mix methods and controls: every run has its own `Objective` over the batch's shared
teacher outputs, so each is trained exactly as it would be alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from kdfair.controls import (
    mean_label_probability,
    permutation_table,
    shuffled_logits,
    smoothing_logits,
)
from kdfair.errors import KdfairError
from kdfair.losses import at_loss, dkd_loss, kd_loss


class Activations:
    """Keeps the outputs of a model's named submodules on every forward pass (forward hooks):
    attention transfer's stages, read after the model has run the batch."""

    def __init__(self, model: nn.Module, names: Sequence[str], whose: str):
        self.names = list(names)
        self.outputs: dict[str, torch.Tensor] = {}
        self.handles = []
        for name in self.names:
            try:
                module = model.get_submodule(name)
            except AttributeError as e:
                children = ", ".join(n for n, _ in model.named_modules() if n and "." not in n)
                raise KdfairError(
                    f"distill.at.stages names {name!r} for the {whose}, which has no such "
                    f"submodule (its top-level ones: {children}). Name a submodule as "
                    "model.named_modules() lists it, e.g. stages.2."
                ) from e
            self.handles.append(module.register_forward_hook(partial(self._keep, name)))

    def _keep(self, name: str, _module, _inputs, output) -> None:
        self.outputs[name] = output

    def __call__(self) -> list[torch.Tensor]:
        """The kept outputs of the last forward pass, in the order of `names`."""
        return [self.outputs[name] for name in self.names]

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.outputs.clear()


def check_stages(teacher_arch: dict, student_arch: dict, pairs) -> None:
    """Attention transfer's stage names exist in both models: checked on freshly built models
    before anything trains (KdfairError naming the stage otherwise)."""
    from kdfair.factories import build_model  # factories builds every model; only this needs it

    for arch, names, whose in (
        (teacher_arch, [t for t, _ in pairs], "teacher"),
        (student_arch, [s for _, s in pairs], "student"),
    ):
        Activations(build_model(arch), names, f"{whose} ({arch['name']})").close()


class Objective:
    """The loss of one distilled run (see the module docstring).

    `teacher` is the job's TeacherLogits: the teacher's logits per batch, its stage activations
    when a run transfers attention, and p̄_T for the smoothing control; `seed` draws the shuffled
    control's permutations; `epochs` scales DKD's warm-up to the run's length.
    """

    def __init__(self, distillation, model: nn.Module, teacher, *, seed: int, epochs: int):
        self.kd = distillation
        self.teacher = teacher
        self.epochs = epochs
        self.stages = None
        if distillation.method == "at":
            pairs = distillation.at["pairs"]
            self.stages = Activations(model, [student for _, student in pairs], "student")
        self.confidence = None
        self.permutations = None
        if distillation.control == "smoothing":
            logits, labels = teacher.training_logits()
            self.confidence = mean_label_probability(logits, labels, distillation.temperature)
        elif distillation.control == "shuffled":
            n, classes = teacher.training_size, teacher.num_classes
            self.permutations = permutation_table(n, classes, seed).to(teacher.device)

    def targets(self, z_teacher: torch.Tensor, y: torch.Tensor, index: torch.Tensor):
        """The logits the student learns from: the teacher's, or its control's."""
        if self.confidence is not None:
            t = self.kd.temperature
            return smoothing_logits(y, z_teacher.shape[1], self.confidence, t)
        if self.permutations is not None:
            return shuffled_logits(z_teacher, y, self.permutations[index.to(z_teacher.device)])
        return z_teacher

    def warmup(self, epoch: int) -> float:
        """DKD's warm-up factor in epoch `epoch` (0-based): linear over warmup_epochs of
        reference_epochs, scaled to this run's length (20 of 240 in DKD's CIFAR setting)."""
        dkd = self.kd.dkd
        length = float(dkd["warmup_epochs"]) * self.epochs / float(dkd["reference_epochs"])
        return 1.0 if length <= 0 else min((epoch + 1) / length, 1.0)

    def __call__(self, logits, z_teacher, y, index, epoch: int) -> torch.Tensor:
        kd = self.kd
        z = self.targets(z_teacher, y, index)
        if kd.method == "dkd":
            dkd = kd.dkd
            return dkd_loss(
                logits,
                z,
                y,
                alpha=float(dkd["alpha"]),
                beta=float(dkd["beta"]),
                temperature=kd.temperature,
                warmup=self.warmup(epoch),
            )
        loss = kd_loss(
            logits, z, y, temperature=kd.temperature, alpha=kd.alpha, t_squared=kd.t_squared
        )
        if self.stages is not None:
            teacher = self.teacher.activations([t for t, _ in kd.at["pairs"]])
            loss = loss + at_loss(self.stages(), teacher, beta=float(kd.at["beta"]))
        return loss

    def close(self) -> None:
        if self.stages is not None:
            self.stages.close()
