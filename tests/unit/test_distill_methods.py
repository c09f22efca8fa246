"""The distillation methods (kd, dkd, at) and controls (smoothing, shuffled), each against a
computation written out by hand on small fixed tensors."""

import math

import numpy as np
import pytest
import torch

from kdfair.controls import (
    mean_label_probability,
    permutation_table,
    shuffled_logits,
    smoothing_logits,
)
from kdfair.losses import at_loss, at_term, dkd_loss, kd_loss, nckd, tckd

STUDENT = torch.tensor([[2.0, 0.5, -1.0, 0.1], [0.3, 1.2, 0.4, -0.7], [-0.2, 0.0, 2.5, 1.0]])
TEACHER = torch.tensor([[3.0, 1.0, -2.0, 0.5], [0.1, 2.0, 1.5, -1.0], [1.0, -0.5, 2.0, 0.2]])
LABELS = torch.tensor([0, 2, 2])


def _softmax(row, t):
    e = [math.exp(v / t) for v in row]
    return [v / sum(e) for v in e]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_tckd_is_the_kl_of_the_target_vs_rest_distributions(t):
    expected = 0.0
    for s, z, y in zip(STUDENT.tolist(), TEACHER.tolist(), LABELS.tolist(), strict=True):
        ps, pt = _softmax(s, t), _softmax(z, t)
        expected += _kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
    got = tckd(STUDENT, TEACHER, LABELS, temperature=t)
    assert got.item() == pytest.approx(expected / 3, rel=1e-4)  # float32 logs of ~1 - 1e-3


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_nckd_is_the_kl_among_the_non_target_classes(t):
    expected = 0.0
    for s, z, y in zip(STUDENT.tolist(), TEACHER.tolist(), LABELS.tolist(), strict=True):
        ps, pt = _softmax(s, t), _softmax(z, t)
        # renormalised over the classes other than y (the target masked out)
        qs = [p / (1 - ps[y]) for c, p in enumerate(ps) if c != y]
        qt = [p / (1 - pt[y]) for c, p in enumerate(pt) if c != y]
        expected += _kl(qt, qs)
    got = nckd(STUDENT, TEACHER, LABELS, temperature=t)
    assert got.item() == pytest.approx(expected / 3, rel=1e-5)


def test_dkd_loss_is_ce_plus_the_weighted_decoupled_terms():
    t, alpha, beta, w = 4.0, 1.0, 8.0, 0.4
    pairs = zip(STUDENT.tolist(), LABELS.tolist(), strict=True)
    ce = sum(-math.log(_softmax(s, 1.0)[y]) for s, y in pairs) / 3
    decoupled = alpha * tckd(STUDENT, TEACHER, LABELS, temperature=t) + beta * nckd(
        STUDENT, TEACHER, LABELS, temperature=t
    )
    got = dkd_loss(STUDENT, TEACHER, LABELS, alpha=alpha, beta=beta, temperature=t, warmup=w)
    assert got.item() == pytest.approx(ce + w * t**2 * decoupled.item(), rel=1e-6)
    # TCKD + NCKD is not KD: the decoupling reweights the two parts of the KL
    assert not math.isclose(
        dkd_loss(STUDENT, TEACHER, LABELS, alpha=1.0, beta=1.0, temperature=t).item(),
        kd_loss(STUDENT, TEACHER, LABELS, temperature=t, alpha=0.5, t_squared=True).item() * 2,
    )


def test_attention_transfer_on_maps_of_different_sizes():
    torch.manual_seed(0)
    student = torch.randn(2, 3, 4, 4)  # 4x4: pooled to the teacher's 2x2
    teacher = torch.randn(2, 5, 2, 2)
    expected = 0.0
    for b in range(2):
        s = (student[b] ** 2).mean(0)  # (4, 4) channel mean of squares
        s = torch.stack([s[i : i + 2, j : j + 2].mean() for i in (0, 2) for j in (0, 2)])
        t = (teacher[b] ** 2).mean(0).flatten()
        s, t = s / s.norm(), t / t.norm()
        expected += ((s - t) ** 2).sum().item()
    expected /= 2 * 4  # mean over examples and the 4 positions
    assert at_term(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    assert at_term(teacher, student).item() == pytest.approx(expected, rel=1e-5)
    two = at_loss([student, student], [teacher, teacher], beta=1000.0)
    assert two.item() == pytest.approx(2000.0 * expected, rel=1e-5)


def test_smoothing_matches_the_teachers_mean_labelled_class_probability():
    t = 4.0
    confidence = mean_label_probability(TEACHER, LABELS, t)
    pairs = zip(TEACHER.tolist(), LABELS.tolist(), strict=True)
    by_hand = np.mean([_softmax(z, t)[y] for z, y in pairs])
    assert confidence == pytest.approx(by_hand, rel=1e-6)
    q = torch.softmax(smoothing_logits(LABELS, 4, confidence, t) / t, dim=1)
    for row, y in zip(q, LABELS.tolist(), strict=True):
        assert row[y].item() == pytest.approx(confidence, rel=1e-5)
        others = [row[c].item() for c in range(4) if c != y]
        assert others == pytest.approx([(1 - confidence) / 3] * 3, rel=1e-5)  # no similarity


def test_shuffled_keeps_confidence_and_entropy_and_reorders_the_rest():
    torch.manual_seed(1)
    logits, labels = torch.randn(64, 10) * 3, torch.randint(0, 10, (64,))
    table = permutation_table(64, 10, seed=7)
    assert torch.equal(table, permutation_table(64, 10, seed=7))  # fixed by the seed
    assert not torch.equal(table, permutation_table(64, 10, seed=8))
    assert all(sorted(row.tolist()) == list(range(9)) for row in table)  # permutations
    shuffled = shuffled_logits(logits, labels, table)
    for t in (1.0, 4.0):
        # the same logits in another order: equal up to the order of softmax's float sums
        p, q = torch.softmax(logits / t, 1), torch.softmax(shuffled / t, 1)
        rows = torch.arange(64)
        assert torch.allclose(p[rows, labels], q[rows, labels], rtol=1e-6, atol=0)
        entropy = lambda d: -(d * d.log()).sum(1)  # noqa: E731
        assert torch.allclose(entropy(p), entropy(q), rtol=1e-6, atol=1e-7)
    assert torch.equal(shuffled[torch.arange(64), labels], logits[torch.arange(64), labels])
    assert torch.equal(logits.sort(1).values, shuffled.sort(1).values)  # the same values
    moved = (shuffled != logits).any(1)
    assert moved.float().mean() > 0.9  # the non-labelled order changed (bar identity draws)


# --- populations: keys and recipes -------------------------------------------------------------


def _models(*overrides):
    from kdfair.jobmodels import job_models
    from kdfair.validate import validate
    from tests.conftest import compose_train

    return job_models(validate(compose_train(["+experiment=demo", *overrides])))


@pytest.mark.parametrize(
    "variant",
    [
        ["distill.method=dkd"],
        ["distill.method=at"],
        ["distill.control=smoothing"],
        ["distill.control=shuffled"],
    ],
)
def test_method_and_control_change_the_ds_key_and_never_the_nds_or_teachers(variant):
    plain, other = _models(), _models(*variant)
    assert other.teacher.key == plain.teacher.key
    assert other.student.key == plain.student.key
    assert all(
        a.key != b.key and a.temperature == b.temperature
        for a, b in zip(plain.distilled, other.distilled, strict=True)
    )


def test_kd_without_a_control_keeps_the_keys_models_were_stored_under():
    (first, *_) = _models().distilled
    assert set(first.spec["distill"]) == {"teacher_key", "temperature", "alpha", "t_squared"}
    explicit = _models("distill.method=kd", "distill.control=none", "distill.dkd.beta=3")
    assert [m.key for m in explicit.distilled] == [m.key for m in _models().distilled]
    dkd = [m.key for m in _models("distill.method=dkd").distilled]
    assert [m.key for m in _models("distill.method=dkd", "distill.dkd.beta=2").distilled] != dkd


def test_the_method_names_its_recipe():
    from kdfair.recipes import recipe_settings

    (ds, *_) = _models("distill.method=at").distilled
    settings = recipe_settings(ds.spec, "distilled", _models().teacher.spec)
    assert settings["distill.method"] == "at"
    assert settings["distill.at.pairs"] == [["stages.2", "body.1"], ["stages.8", "body.4"]]


# --- fused training --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from kdfair.data.trifeature import load_trifeature

    return load_trifeature(
        str(tmp_path_factory.mktemp("data")), image_size=16, n_train=64, n_test=16
    )


def test_fused_methods_and_controls_end_exactly_as_if_trained_alone(tiny_data):
    from functools import partial

    from kdfair.models.lenet import lenet5
    from kdfair.models.resnet_cifar import resnet20
    from kdfair.schedule import Schedule
    from kdfair.training import Distillation, Run, fit_many

    torch.manual_seed(5)
    teacher = resnet20(10)
    dkd = {"alpha": 1.0, "beta": 8.0, "warmup_epochs": 20.0, "reference_epochs": 240.0}
    at = {"beta": 1000.0, "pairs": [["stages.2", "body.1"], ["stages.8", "body.4"]]}
    variants = [
        {"method": "kd"},
        {"method": "dkd", "dkd": dkd},
        {"method": "at", "at": at},
        {"control": "smoothing"},
        {"control": "shuffled"},
    ]
    optimizer = partial(torch.optim.SGD, lr=0.01, momentum=0.9)
    schedule = Schedule(2, 32, (1,))  # two epochs: DKD's warm-up factor changes between them

    def run(variant):
        torch.manual_seed(0)
        return Run(lenet5(10, image_size=16), Distillation(teacher, 4.0, 0.8, **variant))

    fused = [run(v) for v in variants]
    fit_many(fused, tiny_data, optimizer, schedule, seed=3, device=torch.device("cpu"))
    weights = [r.model.state_dict() for r in fused]
    for i, b in enumerate(weights[:2]):
        for a in weights[i + 1 :]:
            assert any(not torch.equal(a[k], b[k]) for k in a)  # each objective differs
    for variant, twin in zip(variants, fused, strict=True):
        alone = run(variant)
        fit_many([alone], tiny_data, optimizer, schedule, seed=3, device=torch.device("cpu"))
        for key, value in alone.model.state_dict().items():
            assert torch.equal(value, twin.model.state_dict()[key]), (variant, key)
        assert not alone.model._forward_hooks and not any(
            m._forward_hooks for m in alone.model.modules()
        )  # attention transfer's hooks are gone after training
