"""The paper's tables as DataFrames: summary over seeds, class-wise tests, #SC/#TC, disagreement."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdfair.analysis.bootstrap import corrected_interval, population_interval, seed_interval
from kdfair.analysis.load import Sweep
from kdfair.metrics.accuracy import per_class_accuracy
from kdfair.metrics.classwise import classwise_tests, disagreement_matrix

MIN_SEEDS = 2  # a Welch t-test needs two models per population


def summary(sweep: Sweep, replicates: dict[int, dict] | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per population (role, distilled variant, temperature): n, n_collapsed, and
    <metric>_mean/_std over seeds, with <metric>_ci_low/_ci_high: the 95% interval of the
    population mean, a t interval over seeds widened by the test split's noise shared by every
    seed (bootstrap.population_interval) where `replicates` (row index -> {metric: replicates})
    has the metric for every seed, else the t interval over seeds alone (bootstrap.seed_interval),
    held at >= 0 except for a <metric>_excess (metric minus its permutation floor). The intervals
    are deterministic: `seed` is accepted for callers and not used."""
    replicates = replicates or {}
    frame = sweep.results.assign(temperature=sweep.results["temperature"].fillna(-1.0))
    metrics = sweep.metric_columns
    grouped = frame.groupby(["role", "variant", "temperature"], sort=False)
    table = grouped[metrics].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    for metric in metrics:
        bounds = [_population_interval(rows, metric, replicates) for _, rows in grouped]
        table[f"{metric}_ci_low"] = [low for low, _ in bounds]
        table[f"{metric}_ci_high"] = [high for _, high in bounds]
    table = table[[f"{m}_{s}" for m in metrics for s in ("mean", "std", "ci_low", "ci_high")]]
    table.insert(0, "n", grouped.size())
    table.insert(1, "n_collapsed", grouped["collapsed"].sum().astype(int))
    table = table.reset_index()
    table["temperature"] = table["temperature"].replace(-1.0, np.nan)
    order = {"teacher": 0, "student": 1, "distilled": 2}
    return table.sort_values(
        ["role", "variant", "temperature"], key=lambda s: s.map(order) if s.name == "role" else s
    ).reset_index(drop=True)


def _population_interval(rows: pd.DataFrame, metric: str, replicates):
    values = rows[metric].to_numpy(float)
    known = [replicates.get(i, {}).get(metric) for i in rows.index]
    if all(r is not None for r in known):
        return population_interval(values, np.stack(known))
    # an excess over the permutation floor (metric - floor) can be negative; the rest are >= 0
    bounds = (-np.inf, np.inf) if metric.endswith("_excess") else (0.0, np.inf)
    return seed_interval(values, bounds=bounds)


def model_intervals(sweep: Sweep, replicates: dict[int, dict]) -> pd.DataFrame:
    """One row per model: label, seed, model_key and, per bootstrapped metric, its value with
    <metric>_ci_low/_ci_high over test examples (bootstrap.corrected_interval)."""
    rows = []
    for index, row in sweep.results.iterrows():
        out = {"model": row["label"], "seed": row["seed"], "model_key": row["model_key"]}
        for metric, values in replicates.get(index, {}).items():
            low, high = corrected_interval(values, float(row[metric]))
            out.update({metric: row[metric], f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        rows.append(out)
    return pd.DataFrame(rows)


def _per_class(sweep: Sweep, population: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    rows = [sweep.predictions(r) for _, r in population.iterrows()]
    per_class = np.stack([per_class_accuracy(p.y_true, p.y_pred, sweep.num_classes) for p in rows])
    return per_class, population["accuracy"].to_numpy(float)


def classwise(
    sweep: Sweep, *, normalisation: str = "ratio", threshold: float = 0.05, correction: str = "none"
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(classwise_tests, significant_classes, notes) for every temperature of the sweep.

    Comparisons: student_vs_distilled (#SC) and teacher_vs_distilled (#TC). A comparison with
    fewer than two seeds on either side is skipped and named in the notes.
    """
    tests, counts, notes = [], [], []
    references = {"student": sweep.population("student"), "teacher": sweep.population("teacher")}
    for temperature in sweep.temperatures:
        distilled = sweep.population("distilled", temperature)
        row = {"temperature": temperature, "n_distilled": len(distilled)}
        for reference, column in (("student", "n_sc"), ("teacher", "n_tc")):
            population = references[reference]
            if len(population) < MIN_SEEDS or len(distilled) < MIN_SEEDS:
                notes.append(
                    f"T={temperature:g}: {reference} vs distilled not tested: "
                    f"{len(population)} and "
                    f"{len(distilled)} seeds (a Welch t-test needs at least {MIN_SEEDS} per side)."
                )
                row[column] = np.nan
                continue
            result = classwise_tests(
                *_per_class(sweep, population),
                *_per_class(sweep, distilled),
                normalisation=normalisation,
                threshold=threshold,
                correction=correction,
            )
            result.insert(0, "comparison", f"{reference}_vs_distilled")
            result.insert(1, "temperature", temperature)
            result.insert(3, "class_name", sweep.class_names)
            tests.append(result)
            row[column] = int(result["significant"].sum())
        counts.append(row)
    tests_frame = (
        pd.concat(tests, ignore_index=True)
        if tests
        else pd.DataFrame(
            columns=[
                "comparison",
                "temperature",
                "class",
                "class_name",
                "mean_a",
                "mean_b",
                "t",
                "p_value",
                "p_adjusted",
                "significant",
            ]
        )
    )
    counts_frame = pd.DataFrame(counts, columns=["temperature", "n_distilled", "n_sc", "n_tc"])
    counts_frame["n_classes"] = sweep.num_classes
    return tests_frame, counts_frame, notes


def disagreements(sweep: Sweep) -> dict[str, pd.DataFrame]:
    """Disagreement matrices summed over seeds, keyed '<a>_vs_<b>' (b: distilled_T<T>).

    Pairs are matched by seed: the NDS and the DS of seed s, and the DS with its own teacher.
    """
    out = {}
    names = sweep.class_names
    teachers = {r["model_key"]: r for _, r in sweep.population("teacher").iterrows()}
    students = {r["seed"]: r for _, r in sweep.population("student").iterrows()}
    for temperature in sweep.temperatures:
        total = {"teacher": np.zeros((sweep.num_classes,) * 2, np.int64)}
        total["student"] = total["teacher"].copy()
        found = {"teacher": False, "student": False}
        for _, ds in sweep.population("distilled", temperature).iterrows():
            for reference, row in (
                ("teacher", teachers.get(ds["teacher_key"])),
                ("student", students.get(ds["seed"])),
            ):
                if row is None:
                    continue
                total[reference] += disagreement_matrix(
                    sweep.predictions(row).y_pred, sweep.predictions(ds).y_pred, sweep.num_classes
                )
                found[reference] = True
        for reference, matrix in total.items():
            if found[reference]:
                out[f"{reference}_vs_distilled_T{temperature:g}"] = pd.DataFrame(
                    matrix,
                    index=pd.Index(names, name=f"{reference} predicts"),
                    columns=pd.Index(names, name="distilled predicts"),
                )
    return out


def mean_std(values: pd.Series, *, percent: bool = False, digits: int = 2) -> str:
    """'mean +- std' of the non-missing values ('n/a' when none; no std for one value)."""
    values = values.dropna().astype(float) * (100.0 if percent else 1.0)
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"
