"""Precision is explicit: the teacher's logits stay float32 when the student runs under bf16
autocast, and the settings that change a model's numbers (device kind, autocast dtype,
deterministic algorithms) are recorded with it and said aloud when a job reuses it at another
precision."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import kdfair.speed
import kdfair.teacherlogits
import kdfair.training
from kdfair.data import DataBundle, ImageInputs, Split
from kdfair.provision import _check_numerics
from kdfair.schedule import Schedule
from kdfair.speed import Speed, describe_numerics, numerics
from kdfair.teacherlogits import TeacherLogits
from kdfair.training import Distillation, Run, fit_many

CPU = torch.device("cpu")


class Recorder(nn.Module):
    """A linear classifier that notes whether autocast was on at each forward."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 4 * 4, 10)
        self.autocast_seen: list[bool] = []

    def forward(self, x):
        self.autocast_seen.append(torch.is_autocast_enabled("cpu"))
        return self.linear(x.flatten(1))


def _data(augmented: bool) -> DataBundle:
    from kdfair.data.transforms import Augmentation

    images = torch.randint(0, 256, (32, 3, 4, 4), generator=torch.Generator().manual_seed(0))
    split = Split(images.to(torch.uint8), torch.arange(32) % 10)
    augmentation = Augmentation(1, True) if augmented else Augmentation(0, False)
    kind = ImageInputs((0.5,) * 3, (0.25,) * 3, augmentation)
    return DataBundle("toy", split, split, 10, [str(c) for c in range(10)], {}, kind)


@pytest.mark.parametrize("augmented", [False, True], ids=["cached-teacher", "live-teacher"])
def test_the_teachers_logits_are_computed_outside_autocast(monkeypatch, augmented):
    # CPU bf16 autocast stands in for CUDA's: wherever kdfair asks for autocast with amp on.
    def cpu_autocast(device, amp):
        return torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext()

    for module in (kdfair.speed, kdfair.training, kdfair.teacherlogits):
        monkeypatch.setattr(module, "autocast", cpu_autocast, raising=False)
    torch.manual_seed(0)
    teacher, student = Recorder(), Recorder()
    fit_many(
        [Run(student, Distillation(teacher, 4.0, 0.8))],
        _data(augmented),
        partial(torch.optim.SGD, lr=0.1),
        Schedule(2, 16, ()),
        seed=0,
        device=CPU,
        speed=Speed(amp=True),
        eval_every_epoch=False,
    )
    assert student.autocast_seen and all(student.autocast_seen[:4])  # the students' steps: bf16
    assert teacher.autocast_seen and not any(teacher.autocast_seen)  # the teacher: float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cached_teacher_logits_on_cuda_are_the_float32_forward():
    cuda = torch.device("cuda")
    data = _data(False).train_on(cuda)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(48, 64), nn.ReLU(), nn.Linear(64, 10))
    logits = TeacherLogits(Distillation(teacher, 4.0, 0.8), data, cuda, Speed(amp=True), 16)
    x = next(data.train_batches_in_order(32, device=cuda))
    with torch.no_grad():
        expected = teacher.to(cuda)(x)
    assert logits.cache.dtype == torch.float32
    assert torch.equal(logits.cache, expected)


def test_numerics_name_device_precision_and_determinism():
    assert numerics(CPU, Speed(amp=True)) == {"device": "cpu", "amp": None, "deterministic": False}
    assert describe_numerics(numerics(CPU, Speed(deterministic=True))) == "cpu fp32 deterministic"
    assert describe_numerics({"device": "cuda", "amp": "bfloat16"}) == "cuda bf16"
    assert describe_numerics(None) == "unrecorded"  # entries stored before it was recorded


def test_reusing_a_model_trained_at_another_precision_is_said_aloud(caplog):
    shop = SimpleNamespace(device=CPU, speed=Speed())
    with caplog.at_level(logging.WARNING, logger="kdfair.provision"):
        _check_numerics(shop, {"device": "cpu", "amp": None}, "teacher resnet20 seed=0")
        _check_numerics(shop, None, "teacher resnet20 seed=0")  # unrecorded: nothing to compare
        assert not caplog.records
        _check_numerics(shop, {"device": "cuda", "amp": "bfloat16"}, "teacher resnet20 seed=0")
    (record,) = caplog.records
    assert "trained in cuda bf16; this job trains in cpu fp32" in record.getMessage()
