"""The paper's figures as PNGs (matplotlib's object API: no display, no global state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kdfair.analysis.load import Sweep, variant_of
from kdfair.metrics.catalog import scale as metric_scale

REFERENCE_STYLE = {"teacher": ("tab:green", "teacher"), "student": ("tab:gray", "NDS")}
LABEL_STYLE = ("black", "test labels")


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _band(ax, mean, low, high, color, label) -> None:
    """A horizontal reference line at `mean` with its interval as a band."""
    ax.axhline(mean, color=color, linestyle="--", label=f"{label} ({mean:.4g})")
    if np.isfinite(low) and np.isfinite(high):
        ax.axhspan(low, high, color=color, alpha=0.12)


def metric_vs_temperature(
    summary: pd.DataFrame,
    metrics: list[str],
    titles: list[str],
    path: Path,
    *,
    label_lines: dict[str, tuple[float, float, float]] | None = None,
) -> Path:
    """One panel per metric: the DS mean against T with its 95% interval (summary.csv's
    <metric>_mean, _ci_low, _ci_high), teacher and NDS as reference lines with interval bands,
    and, where given, the test labels' own value (`label_lines`: metric -> value, low, high).
    Where summary.csv has the metric's permutation floor (<metric>_floor_mean), the DS floor is
    drawn as a dotted line over a shaded band down to 0: the part of the metric that sampling
    alone gives (kdfair.analysis.floors).

    Temperatures where some seed collapsed (accuracy near chance) are marked with a red x.
    Other methods and controls (summary's `variant`) are their own lines, without bands.
    """
    fig = Figure(figsize=(4.2 * len(metrics), 3.4))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    variant = summary["variant"].map(variant_of) if "variant" in summary else ""
    is_distilled = summary.role == "distilled"
    distilled = summary[is_distilled & (variant == "")].sort_values("temperature")
    others = summary[is_distilled & (variant != "")].assign(variant=variant)
    for ax, metric, title in zip(axes, metrics, titles, strict=True):
        scale = metric_scale(metric)  # % for fractions (kdfair.metrics.catalog)
        for role, (color, label) in REFERENCE_STYLE.items():
            rows = summary[summary.role == role]
            if len(rows) and pd.notna(rows[f"{metric}_mean"].iloc[0]):
                values = rows[[f"{metric}_{s}" for s in ("mean", "ci_low", "ci_high")]].iloc[0]
                _band(ax, *(values.to_numpy(float) * scale), color, label)
        if label_lines and metric in label_lines:
            _band(ax, *(np.asarray(label_lines[metric]) * scale), *LABEL_STYLE)
        t = distilled["temperature"].to_numpy(float)
        mean = distilled[f"{metric}_mean"].to_numpy(float) * scale
        ax.plot(t, mean, "o-", color="tab:blue", label="DS")
        ax.fill_between(
            t,
            distilled[f"{metric}_ci_low"].to_numpy(float) * scale,
            distilled[f"{metric}_ci_high"].to_numpy(float) * scale,
            color="tab:blue",
            alpha=0.2,
            label="95% interval",
        )
        if f"{metric}_floor_mean" in distilled:  # what attribute-blind errors would score
            floor = distilled[f"{metric}_floor_mean"].to_numpy(float) * scale
            ax.plot(t, floor, ":", color="tab:purple", label="DS floor (permuted attribute)")
            ax.fill_between(t, 0, floor, color="tab:purple", alpha=0.08)
        for (name, rows), marker in zip(others.groupby("variant"), "sD^vP*", strict=False):
            rows = rows.sort_values("temperature")
            values = rows[f"{metric}_mean"].to_numpy(float) * scale
            ax.plot(rows["temperature"], values, f"{marker}--", label=f"DS {name}")
        bad = (distilled["n_collapsed"] > 0).to_numpy()
        if bad.any():
            ax.plot(
                t[bad], mean[bad], "x", color="red", markersize=10, mew=2, label="collapsed seed(s)"
            )
        ax.set_xlabel("temperature T")
        ax.set_ylabel(f"{title} (%)" if scale == 100 else title)
        ax.set_title(title)
        ax.legend(fontsize=7)
    return _save(fig, path)


def significant_classes_vs_temperature(counts: pd.DataFrame, sweep: Sweep, path: Path) -> Path:
    """Fig. 3: #SC and #TC against T, with the DS accuracy on a second axis."""
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    ax.plot(counts["temperature"], counts["n_sc"], "o-", color="tab:red", label="#SC (NDS vs DS)")
    ax.plot(
        counts["temperature"], counts["n_tc"], "s-", color="tab:purple", label="#TC (teacher vs DS)"
    )
    ax.set_xlabel("temperature T")
    ax.set_ylabel(f"significant classes (of {sweep.num_classes})")
    twin = ax.twinx()
    distilled = sweep.population("distilled")
    accuracy = distilled.groupby("temperature")["accuracy"].mean() * 100
    twin.plot(accuracy.index, accuracy.values, "^:", color="tab:blue", label="DS accuracy")
    twin.set_ylabel("DS test accuracy (%)")
    lines = ax.get_legend_handles_labels()
    twin_lines = twin.get_legend_handles_labels()
    ax.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], fontsize=7)
    return _save(fig, path)


def per_class_shift(tests: pd.DataFrame, temperature: float, comparison: str, path: Path) -> Path:
    """Fig. 1: normalised class accuracy change (DS - reference) per class at one T, sorted,
    significant classes in red."""
    rows = tests[(tests.comparison == comparison) & np.isclose(tests.temperature, temperature)]
    rows = rows.assign(shift=rows["mean_b"] - rows["mean_a"]).sort_values("shift")
    fig = Figure(figsize=(max(5.0, min(14.0, 0.35 * len(rows))), 3.6))
    ax = fig.subplots()
    colors = np.where(rows["significant"], "tab:red", "tab:gray")
    ax.bar(np.arange(len(rows)), rows["shift"], color=colors)
    if len(rows) <= 40:
        ax.set_xticks(np.arange(len(rows)), rows["class_name"], rotation=60, fontsize=7, ha="right")
    else:
        ax.set_xlabel("classes, sorted by change")
    ax.axhline(0, color="black", linewidth=0.8)
    reference = comparison.split("_vs_")[0].replace("student", "NDS")
    ax.set_ylabel(f"normalised class accuracy\nDS - {reference}")
    ax.set_title(f"T={temperature:g}: {int(rows['significant'].sum())} significant classes (red)")
    return _save(fig, path)


def disagreement_heatmap(matrix: pd.DataFrame, title: str, path: Path) -> Path:
    fig = Figure(figsize=(5.0, 4.4))
    ax = fig.subplots()
    image = ax.imshow(matrix.to_numpy(), cmap="viridis")
    fig.colorbar(image, ax=ax, label="test samples")
    if len(matrix) <= 20:
        ax.set_xticks(range(len(matrix)), matrix.columns, rotation=60, fontsize=7, ha="right")
        ax.set_yticks(range(len(matrix)), matrix.index, fontsize=7)
    ax.set_xlabel(matrix.columns.name)
    ax.set_ylabel(matrix.index.name)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
