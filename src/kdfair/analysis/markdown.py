"""report.md's text: the claims first, then the paper's tables with intervals, the comparison with
the paper and the figures. Pure formatting of tables the analysis already computed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdfair.analysis.load import COLLAPSE_MARGIN, Sweep, label, variant_of
from kdfair.metrics.catalog import scale as metric_scale

LABEL_LINE = "test labels (a perfect classifier)"


def table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def cell(row: pd.Series, metric: str, *, digits: int = 2) -> str:
    """'mean ± std [ci_low, ci_high]' of one summary.csv row ('n/a' when undefined), in % where
    the metric is a fraction (kdfair.metrics.catalog)."""
    scale = metric_scale(metric)
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    if pd.isna(mean):
        return "n/a"
    text = f"{mean * scale:.{digits}f}"
    if pd.notna(std):
        text += f" ± {std * scale:.{digits}f}"
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if pd.notna(low) and pd.notna(high):
        text += f" [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"
    return text


def population_label(row) -> str:
    return label(row["role"], row["temperature"], variant_of(row.get("variant")))


def _model(row) -> str:
    return population_label(row) + collapse_mark(row)


def collapse_mark(row) -> str:
    n = int(row["n_collapsed"])
    return f" † ({n}/{int(row['n'])} collapsed)" if n else ""


def learning_rates(sweep: Sweep) -> str:
    """Each population group's learning rate, as its recipe names it: one shared by every role
    is the paper's protocol; nds_optim's and distill.lr's (per T) are chosen per population,
    and each method or control (`distilled:<variant>`) has its own."""
    parts = []
    names = {"teacher": "teacher", "student": "NDS", "distilled": "DS"}
    order = list(names)
    for group in sorted(sweep.recipes, key=lambda g: (order.index(g.partition(":")[0]), g)):
        role, _, variant = group.partition(":")
        name = names[role] + (f" {variant}" if variant else "")
        settings = sweep.recipes[group][1]
        lr = next(
            (
                f"{settings[key]} ({key})" if key != f"{SLOT[role]}.optimizer.lr" else settings[key]
                for key in ("distill.lr", "nds_optim.optimizer.lr", f"{SLOT[role]}.optimizer.lr")
                if key in settings
            ),
            "not recorded",
        )
        parts.append(f"{name} {lr}")
    return "Learning rates: " + "; ".join(parts) + "."


SLOT = {"teacher": "teacher_optim", "student": "student_optim", "distilled": "student_optim"}


def header(sweep: Sweep, experiment: str) -> list[str]:
    results = sweep.results
    seeds = results.groupby("label", sort=False)["seed"].nunique()
    recipe = ", ".join(f"{role} {h}" for role, (h, _) in sweep.recipes.items())
    lines = [
        f"# kdfair analysis: {experiment}",
        "",
        f"{len(results)} models from `{sweep.directory / 'results.csv'}`; {sweep.num_classes} "
        f"classes; seeds per model: {', '.join(f'{k} {v}' for k, v in seeds.items())}. "
        f"Recipes: {recipe}; eval {sweep.eval}. Values are mean ± std over seeds [95% interval "
        "of the mean: t over seeds, widened by the test-split noise all seeds share; a single "
        "model's: bootstrap over test examples], in % unless noted.",
        "",
        learning_rates(sweep),
        "",
    ]
    lines += [f"- {note}" for note in sweep.notes] + ([""] if sweep.notes else [])
    collapsed = results[results["collapsed"]]
    if len(collapsed):
        lines += [
            f"**† Collapsed models.** {len(collapsed)} model(s) scored near chance (accuracy below "
            f"chance + {COLLAPSE_MARGIN:.0%} of the way to perfect): "
            + ", ".join(
                f"{r.label} seed {r.seed} ({r.accuracy:.1%})" for r in collapsed.itertuples()
            )
            + ". A collapsed model predicts (almost) one class, so its DPD and EOD look excellent "
            "and mean nothing; its rows are marked †, its points with a red x, and the claims "
            "leave it out.",
            "",
        ]
    return lines


def claims_section(claims: pd.DataFrame, alpha: float, correction: str = "holm") -> list[str]:
    shown = claims.assign(
        estimate=[f"{v:.4g}" if pd.notna(v) else "" for v in claims["estimate"]],
        p_value=[f"{v:.3g}" if pd.notna(v) else "" for v in claims["p_value"]],
        p_adjusted=[f"{v:.3g}" if pd.notna(v) else "" for v in claims["p_adjusted"]],
    )
    counts = claims["verdict"].value_counts()
    testable = int(claims["p_value"].notna().sum())
    family = (
        "no correction (p_adjusted = p_value)"
        if correction == "none"
        else f"{'Holm' if correction == 'holm' else 'Benjamini-Hochberg'} over the "
        f"{testable} testable rows of this table"
    )
    return [
        "## Claims",
        "",
        "The paper's claims tested on this sweep: "
        + ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
        + f". *held*: the claimed effect at adjusted p ≤ {alpha:g}; *reversed*: the opposite "
        f"effect at adjusted p ≤ {alpha:g}; *not held*: neither; *not testable*: why is in "
        f"`statistic`. Correction: {family}. The unit of replication is the seed: paired "
        "t-tests over seeds between populations (widened by the shared test split's bootstrap "
        "variance), one-sample t-tests of per-seed slopes on ln T for trends, of per-seed ln T "
        "coefficients (excess ~ ln T + accuracy) for `fairness_changes_beyond_accuracy`; 'at "
        "every T' claims take the largest per-T p. `_excess` rows test the disparity beyond its "
        "permutation floor. With few seeds and a table of this size, only large effects can be "
        "held. Estimates are in the metric's units (fractions), or a slope per unit ln T, or rho.",
        "",
        table(shown),
        "",
    ]


def accuracy_section(summary, counts, notes, *, normalisation, threshold, correction) -> list[str]:
    rows = []
    for _, row in summary.iterrows():
        entry = {
            "model": population_label(row) + collapse_mark(row),
            "accuracy": cell(row, "accuracy"),
        }
        match = counts[np.isclose(counts["temperature"], row["temperature"])]
        distilled = row["role"] == "distilled" and not variant_of(row.get("variant"))  # the DS's
        entry["#SC"] = _count(match["n_sc"]) if distilled else ""
        entry["#TC"] = _count(match["n_tc"]) if distilled else ""
        rows.append(entry)
    return [
        "## Accuracy and significantly affected classes (Table 1)",
        "",
        f"#SC: classes whose normalised accuracy ({normalisation}) differs significantly between "
        f"NDS and DS (Welch t-test over seeds, p ≤ {threshold}, correction: {correction}); "
        "#TC: the same between teacher and DS.",
        "",
        table(pd.DataFrame(rows)),
        "",
        *[f"- {note}" for note in notes],
        *([""] if notes else []),
    ]


def group_section(summary, attributes, labels: pd.DataFrame | None) -> list[str]:
    rows = []
    for _, row in summary.iterrows():
        entry = {
            "model": population_label(row) + collapse_mark(row),
            "accuracy": cell(row, "accuracy"),
        }
        for attr in attributes:
            for metric in (f"eod_{attr}", f"dpd_{attr}"):
                name = metric[:3].upper() + f" ({attr})"
                entry[name] = cell(row, metric)
                if f"{metric}_floor_mean" in row:
                    entry[f"{name} floor"] = cell(row, f"{metric}_floor")
                    entry[f"{name} excess"] = cell(row, f"{metric}_excess")
        rows.append(entry)
    lines = [
        "## Group fairness (Table 2)",
        "",
        "DPD and EOD in %, lower is fairer; multiclass tasks one-vs-rest, averaged over "
        "classes (Algorithm 1). n/a: undefined on this test split (see the train log). "
        "*floor*: the metric's mean when the attribute is shuffled within each true class (200 "
        "shuffles; what errors blind to the attribute score on this test split); *excess* = "
        "metric - floor, the disparity beyond sampling noise (floors.csv has each model's, with "
        "its permutation p-value). The floor rises as accuracy falls, so a change of the metric "
        "with T is distillation's only as far as the excess moves.",
        "",
    ]
    if labels is not None and len(labels):
        value = labels.set_index("metric")["value"]
        label_row = dict.fromkeys(rows[0], "")  # no floor or excess: nothing was predicted
        label_row.update({"model": LABEL_LINE, "accuracy": "100.00"})
        for attr in attributes:
            label_row[f"EOD ({attr})"] = "0.00"
            label_row[f"DPD ({attr})"] = (
                f"{value[f'dpd_{attr}'] * 100:.2f} [{value[f'dpd_{attr}_ci_low'] * 100:.2f}, "
                f"{value[f'dpd_{attr}_ci_high'] * 100:.2f}]"
            )
        rows.append(label_row)
        lines += [
            "The last row is the test split itself: a perfect classifier's DPD is the difference "
            "between groups in how often each class occurs, so a model's DPD is read against "
            "that line and its interval, not against 0 (label_disparity.csv).",
            "",
        ]
    return lines + [table(pd.DataFrame(rows)), ""]


def individual_section(summary) -> list[str]:
    rows = [
        {
            "model": population_label(row) + collapse_mark(row),
            "individual fairness": cell(row, "individual_fairness", digits=4),
            "kNN consistency": cell(row, "consistency", digits=4),
        }
        for _, row in summary.iterrows()
    ]
    return [
        "## Individual fairness (Table 4)",
        "",
        "Lipschitz estimate: mean over neighbour pairs of the L1 distance between softmax "
        "outputs over the pair's distance (lower is fairer); kNN consistency (higher is "
        "fairer). Not in %; intervals over seeds only.",
        "",
        table(pd.DataFrame(rows)),
        "",
    ]


def paper_section(comparison: pd.DataFrame) -> list[str]:
    if comparison.empty:
        return []
    group = comparison[comparison["metric"] != "individual_fairness"]
    read_off = group["source"].str.startswith("fig")  # fig4, fig5, fig8: read off a plot
    shown = group.assign(
        ours=[
            f"{o:.2f} [{lo:.2f}, {hi:.2f}]" if pd.notna(lo) else f"{o:.4g}"
            for o, lo, hi in group[["ours", "ours_ci_low", "ours_ci_high"]].itertuples(index=False)
        ],
        paper=[
            ("≈" if r else "") + (f"{p:g}" if m in ("n_sc", "n_tc") else f"{p:.2f}")
            for p, m, r in zip(group["paper"], group["metric"], read_off, strict=True)
        ],
        difference=[f"{d:+.2f}" for d in group["difference"]],
        source=[
            f"Fig. {s[3:]} (read off)" if r else f"Table {s[5:]}"
            for s, r in zip(group["source"], read_off, strict=True)
        ],
    )[["model", "metric", "ours", "paper", "difference", "source"]]
    lines = [
        "## Compared with the paper",
        "",
        "The paper's numbers for this dataset and these architectures (paper_comparison.csv), "
        "in % except #SC/#TC. This sweep's training budget and test split may differ from the "
        "paper's: compare trends and gaps between roles first, absolute values second.",
        "",
    ]
    if read_off.any():
        lines += [
            "Values marked ≈ are not printed in the paper: they were read off its figures "
            "(source `Fig.`), so they are approximate (about ±0.01 on Fig. 4 and 5; ±1 class "
            "and ±0.02 accuracy points on Fig. 8) and have no std. The others are the paper's "
            "tables (mean over 5 seeds).",
            "",
        ]
    lines += [table(shown), ""]
    individual = comparison[comparison["metric"] == "individual_fairness"].set_index("model")
    if "teacher" in individual.index and len(individual) > 1:
        ours_t, paper_t = individual.loc["teacher", "ours"], individual.loc["teacher", "paper"]
        ratios = pd.DataFrame(
            {
                "model": individual.index,
                "ours / our teacher": [f"{v / ours_t:.2f}" for v in individual["ours"]],
                "paper / paper's teacher": [f"{v / paper_t:.2f}" for v in individual["paper"]],
            }
        )
        lines += [
            "Individual fairness depends on the embedding space, the pairs and the distance "
            "(the paper does not give them; kdfair's are in eval.individual), so raw values are "
            "not comparable across setups: the table compares each model's value relative to "
            "its own teacher, and the trend over T.",
            "",
            table(ratios),
            "",
            *_trend(individual),
        ]
    return lines


def _trend(individual: pd.DataFrame) -> list[str]:
    """One sentence: how our and the paper's DS individual fairness move from the lowest to the
    highest temperature both have."""
    ds = [m for m in individual.index if m.startswith("DS T=")]
    if len(ds) < 2:
        return []
    ds.sort(key=lambda m: float(m[5:]))
    first, last = individual.loc[ds[0]], individual.loc[ds[-1]]

    def move(a, b) -> str:
        return f"{'falls' if b < a else 'rises' if b > a else 'stays'} from {a:.4g} to {b:.4g}"

    return [
        f"From {ds[0]} to {ds[-1]} ours {move(first['ours'], last['ours'])}; the paper's "
        f"{move(first['paper'], last['paper'])}.",
        "",
    ]


def figures_section(pngs) -> list[str]:
    if not pngs:
        return []
    lines = ["## Figures", ""]
    for title, path in pngs:
        lines += [f"### {title}", "", f"![{title}]({path.name})", ""]
    return lines


def _count(values: pd.Series) -> str:
    return "n/a" if values.empty or values.isna().all() else str(int(values.iloc[0]))
