"""`kdfair analyze outputs/<experiment>`: every table, figure and report.md (docs/design.md, 4).

Writes to outputs/<experiment>/analysis/: claims.csv, summary.csv (with bootstrap intervals),
model_intervals.csv, floors.csv (each DPD/EOD's permutation floor, excess and p per model),
label_disparity.csv, paper_comparison.csv (where the paper has numbers for the sweep),
classwise_tests.csv, significant_classes.csv, disagreement_<a>_vs_<b>.csv, report.md
and PNG figures. Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from kdfair.analysis import figures, markdown
from kdfair.analysis.bootstrap import RESAMPLES, label_disparity
from kdfair.analysis.engine import Analysed, analyse
from kdfair.analysis.load import Sweep, load_sweep
from kdfair.analysis.paper import comparison as paper_comparison
from kdfair.analysis.tables import disagreements, model_intervals
from kdfair.atomic import atomic_path, write_text
from kdfair.metrics.catalog import floored

log = logging.getLogger(__name__)


def _write_csv(frame: pd.DataFrame, path: Path, **kwargs) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return path


def analyze(
    directory: str | Path,
    *,
    normalisation: str = "ratio",
    threshold: float = 0.05,
    correction: str = "none",
    claims_correction: str = "holm",
    recipes: list[str] | None = None,
    evaluation: str | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Path:
    """Write the analysis of one experiment folder; return the path of report.md.

    `recipes`/`evaluation` select the rows (kdfair.analysis.load.load_sweep); `resamples` and
    `seed` drive the bootstrap intervals and permutation floors; `correction` is the class-wise
    tests' correction, `claims_correction` the claims table's (kdfair.analysis.engine).
    """
    sweep = load_sweep(directory, recipes=recipes, evaluation=evaluation)
    out = sweep.directory / "analysis"
    out.mkdir(exist_ok=True)
    done = analyse(
        sweep,
        normalisation=normalisation,
        threshold=threshold,
        correction=correction,
        claims_correction=claims_correction,
        resamples=resamples,
        seed=seed,
    )
    labels, matrices, compared = _write_tables(sweep, done, out, resamples=resamples, seed=seed)
    pngs = _figures(sweep, done.summary, labels, done.tests, done.counts, matrices, out)
    lines = markdown.header(sweep, str(sweep.results["experiment"].iloc[0]))
    lines += markdown.claims_section(done.claims, threshold, claims_correction)
    lines += markdown.accuracy_section(
        done.summary,
        done.counts,
        done.notes,
        normalisation=normalisation,
        threshold=threshold,
        correction=correction,
    )
    if sweep.attributes:
        lines += markdown.group_section(done.summary, sweep.attributes, labels)
    if "individual_fairness" in sweep.results:
        lines += markdown.individual_section(done.summary)
    lines += markdown.paper_section(compared)
    lines += markdown.figures_section(pngs)
    lines += [
        "Files: claims.csv, summary.csv, model_intervals.csv, floors.csv, label_disparity.csv, "
        "paper_comparison.csv, classwise_tests.csv, significant_classes.csv, disagreement_*.csv "
        "in this folder (those that apply to this sweep).",
        "",
    ]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    log.info("wrote %s", path)
    return path


def _write_tables(
    sweep: Sweep, done: Analysed, out: Path, *, resamples: int, seed: int
) -> tuple[pd.DataFrame | None, dict[str, pd.DataFrame], pd.DataFrame]:
    """Every CSV of the analysis (those that apply to the sweep); returns what the report and
    its figures read besides `done`: the label disparity (None without attributes), the
    disagreement matrices and the comparison with the paper."""
    _write_csv(done.summary, out / "summary.csv", index=False)
    _write_csv(model_intervals(sweep, done.replicates), out / "model_intervals.csv", index=False)
    if floored(sweep.results.columns):
        _write_csv(done.floors, out / "floors.csv", index=False)
    labels = None
    if sweep.attributes:
        first = sweep.predictions(sweep.results.iloc[0])
        labels = label_disparity(first, sweep.num_classes, resamples=resamples, seed=seed)
        _write_csv(labels, out / "label_disparity.csv", index=False)
    _write_csv(done.tests, out / "classwise_tests.csv", index=False)
    _write_csv(done.counts, out / "significant_classes.csv", index=False)
    matrices = disagreements(sweep)
    for name, matrix in matrices.items():
        _write_csv(matrix, out / f"disagreement_{name}.csv")
    _write_csv(done.claims, out / "claims.csv", index=False)
    compared = paper_comparison(sweep, done.summary, done.counts)
    if len(compared):
        _write_csv(compared, out / "paper_comparison.csv", index=False)
    return labels, matrices, compared


def _figures(
    sweep: Sweep, summary_table, labels, tests, counts, matrices, out: Path
) -> list[tuple[str, Path]]:
    """The report's figures as (title, PNG), in the report's order: metrics against T, then
    class-wise changes and disagreement."""
    pngs = _temperature_figures(sweep, summary_table, labels, out) if sweep.temperatures else []
    return pngs + _class_figures(sweep, tests, counts, matrices, out)


def _temperature_figures(sweep: Sweep, summary_table, labels, out: Path) -> list[tuple[str, Path]]:
    """Accuracy, group fairness (with the labels' own disparity as lines) and individual
    fairness against the temperature."""
    label_lines = {}
    if labels is not None:
        value = labels.set_index("metric")["value"]
        for attr in sweep.attributes:
            m = f"dpd_{attr}"
            label_lines[m] = (value[m], value[f"{m}_ci_low"], value[f"{m}_ci_high"])
    pngs = [
        (
            "Accuracy against temperature",
            figures.metric_vs_temperature(
                summary_table, ["accuracy"], ["accuracy"], out / "accuracy_vs_temperature.png"
            ),
        )
    ]
    for attr in sweep.attributes:
        pngs.append(
            (
                f"Group fairness w.r.t. {attr} (Fig. 4)",
                figures.metric_vs_temperature(
                    summary_table,
                    [f"eod_{attr}", f"dpd_{attr}"],
                    [f"EOD ({attr})", f"DPD ({attr})"],
                    out / f"group_fairness_{attr}.png",
                    label_lines=label_lines,
                ),
            )
        )
    if "individual_fairness" in sweep.results:
        pngs.append(
            (
                "Individual fairness against temperature (Table 4)",
                figures.metric_vs_temperature(
                    summary_table,
                    ["individual_fairness", "consistency"],
                    ["individual fairness (lower is fairer)", "kNN consistency"],
                    out / "individual_fairness.png",
                ),
            )
        )
    return pngs


def _class_figures(sweep: Sweep, tests, counts, matrices, out: Path) -> list[tuple[str, Path]]:
    """#SC/#TC against T, the per-class accuracy change at the T with most significant classes
    and the NDS-vs-DS disagreement at the largest T."""
    pngs = []
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
    return pngs
