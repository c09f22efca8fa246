"""The paper's reference numbers (paper_reference.csv) and a sweep's comparison with them.

paper_reference.csv holds every value of the paper's Tables 1, 2 and 4 and the values read off
its Figures 4, 5 and 8, one value per row:

- `source`: where the value is printed: `table1` (CIFAR-100 and ImageNet accuracy, #SC, #TC at
  T = 2..10, four teacher/student pairs), `table2` (Trifeature accuracy, EOD and DPD w.r.t.
  colour; CelebA w.r.t. Young; T = 1..10), `table4` (individual fairness, T = 1..10), or a
  figure reading: `fig4` (CelebA Male, Trifeature texture, and T = 20, 30, 40 for CelebA Young
  and Trifeature colour), `fig5` (HateXplain gender and race), `fig8` (T = 20, 30, 40 for
  CIFAR-100 and ImageNet). Figure readings are approximate (about +-0.01 for Fig. 4 and 5,
  +-1 class and +-0.02 % for Fig. 8) and have no std;
- keys: dataset, teacher_arch and student_arch (the config names), `model` (teacher, NDS,
  DS T=<t>) and `metric` (the results.csv column: accuracy, dpd_<attr>, eod_<attr>,
  individual_fairness; or n_sc / n_tc, #SC and #TC of significant_classes.csv);
- `value` in % as in the paper, except n_sc and n_tc (class counts) and individual_fairness
  (the Lipschitz estimate, unitless); `std` the paper's +- over 5 seeds where it gives one;
  `note` for the odd value (top-1, target Smiling, an inconsistent figure).

docs/protocol.md prints the same numbers as tables (tests/unit/test_paper_reference.py checks
that the two agree).

A sweep finds its rows by its dataset and architectures, so the demo (ResNet-20 -> LeNet-5 on
Trifeature) is compared with the paper's Trifeature rows although it trains far less.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from kdfair.analysis.load import Sweep, variant_of

COMPARISON_COLUMNS = [
    "model",
    "metric",
    "ours",
    "ours_ci_low",
    "ours_ci_high",
    "paper",
    "difference",
    "source",
]
UNSCALED = ("individual_fairness", "n_sc", "n_tc")  # not in %


def paper_reference() -> pd.DataFrame:
    with resources.files("kdfair.analysis").joinpath("paper_reference.csv").open() as f:
        return pd.read_csv(f)


def reference_for(sweep: Sweep) -> pd.DataFrame:
    """The paper's rows for this sweep's dataset, teacher and student (empty when none)."""
    results = sweep.results
    teacher = results.loc[results.role == "teacher", "arch"]
    student = results.loc[results.role != "teacher", "arch"]
    if teacher.empty or student.empty:
        return paper_reference().iloc[0:0]
    reference = paper_reference()
    rows = reference[
        (reference["dataset"] == results["dataset"].iloc[0])
        & (reference["teacher_arch"] == teacher.iloc[0])
        & (reference["student_arch"] == student.iloc[0])
    ]
    target = sweep.recipes.get("teacher", ("", {}))[1].get("dataset.target", "Smiling")
    if results["dataset"].iloc[0] == "celeba" and target != "Smiling":
        return rows.iloc[0:0]  # the paper's CelebA numbers are for the target Smiling
    return rows.reset_index(drop=True)


def _label(role: str, temperature: float) -> str:
    return {"teacher": "teacher", "student": "NDS"}.get(role, f"DS T={temperature:g}")


def _order(model: str) -> float:
    """teacher, NDS, then DS by T: the order of the paper's tables."""
    if model in ("teacher", "NDS"):
        return -2.0 if model == "teacher" else -1.0
    return float(model.removeprefix("DS T="))


def comparison(sweep: Sweep, summary: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """paper_comparison.csv: one row per reference value whose population this sweep ran.

    Every (model, metric) of the reference that the sweep has is compared, at every temperature
    the sweep ran and the paper reports (table or figure). `ours` is the summary's
    `<metric>_mean` (with its `_ci_low`, `_ci_high`) times 100 for metrics in % (accuracy,
    dpd_*, eod_*), as is for individual_fairness, and significant_classes.csv's n_sc / n_tc
    (no interval) for the class counts; `paper` is the reference value in the same units;
    `difference = ours - paper`; `source` the reference's (table1, table2, table4, fig4, fig5,
    fig8; fig* values are read off a plot). Rows are ordered by metric (as in the reference),
    then teacher, NDS and DS by T.
    """
    reference = reference_for(sweep)
    ours = {}
    for row in summary.itertuples(index=False):
        if variant_of(getattr(row, "variant", "")):  # the paper distils with kd, no control
            continue
        label = _label(row.role, row.temperature)
        for metric in reference["metric"].unique():
            if f"{metric}_mean" in summary.columns:
                scale = 1.0 if metric in UNSCALED else 100.0
                ours[label, metric] = tuple(
                    getattr(row, f"{metric}_{stat}") * scale
                    for stat in ("mean", "ci_low", "ci_high")
                )
    for row in counts.itertuples(index=False):
        for metric in ("n_sc", "n_tc"):
            value = getattr(row, metric)
            if pd.notna(value):
                ours[f"DS T={row.temperature:g}", metric] = (float(value), np.nan, np.nan)
    rows = []
    for ref in reference.itertuples(index=False):
        if (ref.model, ref.metric) not in ours:
            continue
        mean, low, high = ours[ref.model, ref.metric]
        rows.append(
            {
                "model": ref.model,
                "metric": ref.metric,
                "ours": mean,
                "ours_ci_low": low,
                "ours_ci_high": high,
                "paper": float(ref.value),
                "difference": mean - float(ref.value),
                "source": ref.source,
            }
        )
    compared = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    metric_rank = {m: i for i, m in enumerate(reference["metric"].unique())}
    return compared.sort_values(
        ["metric", "model"],
        key=lambda c: c.map(metric_rank) if c.name == "metric" else c.map(_order),
        kind="stable",
    ).reset_index(drop=True)
