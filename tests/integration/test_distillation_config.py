"""The distillation settings of the config reach the distilled student, and only it.

In-process smoke jobs (pipeline.run on the real composed configs) that share one model store:
each variant changes one KD setting (T, alpha, t_squared) or the teacher itself, and must change
the distilled student's weights while the non-distilled student stays the very same model.
"""

from __future__ import annotations

import pytest
import torch
from omegaconf import open_dict

from kdfair.pipeline import run

BASE = ("distill.temperature=[4]",)
VARIANTS = {
    "temperature": ("distill.temperature=[2]",),
    "alpha": ("distill.temperature=[4]", "distill.alpha=0.3"),
    "t_squared": ("distill.temperature=[4]", "distill.t_squared=true"),
    "teacher": ("distill.temperature=[4]", "teacher_optim.optimizer.lr=0.01"),
}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """{variant: {role: (model_key, state_dict)}} for the base job and every variant."""
    root = tmp_path_factory.mktemp("kd-config")

    from tests.conftest import compose_train  # the real config tree, as `kdfair train` composes

    out = {}
    for name, overrides in {"base": BASE, **VARIANTS}.items():
        # distill.lr=null: every T at the student's lr, so T alone tells the keys apart
        cfg = compose_train(["+experiment=demo", "+debug=smoke", "distill.lr=null", *overrides])
        with open_dict(cfg):
            cfg.paths.outputs = str(root / "outputs")
            cfg.dataset.io.root = str(root / "data")
            cfg.eval.individual.enabled = False
        summary = run(cfg).set_index("role")  # this job's models, trained or reused
        models = {}
        for role in ("teacher", "student", "distilled"):
            key = summary.loc[role, "model_key"]
            state = torch.load(root / "outputs" / "models" / key / "model.pt", weights_only=True)
            models[role] = (key, state["state_dict"])
        out[name] = models
    return out


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_kd_setting_changes_the_distilled_student_and_not_the_nds(jobs, variant):
    base, other = jobs["base"], jobs[variant]
    assert other["distilled"][0] != base["distilled"][0]  # a new model, not a reused one
    assert not _same(other["distilled"][1], base["distilled"][1])  # and it learned differently
    assert other["student"][0] == base["student"][0]  # the NDS knows nothing of KD settings
    assert _same(other["student"][1], base["student"][1])
    teacher_changed = variant == "teacher"
    assert (other["teacher"][0] != base["teacher"][0]) is teacher_changed
