"""The paper's reference numbers (paper_reference.csv) and a sweep's comparison with them.

paper_reference.csv holds the results the paper reports (Table 1: CIFAR-100 and ImageNet
accuracy, #SC, #TC; the DenseNet and ViT summaries; Table 2: accuracy, EOD and DPD; Table 4:
individual fairness), one value per row, keyed by dataset, teacher and student architecture (the
config names), `model` (teacher, NDS, DS T=<t>) and `metric` (the results.csv column, or n_sc /
n_tc). Values are in % as in the paper, except counts and individual fairness; `std` where the
paper gives one.

A sweep finds its rows by its dataset and architectures, so the demo (ResNet-20 -> LeNet-5 on
Trifeature) is compared with the paper's Trifeature rows although it trains far less.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from kdfair.analysis.load import Sweep

COMPARISON_COLUMNS = [
    "model",
    "metric",
    "ours",
    "ours_ci_low",
    "ours_ci_high",
    "paper",
    "difference",
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


def comparison(sweep: Sweep, summary: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """paper_comparison.csv: one row per reference value whose population this sweep ran."""
    reference = reference_for(sweep)
    ours = {}
    for row in summary.itertuples(index=False):
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
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
