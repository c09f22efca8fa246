"""`kdfair analyze outputs/<experiment>`: every table, figure and report.md (docs/design.md, 4).

Writes to outputs/<experiment>/analysis/: summary.csv, classwise_tests.csv,
significant_classes.csv, disagreement_<a>_vs_<b>.csv, report.md and PNG figures. Every file is
written to a temporary name and renamed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from kdfair.analysis import figures
from kdfair.analysis.load import COLLAPSE_MARGIN, Sweep, load_sweep
from kdfair.analysis.tables import classwise, disagreements, mean_std, summary
from kdfair.store import atomic_path, write_text

log = logging.getLogger(__name__)


def _write_csv(frame: pd.DataFrame, path: Path, **kwargs) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return path


def _rows_in_paper_order(sweep: Sweep) -> list[tuple[str, pd.DataFrame]]:
    """(label, population) for teacher, NDS and each DS temperature."""
    rows = [("teacher", sweep.population("teacher")), ("NDS", sweep.population("student"))]
    rows += [(f"DS T={t:g}", sweep.population("distilled", t)) for t in sweep.temperatures]
    return [(label, pop) for label, pop in rows if len(pop)]


def _collapse_mark(population: pd.DataFrame) -> str:
    n = int(population["collapsed"].sum())
    return f" † ({n}/{len(population)} collapsed)" if n else ""


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _attributes(sweep: Sweep) -> list[str]:
    return [c[4:] for c in sweep.results.columns if c.startswith("dpd_")]


def analyze(
    directory: str | Path,
    *,
    normalisation: str = "ratio",
    threshold: float = 0.05,
    correction: str = "none",
) -> Path:
    """Write the analysis of one experiment folder; return the path of report.md."""
    sweep = load_sweep(directory)
    out = sweep.directory / "analysis"
    out.mkdir(exist_ok=True)
    experiment = str(sweep.results["experiment"].iloc[0])

    summary_table = summary(sweep)
    _write_csv(summary_table, out / "summary.csv", index=False)
    tests, counts, notes = classwise(
        sweep, normalisation=normalisation, threshold=threshold, correction=correction
    )
    _write_csv(tests, out / "classwise_tests.csv", index=False)
    _write_csv(counts, out / "significant_classes.csv", index=False)
    matrices = disagreements(sweep)
    for name, matrix in matrices.items():
        _write_csv(matrix, out / f"disagreement_{name}.csv")

    pngs: list[tuple[str, Path]] = []
    attributes = _attributes(sweep)
    if sweep.temperatures:
        pngs.append(
            (
                "Accuracy against temperature",
                figures.metric_vs_temperature(
                    sweep, ["accuracy"], ["accuracy"], out / "accuracy_vs_temperature.png"
                ),
            )
        )
        for attr in attributes:
            pngs.append(
                (
                    f"Group fairness w.r.t. {attr} (Fig. 4)",
                    figures.metric_vs_temperature(
                        sweep,
                        [f"eod_{attr}", f"dpd_{attr}"],
                        [f"EOD ({attr})", f"DPD ({attr})"],
                        out / f"group_fairness_{attr}.png",
                    ),
                )
            )
        if "individual_fairness" in sweep.results:
            pngs.append(
                (
                    "Individual fairness against temperature (Table 4)",
                    figures.metric_vs_temperature(
                        sweep,
                        ["individual_fairness", "consistency"],
                        ["individual fairness (lower is fairer)", "kNN consistency"],
                        out / "individual_fairness.png",
                        percent=False,
                    ),
                )
            )
    if counts[["n_sc", "n_tc"]].notna().any().any():
        pngs.append(
            (
                "#SC and #TC against temperature (Fig. 3)",
                figures.significant_classes_vs_temperature(
                    counts, sweep, out / "significant_classes.png"
                ),
            )
        )
        most = counts.loc[counts["n_sc"].fillna(-1).idxmax(), "temperature"]
        pngs.append(
            (
                f"Per-class accuracy change, NDS vs DS at T={most:g} (Fig. 1)",
                figures.per_class_shift(
                    tests, most, "student_vs_distilled", out / "per_class_accuracy.png"
                ),
            )
        )
    if matrices:
        top = max(sweep.temperatures)
        key = f"student_vs_distilled_T{top:g}"
        if key in matrices:
            pngs.append(
                (
                    f"Disagreement NDS vs DS at T={top:g}, summed over seeds",
                    figures.disagreement_heatmap(
                        matrices[key], f"NDS vs DS, T={top:g}", out / f"disagreement_{key}.png"
                    ),
                )
            )

    report = _report(
        sweep,
        experiment,
        counts,
        notes,
        pngs,
        attributes,
        normalisation=normalisation,
        threshold=threshold,
        correction=correction,
    )
    path = out / "report.md"
    write_text(path, report)
    log.info("wrote %s", path)
    return path


def _report(
    sweep, experiment, counts, notes, pngs, attributes, *, normalisation, threshold, correction
) -> str:
    results = sweep.results
    seeds = results.groupby("label", sort=False)["seed"].nunique()
    lines = [
        f"# kdfair analysis: {experiment}",
        "",
        f"{len(results)} models from `{sweep.directory / 'results.csv'}`; {sweep.num_classes} "
        f"classes; seeds per model: {', '.join(f'{k} {v}' for k, v in seeds.items())}. "
        "Values are mean ± std over seeds, in % unless noted.",
        "",
    ]
    collapsed = results[results["collapsed"]]
    if len(collapsed):
        lines += [
            f"**† Collapsed models.** {len(collapsed)} model(s) scored near chance (accuracy below "
            f"chance + {COLLAPSE_MARGIN:.0%} of the way to perfect): "
            + ", ".join(
                f"{r.label} seed {r.seed} ({r.accuracy:.1%})" for r in collapsed.itertuples()
            )
            + ". A collapsed model predicts (almost) one class, so its DPD and EOD look excellent "
            "and mean nothing; its rows are marked † and its points with a red x.",
            "",
        ]

    # Table 1: accuracy and significantly affected classes.
    table1 = []
    for label, population in _rows_in_paper_order(sweep):
        row = {
            "model": label + _collapse_mark(population),
            "accuracy": mean_std(population["accuracy"], percent=True),
        }
        if label.startswith("DS"):
            match = counts[np.isclose(counts["temperature"], population["temperature"].iloc[0])]
            row["#SC"] = _count(match["n_sc"])
            row["#TC"] = _count(match["n_tc"])
        else:
            row["#SC"] = row["#TC"] = ""
        table1.append(row)
    lines += [
        "## Accuracy and significantly affected classes (Table 1)",
        "",
        f"#SC: classes whose normalised accuracy ({normalisation}) differs significantly between "
        f"NDS and DS (Welch t-test over seeds, p ≤ {threshold}, correction: {correction}); "
        "#TC: the same between teacher and DS.",
        "",
        _markdown(pd.DataFrame(table1)),
        "",
    ]
    lines += [f"- {note}" for note in notes] + ([""] if notes else [])

    if attributes:
        table2 = []
        for label, population in _rows_in_paper_order(sweep):
            row = {
                "model": label + _collapse_mark(population),
                "accuracy": mean_std(population["accuracy"], percent=True),
            }
            for attr in attributes:
                row[f"EOD ({attr})"] = mean_std(population[f"eod_{attr}"], percent=True)
                row[f"DPD ({attr})"] = mean_std(population[f"dpd_{attr}"], percent=True)
            table2.append(row)
        lines += [
            "## Group fairness (Table 2)",
            "",
            "DPD and EOD in %, lower is fairer; multiclass tasks one-vs-rest, averaged over "
            "classes (Algorithm 1). n/a: undefined on this test split (see the train log).",
            "",
            _markdown(pd.DataFrame(table2)),
            "",
        ]

    if "individual_fairness" in results:
        table4 = [
            {
                "model": label + _collapse_mark(population),
                "individual fairness": mean_std(population["individual_fairness"], digits=4),
                "kNN consistency": mean_std(population["consistency"], digits=4),
            }
            for label, population in _rows_in_paper_order(sweep)
        ]
        lines += [
            "## Individual fairness (Table 4)",
            "",
            "Lipschitz estimate: mean over neighbour pairs of the L1 distance between softmax "
            "outputs over the pair's distance (lower is fairer); kNN consistency (higher is "
            "fairer). Not in %.",
            "",
            _markdown(pd.DataFrame(table4)),
            "",
        ]

    if pngs:
        lines += ["## Figures", ""]
        for title, path in pngs:
            lines += [f"### {title}", "", f"![{title}]({path.name})", ""]
    lines += [
        "Files: summary.csv, classwise_tests.csv, significant_classes.csv, "
        "disagreement_*.csv in this folder.",
        "",
    ]
    return "\n".join(lines)


def _count(values: pd.Series) -> str:
    return "n/a" if values.empty or values.isna().all() else str(int(values.iloc[0]))
