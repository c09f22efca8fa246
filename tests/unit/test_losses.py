import math

import pytest
import torch
import torch.nn.functional as F

from kdfair.losses import kd_loss


def _golden_inputs():
    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 2.0]])
    targets = torch.tensor([0, 2])
    return student, teacher, targets


def _reference(student, teacher, targets, temperature, alpha, t_squared):
    """The formula of docs/protocol.md written out with plain Python floats."""
    soft = 0.0
    for zs, zt in zip(student.tolist(), teacher.tolist(), strict=True):
        ps = [math.exp(v / temperature) for v in zs]
        pt = [math.exp(v / temperature) for v in zt]
        ps = [v / sum(ps) for v in ps]
        pt = [v / sum(pt) for v in pt]
        soft += sum(t * math.log(t / s) for t, s in zip(pt, ps, strict=True))
    soft /= len(targets)
    hard = 0.0
    for zs, y in zip(student.tolist(), targets.tolist(), strict=True):
        hard += -zs[y] + math.log(sum(math.exp(v) for v in zs))
    hard /= len(targets)
    return alpha * (temperature**2 if t_squared else 1.0) * soft + (1 - alpha) * hard


@pytest.mark.parametrize("temperature", [1.0, 4.0, 10.0])
@pytest.mark.parametrize("t_squared", [False, True])
def test_kd_loss_equals_the_written_out_formula(temperature, t_squared):
    student, teacher, targets = _golden_inputs()
    got = kd_loss(
        student, teacher, targets, temperature=temperature, alpha=0.8, t_squared=t_squared
    )
    want = _reference(student, teacher, targets, temperature, 0.8, t_squared)
    assert got.item() == pytest.approx(want, rel=1e-5)  # float32 vs float64


@pytest.mark.parametrize(("t_squared", "golden"), [(False, 0.17528183), (True, 0.50913031)])
def test_kd_loss_golden_value(t_squared, golden):
    # Computed independently with scipy.special (softmax, rel_entr, log_softmax) at T=4, alpha=0.8.
    student, teacher, targets = _golden_inputs()
    got = kd_loss(student, teacher, targets, temperature=4.0, alpha=0.8, t_squared=t_squared)
    assert got.item() == pytest.approx(golden, abs=2e-6)


def test_soft_term_is_zero_when_student_matches_teacher():
    logits = torch.randn(8, 5)
    targets = torch.randint(0, 5, (8,))
    only_soft = kd_loss(logits, logits.clone(), targets, temperature=3.0, alpha=1.0)
    assert only_soft.item() == pytest.approx(0.0, abs=1e-6)


def test_t_squared_scales_the_soft_term_by_t_squared():
    student, teacher, targets = torch.randn(6, 4), torch.randn(6, 4), torch.randint(0, 4, (6,))
    plain = kd_loss(student, teacher, targets, temperature=5.0, alpha=1.0)
    scaled = kd_loss(student, teacher, targets, temperature=5.0, alpha=1.0, t_squared=True)
    assert scaled.item() == pytest.approx(25.0 * plain.item(), rel=1e-5)


def test_alpha_zero_is_plain_cross_entropy():
    student, teacher, targets = torch.randn(6, 4), torch.randn(6, 4), torch.randint(0, 4, (6,))
    got = kd_loss(student, teacher, targets, temperature=7.0, alpha=0.0)
    assert got.item() == pytest.approx(F.cross_entropy(student, targets).item(), rel=1e-6)


@pytest.mark.parametrize(
    ("temperature", "alpha"), [(0.0, 0.8), (-1.0, 0.8), (4.0, 1.5), (4.0, -0.1)]
)
def test_invalid_settings_are_rejected(temperature, alpha):
    logits = torch.randn(2, 3)
    with pytest.raises(ValueError, match="temperature|alpha"):
        kd_loss(logits, logits, torch.tensor([0, 1]), temperature=temperature, alpha=alpha)
