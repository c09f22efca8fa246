"""Distillation reaches the optimiser: the real training loop's KD step against a step derived by
hand, and the cached teacher logits against a live teacher, batch by batch.

For a linear student z_s = W x + b trained on one batch of B examples with plain SGD (lr eta),

    dL/dz_s = alpha * s(T) * (softmax(z_s / T) - softmax(z_t / T)) / (T * B)
              + (1 - alpha) * (softmax(z_s) - onehot(y)) / B,        s(T) = T^2 or 1,

so one step gives W' = W - eta * dL/dz_s^T x and b' = b - eta * sum_i dL/dz_s,i. Written out with
numpy, independently of kdfair.losses: a step that dropped the teacher, ignored T, alpha or
t_squared, swapped the KL's direction or looked up another example's cached teacher logits would
land elsewhere.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from kdfair.data import DataBundle, Split
from kdfair.data.inputs import ImageInputs
from kdfair.data.transforms import Augmentation
from kdfair.schedule import Schedule
from kdfair.speed import Speed
from kdfair.teacherlogits import TeacherLogits
from kdfair.training import Distillation, fit

CLASSES, SIDE = 4, 4


class Linear(nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(3 * SIDE * SIDE, CLASSES)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _bundle(n: int, augmented: bool) -> DataBundle:
    g = torch.Generator().manual_seed(0)
    split = Split(
        torch.randint(0, 256, (n, 3, SIDE, SIDE), generator=g, dtype=torch.uint8),
        torch.randint(0, CLASSES, (n,), generator=g),
    )
    return DataBundle(
        name="tiny",
        train=split,
        test=split,
        num_classes=CLASSES,
        class_names=[str(c) for c in range(CLASSES)],
        attribute_groups={},
        input_kind=ImageInputs(
            (0.5, 0.5, 0.5),
            (0.25, 0.25, 0.25),
            Augmentation(crop_padding=0, horizontal_flip=augmented),
        ),
    )


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("augmented", [False, True], ids=["cached-teacher", "live-teacher"])
@pytest.mark.parametrize(
    ("temperature", "alpha", "t_squared"),
    [(4.0, 0.8, False), (4.0, 0.8, True), (2.0, 0.3, False), (1.0, 1.0, True)],
)
def test_one_kd_step_of_the_training_loop_equals_the_step_by_hand(
    temperature, alpha, t_squared, augmented
):
    n, lr = 16, 0.5
    data = _bundle(n, augmented)
    assert data.deterministic_train_stream is not augmented  # both teacher paths are exercised
    teacher, student = Linear(1), Linear(2)
    w0, b0 = (p.detach().double().numpy().copy() for p in (student.fc.weight, student.fc.bias))
    seen = []
    student.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].detach().clone()) if m.training else None
    )
    fit(
        student,
        data,
        partial(torch.optim.SGD, lr=lr),
        Schedule(epochs=1, batch_size=n, milestones=()),
        seed=3,
        device=torch.device("cpu"),
        speed=Speed(),
        distillation=Distillation(teacher, temperature, alpha, t_squared),
        eval_every_epoch=False,
    )
    (x_step,) = seen  # one batch, one step
    (x, y, _), *rest = data.train_batches(n, seed=3, epoch=0, device=torch.device("cpu"))
    assert not rest and torch.equal(x, x_step)
    x, y = x.flatten(1).double().numpy(), y.numpy()
    wt, bt = (p.detach().double().numpy() for p in (teacher.fc.weight, teacher.fc.bias))
    z_t, z_s = x @ wt.T + bt, x @ w0.T + b0
    scale = temperature**2 if t_squared else 1.0
    soft = (_softmax(z_s / temperature) - _softmax(z_t / temperature)) / (temperature * n)
    hard = (_softmax(z_s) - np.eye(CLASSES)[y]) / n
    dz = alpha * scale * soft + (1 - alpha) * hard
    np.testing.assert_allclose(student.fc.weight.detach().numpy(), w0 - lr * dz.T @ x, atol=1e-5)
    np.testing.assert_allclose(student.fc.bias.detach().numpy(), b0 - lr * dz.sum(0), atol=1e-5)


def test_cached_teacher_logits_equal_a_live_teacher_over_a_shuffled_epoch():
    """Batch by batch, the logits the step uses are the teacher's on that batch's images."""
    data = _bundle(100, augmented=False)
    teacher = Linear(1)
    cached = TeacherLogits(
        Distillation(teacher, 4.0, 0.8), data, torch.device("cpu"), Speed(), batch_size=32
    )
    assert cached.cache is not None  # no augmentation: the cached path
    for epoch in range(2):
        batches = list(data.train_batches(32, seed=5, epoch=epoch, device=torch.device("cpu")))
        assert len(batches) == 4
        order = torch.cat([index for _, _, index in batches])
        assert not torch.equal(order, torch.arange(100))  # shuffled
        for x, _, index in batches:
            with torch.no_grad():
                live = teacher(x)
            torch.testing.assert_close(cached(x, index), live, rtol=1e-5, atol=1e-5)


class NormalisedLinear(Linear):
    """A teacher with BatchNorm: a teacher left in training mode would move its statistics."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self.norm = nn.BatchNorm1d(CLASSES)

    def forward(self, x):
        return self.norm(super().forward(x))


@pytest.mark.parametrize("augmented", [False, True], ids=["cached-teacher", "live-teacher"])
def test_training_moves_the_student_only(augmented):
    """The teacher is frozen: no gradient, no weight change, no BatchNorm statistics update."""
    data = _bundle(64, augmented)
    teacher, student = NormalisedLinear(1), Linear(2)
    teacher.norm.running_mean.fill_(0.3)  # as if trained: stats a train-mode forward would move
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in student.state_dict().items()}
    fit(
        student,
        data,
        partial(torch.optim.SGD, lr=0.1),
        Schedule(epochs=2, batch_size=16, milestones=()),
        seed=0,
        device=torch.device("cpu"),
        distillation=Distillation(teacher, 4.0, 0.8),
        eval_every_epoch=False,
    )
    assert all(p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not torch.equal(student.state_dict()["fc.weight"], student_before["fc.weight"])
