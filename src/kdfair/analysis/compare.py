"""`kdfair compare SWEEP ...`: several sweeps side by side in one report.

A sweep is an experiment folder (`outputs/trifeature`) or one recipe of a folder that holds
several (`outputs/trifeature@2e6f60b4`, the hash of `kdfair analyze`'s --recipe: a distilled
recipe brings the teacher and NDS recipes that match it). For each sweep the report gives

- the settings that differ from the other sweeps, read from the recipes and eval settings stored
  beside results.csv (recipes.json), never typed by hand;
- accuracy and every fairness metric per population (teacher, NDS, DS at each T, and each other
  method or control at each T: its own lines, never pooled with the DS) as mean over seeds with
  its 95% interval (kdfair.analysis.bootstrap), and one figure per metric with a line per sweep;
- the claims of kdfair.analysis.claims, one verdict column per sweep.

Written to `out`: compare.md, settings.csv, metrics.csv (long: sweep, role, variant, temperature,
metric, mean, std, ci_low, ci_high, n), claims.csv (long: sweep plus claims.csv's columns) and
compare_<metric>.png.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from kdfair.analysis import markdown
from kdfair.analysis.bootstrap import RESAMPLES
from kdfair.analysis.engine import analyse
from kdfair.analysis.load import Sweep, load_sweep, variant_of
from kdfair.atomic import atomic_path, write_text
from kdfair.errors import KdfairError
from kdfair.metrics.catalog import metrics_in, scale

log = logging.getLogger(__name__)

SEPARATOR = "@"  # DIR@RECIPE
ROLES = ("teacher", "distilled", "student")  # whose recipe settings are compared


@dataclass
class Compared:
    """One sweep of a comparison: its name in the report, the sweep and its summary table."""

    name: str
    sweep: Sweep
    summary: pd.DataFrame
    claims: pd.DataFrame


def parse(argument: str) -> tuple[Path, str | None]:
    """'DIR' or 'DIR@RECIPE' -> (folder, recipe hash or None)."""
    folder, _, recipe = argument.rpartition(SEPARATOR)
    if not folder or Path(argument).exists() or "/" in recipe:
        return Path(argument), None
    return Path(folder), recipe


def settings_of(sweep: Sweep) -> dict:
    """The flat settings of a sweep: each role's recipe (teacher.*, student.*, distill.*,
    dataset.*) and its eval settings, plus the seeds and temperatures it holds."""
    settings = {}
    for role in ROLES:
        if role in sweep.recipes:
            settings.update(sweep.recipes[role][1])
    settings.update(sweep.eval_settings)
    settings["seeds"] = ",".join(str(s) for s in sorted(sweep.results["seed"].unique()))
    settings["distill.temperature"] = ",".join(f"{t:g}" for t in sweep.temperatures)
    return settings


def differing_settings(named: dict[str, dict]) -> pd.DataFrame:
    """A table (setting x sweep) of the settings whose values are not the same in every sweep
    (a setting one sweep lacks counts as differing, shown as '(unset)')."""
    keys = sorted(set().union(*named.values()))
    missing = object()
    rows = []
    for key in keys:
        values = [s.get(key, missing) for s in named.values()]
        if all(v is not missing for v in values) and all(v == values[0] for v in values):
            continue
        shown = ["(unset)" if v is missing else str(v) for v in values]
        rows.append({"setting": key, **dict(zip(named, shown, strict=True))})
    return pd.DataFrame(rows, columns=["setting", *named])


def _names(arguments: list[str], parsed: list[tuple[Path, str | None]]) -> list[str]:
    """Short unique names: the folder name, with @recipe where one was given."""
    names = [folder.name + (f"{SEPARATOR}{recipe}" if recipe else "") for folder, recipe in parsed]
    if len(set(names)) < len(names):
        names = list(arguments)
    if len(set(names)) < len(names):
        raise KdfairError(f"The same sweep is named twice: {arguments}. Name each sweep once.")
    return names


def _load(name: str, folder: Path, recipe: str | None, *, resamples, seed, alpha) -> Compared:
    sweep = load_sweep(folder, recipes=[recipe] if recipe else None)
    done = analyse(sweep, threshold=alpha, resamples=resamples, seed=seed)
    return Compared(name, done.sweep, done.summary, done.claims)


def _long_metrics(compared: list[Compared], metrics: list[str]) -> pd.DataFrame:
    rows = []
    for c in compared:
        for _, row in c.summary.iterrows():
            for metric in metrics:
                if f"{metric}_mean" not in row:
                    continue
                rows.append(
                    {
                        "sweep": c.name,
                        "role": row["role"],
                        "variant": variant_of(row.get("variant")),
                        "temperature": row["temperature"],
                        "metric": metric,
                        "n": int(row["n"]),
                        **{s: row[f"{metric}_{s}"] for s in ("mean", "std", "ci_low", "ci_high")},
                    }
                )
    return pd.DataFrame(rows)


def _claims_table(compared: list[Compared]) -> pd.DataFrame:
    """claim x sweep: 'verdict (estimate, p, adjusted p)' per sweep, claims in first-seen
    order (each sweep's p-values are adjusted within its own claims table)."""
    keys: list[tuple[str, str]] = []
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for c in compared:
        for _, row in c.claims.iterrows():
            key = (row["claim"], row["metric"])
            if key not in cells:
                keys.append(key)
                cells[key] = {}
            text = row["verdict"]
            if pd.notna(row["p_value"]):
                text += f" ({row['estimate']:+.3g}, p={row['p_value']:.2g}, "
                text += f"adj. {row['p_adjusted']:.2g})"
            cells[key][c.name] = text
    rows = []
    for claim, metric in keys:
        verdicts = {c.name: cells[(claim, metric)].get(c.name, "-") for c in compared}
        rows.append({"claim": claim, "metric": metric, **verdicts})
    return pd.DataFrame(rows)


def _metric_table(compared: list[Compared], metric: str) -> pd.DataFrame:
    """population x sweep: 'mean [ci_low, ci_high]' (in % where the metric is a fraction)."""
    labels: list[str] = []
    cells: dict[str, dict[str, str]] = {}
    for c in compared:
        for _, row in c.summary.iterrows():
            if f"{metric}_mean" not in row:
                continue
            label = markdown.population_label(row)
            if label not in cells:
                labels.append(label)
                cells[label] = {}
            factor = scale(metric)
            mean, low, high = (row[f"{metric}_{s}"] * factor for s in ("mean", "ci_low", "ci_high"))
            text = "n/a" if pd.isna(mean) else f"{mean:.2f}"
            if pd.notna(low) and pd.notna(high):
                text += f" [{low:.2f}, {high:.2f}]"
            cells[label][c.name] = text + markdown.collapse_mark(row)
    return pd.DataFrame(
        [{"population": p, **{c.name: cells[p].get(c.name, "-") for c in compared}} for p in labels]
    )


def _figure(compared: list[Compared], metric: str, path: Path) -> Path:
    """The DS mean against T with its interval, one colour per sweep; that sweep's NDS as a
    dashed line of the same colour."""
    fig = Figure(figsize=(5.2, 3.6))
    ax = fig.subplots()
    factor = scale(metric)
    colours = [f"C{i}" for i in range(10)]
    for i, c in enumerate(compared):
        colour = colours[i % len(colours)]
        table = c.summary
        if f"{metric}_mean" not in table:
            continue
        table = table.assign(variant=table["variant"].map(variant_of) if "variant" in table else "")
        variant = table["variant"]
        ds = table[(table.role == "distilled") & (variant == "")].sort_values("temperature")
        for name, rows in table[(table.role == "distilled") & (variant != "")].groupby("variant"):
            rows = rows.sort_values("temperature")  # methods and controls: own, thinner lines
            values = rows[f"{metric}_mean"] * factor
            ax.plot(rows["temperature"], values, "s--", color=colour, ms=3, lw=0.8, alpha=0.7)
            ax.annotate(name, (rows["temperature"].iloc[-1], values.iloc[-1]), fontsize=6)
        t = ds["temperature"].to_numpy(float)
        ds = ds.assign(**{c: ds[c] * factor for c in ds if c.startswith(metric)})
        ax.plot(t, ds[f"{metric}_mean"], "o-", color=colour, ms=3, label=f"{c.name} DS")
        ax.fill_between(
            t, ds[f"{metric}_ci_low"], ds[f"{metric}_ci_high"], color=colour, alpha=0.15
        )
        if f"{metric}_floor_mean" in ds:
            ax.plot(t, ds[f"{metric}_floor_mean"], ":", color=colour, lw=1)
        nds = table[table.role == "student"]
        if len(nds) and pd.notna(nds[f"{metric}_mean"].iloc[0]):
            ax.axhline(nds[f"{metric}_mean"].iloc[0] * factor, color=colour, ls="--", lw=1)
    if any(c.summary["temperature"].max() > 10 for c in compared):
        ax.set_xscale("log")
    ax.set_xlabel("T (dashed: each sweep's NDS; dotted: its DS floor)")
    ax.set_ylabel(f"{metric} (%)" if factor == 100 else metric)
    ax.set_title(metric)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def compare(
    arguments: list[str],
    out: str | Path,
    *,
    threshold: float = 0.05,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Path:
    """Write the comparison of the sweeps named by `arguments` to `out`; return compare.md."""
    if len(arguments) < 2:
        raise KdfairError(
            "kdfair compare needs at least two sweeps (folders, or DIR@RECIPE for one recipe of a "
            "folder that holds several), e.g. `kdfair compare outputs/a outputs/b --out cmp`."
        )
    parsed = [parse(a) for a in arguments]
    names = _names(arguments, parsed)
    compared = [
        _load(name, folder, recipe, resamples=resamples, seed=seed, alpha=threshold)
        for name, (folder, recipe) in zip(names, parsed, strict=True)
    ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    settings = differing_settings({c.name: settings_of(c.sweep) for c in compared})
    metrics = list(dict.fromkeys(m for c in compared for m in metrics_in(c.sweep.metric_columns)))
    claims_wide = _claims_table(compared)
    _write_csv(settings, out / "settings.csv")
    _write_csv(_long_metrics(compared, metrics), out / "metrics.csv")
    _write_csv(
        pd.concat([c.claims.assign(sweep=c.name) for c in compared], ignore_index=True),
        out / "claims.csv",
    )

    lines = [
        "# kdfair compare",
        "",
        "Sweeps: "
        + "; ".join(
            f"**{c.name}** ({len(c.sweep.results)} models, `{c.sweep.directory}`)" for c in compared
        )
        + ". Values are means over seeds (in % for fractions) with [95% interval: t over seeds, "
        "widened by the test-split noise all seeds share]. Each DPD/EOD also appears as its "
        "permutation floor and its excess over the floor (kdfair.analysis.floors).",
        "",
        "## Settings that differ",
        "",
        markdown.table(settings) if len(settings) else "None: the sweeps share every setting.",
        "",
        f"## Claims (two-sided tests at alpha = {threshold:g})",
        "",
        "Seed-level tests (kdfair.analysis.claims); each verdict reads its p adjusted by Holm "
        "over the testable rows of its own sweep's table. Cells: verdict (estimate, p, adjusted "
        "p).",
        "",
        markdown.table(claims_wide),
        "",
    ]
    for metric in [m for m in metrics if not m.endswith("_floor")]:  # floors: dotted lines
        png = _figure(compared, metric, out / f"compare_{metric}.png")
        lines += [f"## {metric}", "", markdown.table(_metric_table(compared, metric)), ""]
        lines += [f"![{metric}]({png.name})", ""]
    path = out / "compare.md"
    write_text(path, "\n".join(lines))
    log.info("wrote %s", path)
    return path
