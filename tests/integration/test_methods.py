"""Distillation methods and controls end to end: trained by `kdfair train` into the experiment's
own results.csv, analysed as populations of their own, and their bad input."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from .cli_helpers import run_kdfair
from .test_bad_input import _one_error_line

SMOKE = ["+debug=smoke", "dataset.max_test=400", "distill.temperature=[1,4]", "distill.lr=null"]
SEEDS = "seed=0,1,2"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """kd, dkd and the shuffled control over three seeds into one folder, then analyze."""
    work = tmp_path_factory.mktemp("methods")
    runs = [
        run_kdfair(work, work / "data", "train", "-m", *SMOKE, SEEDS, *variant)
        for variant in ([], ["distill.method=dkd"], ["distill.control=shuffled"])
    ]
    analyzed = run_kdfair(work, work / "data", "analyze", str(work / "outputs/demo"))
    return SimpleNamespace(work=work, runs=runs, analyzed=analyzed, folder=work / "outputs/demo")


def test_methods_and_controls_land_in_the_experiments_own_results(sweep):
    for run in sweep.runs:
        assert run.returncode == 0, run.stderr[-3000:]
    results = pd.read_csv(sweep.folder / "results.csv")
    distilled = results[results.role == "distilled"]
    counts = distilled.groupby(["method", "control"]).size().to_dict()
    assert counts == {("kd", "none"): 6, ("dkd", "none"): 6, ("kd", "shuffled"): 6}
    # the teacher (the demo pins one) and the NDS of each seed are shared: found in the store,
    # one row each
    assert (results.role == "teacher").sum() == 1 and (results.role == "student").sum() == 3
    assert results[results.role != "distilled"][["method", "control"]].isna().all().all()


def test_each_method_and_control_is_analysed_as_its_own_population(sweep):
    assert sweep.analyzed.returncode == 0, sweep.analyzed.stderr[-3000:]
    analysis = sweep.folder / "analysis"
    summary = pd.read_csv(analysis / "summary.csv")
    summary["variant"] = summary["variant"].fillna("")  # the DS's is empty
    distilled = summary[summary.role == "distilled"]
    assert sorted(zip(distilled.variant, distilled.temperature, strict=True)) == [
        ("", 1.0),
        ("", 4.0),
        ("dkd", 1.0),
        ("dkd", 4.0),
        ("shuffled", 1.0),
        ("shuffled", 4.0),
    ]
    assert set(distilled["n"]) == {3}  # never pooled: three seeds per population
    claims = pd.read_csv(analysis / "claims.csv")
    assert {"method_changes_fairness (dkd)", "ds_fairer_than_control (shuffled)"} <= set(
        claims["claim"]
    )
    method = claims[claims["claim"] == "method_changes_fairness (dkd)"]
    assert "reversed" not in set(method["verdict"])  # two-sided: held or not held
    # one row per claimed fairness column (smoke models near chance are left out as collapsed,
    # so a row may be not testable, with its reason)
    assert len(method) == len(claims[claims["claim"] == "ds_fairer_than_control (shuffled)"]) > 0
    assert method["statistic"].notna().all()
    report = (analysis / "report.md").read_text()
    assert "DS dkd T=4" in report and "DS shuffled T=1" in report
    assert "DS dkd" in report.split("Learning rates:")[1].split("\n")[0]


@pytest.mark.parametrize(
    ("overrides", "phrases"),
    [
        (["distill.method=fitnet"], ["distill.method='fitnet'", "kd, dkd, at"]),
        (["distill.control=uniform"], ["distill.control='uniform'", "smoothing"]),
        (
            ["distill.method=at", "model@student=resnet56"],
            ["no stage pairs for resnet20 -> resnet56", "distill.at.stages.resnet20.resnet56"],
        ),
        (
            ["distill.method=at", "+distill.at.stages.resnet20.resnet56=[[stages.2,body.1]]"],
            ["body.1", "student (resnet56)"],
        ),
        (["distill.method=dkd", "distill.t_squared=true"], ["t_squared", "dkd"]),
    ],
)
def test_bad_methods_and_controls_stop_with_one_clear_error(tmp_path, overrides, phrases):
    if overrides[-1].startswith("+distill.at.stages.resnet20.resnet56"):
        overrides = [*overrides, "model@student=resnet56"]
    result = run_kdfair(tmp_path, tmp_path / "data", "train", *SMOKE, *overrides)
    line = _one_error_line(result)
    for phrase in phrases:
        assert phrase in line, line
