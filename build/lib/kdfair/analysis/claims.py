"""The paper's claims, each tested on a sweep and given a verdict.

Every claim is a directional statement. With a two-sided test at level alpha (the `threshold`,
0.05 by default) it is

    held        the effect goes the claimed way and p <= alpha
    reversed    the effect goes the other way and p <= alpha
    not held    neither: the data do not show the claimed effect
    not testable  the sweep lacks what the test needs (the reason is in `statistic`)

Tests: Welch's t-test over seeds (scipy.stats.ttest_ind, equal_var=False) between two
populations; Spearman's rank correlation (scipy.stats.spearmanr) between T and a metric over all
distilled *models* (not population means). A claim about every temperature ("DS fairer than NDS
at every T <= 10") is an intersection of per-T claims: it is held only when each per-T test is,
so its p-value is the largest per-T p (the intersection-union test). Collapsed models (accuracy
near chance, kdfair.analysis.load) are left out: their fairness numbers mean nothing. Each
population needs at least MIN_SEEDS models.

Columns: claim, metric (the results.csv column, or n_sc/n_tc), verdict, statistic (the test and
its value, or why it is not testable), estimate (a difference of means in the metric's units, or
rho), p_value, n_models.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from kdfair.analysis.load import Sweep

MIN_SEEDS = 3
PAPER_T_MAX = 10  # the paper's main range is T = 1..10; 20, 30, 40 test the reversal
COLUMNS = ["claim", "metric", "verdict", "statistic", "estimate", "p_value", "n_models"]
HELD, NOT_HELD, REVERSED, NOT_TESTABLE = "held", "not held", "reversed", "not testable"


def _row(claim, metric, verdict, statistic, estimate=np.nan, p_value=np.nan, n_models=0) -> dict:
    values = (claim, metric, verdict, statistic, estimate, p_value, n_models)
    return dict(zip(COLUMNS, values, strict=True))


def _untestable(claim: str, metric: str, reason: str, n_models: int = 0) -> dict:
    return _row(claim, metric, NOT_TESTABLE, reason, n_models=n_models)


def _verdict(effect: float, p: float, alpha: float) -> str:
    """`effect` > 0 means the claimed direction."""
    if not np.isfinite(p) or p > alpha or effect == 0:
        return NOT_HELD
    return HELD if effect > 0 else REVERSED


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(t, p) of Welch's test; with no variance on either side, p is 0 for different means."""
    if np.var(a) == 0 and np.var(b) == 0:
        return (np.inf if a.mean() != b.mean() else 0.0), float(a.mean() == b.mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if np.all(y == y[0]) or np.all(x == x[0]):
        return 0.0, 1.0  # no rank order at all: no correlation
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


class _Claims:
    def __init__(self, sweep: Sweep, alpha: float):
        self.alpha = alpha
        usable = sweep.results[~sweep.results["collapsed"]]
        self.teacher = usable[usable.role == "teacher"]
        self.student = usable[usable.role == "student"]
        self.distilled = usable[usable.role == "distilled"]
        self.temperatures = sorted(self.distilled["temperature"].unique().tolist())
        self.main = [t for t in self.temperatures if t <= PAPER_T_MAX]

    def values(self, rows: pd.DataFrame, metric: str) -> np.ndarray:
        return rows[metric].dropna().to_numpy(float)

    def at(self, temperature: float) -> pd.DataFrame:
        return self.distilled[np.isclose(self.distilled["temperature"], temperature)]

    def too_few(self, populations: dict[str, np.ndarray]) -> str | None:
        small = {name: len(v) for name, v in populations.items() if len(v) < MIN_SEEDS}
        if not small:
            return None
        listing = ", ".join(f"{name}: {n}" for name, n in small.items())
        return f"fewer than {MIN_SEEDS} seeds per population ({listing})"

    def compare(self, claim, metric, a, b, *, higher_is_claimed: bool, names: tuple[str, str]):
        """Welch test of population a against b; the claim is mean(a) > mean(b) (or <)."""
        reason = self.too_few({names[0]: a, names[1]: b})
        if reason:
            return _untestable(claim, metric, reason, len(a) + len(b))
        t, p = _welch(a, b)
        difference = float(a.mean() - b.mean())
        effect = difference if higher_is_claimed else -difference
        statistic = f"Welch t = {t:.3g} ({names[0]} - {names[1]})"
        return _row(
            claim,
            metric,
            _verdict(effect, p, self.alpha),
            statistic,
            difference,
            p,
            len(a) + len(b),
        )

    def every_temperature(
        self, claim, metric, reference, temperatures, *, ds_higher: bool, name: str
    ) -> dict:
        """The intersection claim 'DS differs from `reference` in the claimed way at every T'."""
        if not temperatures:
            return _untestable(claim, metric, "no distilled students at the needed temperatures")
        ref = self.values(reference, metric)
        tests = []
        for t in temperatures:
            ds = self.values(self.at(t), metric)
            reason = self.too_few({name: ref, f"DS T={t:g}": ds})
            if reason:
                return _untestable(claim, metric, reason)
            tests.append((t, float(ds.mean() - ref.mean()), _welch(ds, ref)[1], len(ds)))
        sign = 1 if ds_higher else -1
        claimed = [d * sign > 0 for _, d, _, _ in tests]
        p_max = max(p for *_, p, _ in tests)
        worst = min(tests, key=lambda x: x[1] * sign)[1]  # least favourable difference
        if all(claimed) and p_max <= self.alpha:
            verdict = HELD
        elif not any(claimed) and p_max <= self.alpha:
            verdict = REVERSED
        else:
            verdict = NOT_HELD
        significant = sum(p <= self.alpha for *_, p, _ in tests)
        statistic = (
            f"DS {'above' if ds_higher else 'below'} {name} at {sum(claimed)}/{len(tests)} T "
            f"(T = {', '.join(f'{t:g}' for t, *_ in tests)}); Welch p <= {self.alpha:g} at "
            f"{significant}/{len(tests)}; p = the largest"
        )
        n = len(ref) + sum(n for *_, n in tests)
        return _row(claim, metric, verdict, statistic, worst, p_max, n)

    def trend(self, claim, metric, rows: pd.DataFrame, *, falls: bool, temperatures) -> dict:
        """Spearman correlation between T and `metric` over the models of `rows`."""
        rows = rows.dropna(subset=[metric])
        if len(temperatures) < 3:
            return _untestable(
                claim,
                metric,
                f"needs 3 or more temperatures in 1..{PAPER_T_MAX}; ran {len(temperatures)}",
                len(rows),
            )
        per_t = {f"DS T={t:g}": self.values(self.at(t), metric) for t in temperatures}
        reason = self.too_few(per_t)
        if reason:
            return _untestable(claim, metric, reason, len(rows))
        rho, p = _spearman(rows["temperature"].to_numpy(float), rows[metric].to_numpy(float))
        statistic = f"Spearman rho over T = {temperatures[0]:g}..{temperatures[-1]:g} (models)"
        effect = -rho if falls else rho
        return _row(claim, metric, _verdict(effect, p, self.alpha), statistic, rho, p, len(rows))


def fairness_columns(sweep: Sweep) -> list[str]:
    columns = [c for c in sweep.results.columns if c.startswith(("dpd_", "eod_"))]
    return columns + (["individual_fairness"] if "individual_fairness" in sweep.results else [])


def claims(
    sweep: Sweep, counts: pd.DataFrame | None = None, *, alpha: float = 0.05
) -> pd.DataFrame:
    """Every claim the sweep's data allow, with its verdict (see the module docstring).
    `counts` is significant_classes.csv's table (for the #SC/#TC claims)."""
    c = _Claims(sweep, alpha)
    rows = [
        c.compare(
            "teacher_more_accurate_than_nds",
            "accuracy",
            c.values(c.teacher, "accuracy"),
            c.values(c.student, "accuracy"),
            higher_is_claimed=True,
            names=("teacher", "NDS"),
        )
    ]
    in_main = c.distilled[c.distilled["temperature"] <= PAPER_T_MAX]
    rows.append(
        c.compare(
            "ds_more_accurate_than_nds",
            "accuracy",
            c.values(in_main, "accuracy"),
            c.values(c.student, "accuracy"),
            higher_is_claimed=True,
            names=(f"DS T <= {PAPER_T_MAX}", "NDS"),
        )
    )
    for t in c.main:
        rows.append(
            c.compare(
                f"ds_more_accurate_than_nds (T={t:g})",
                "accuracy",
                c.values(c.at(t), "accuracy"),
                c.values(c.student, "accuracy"),
                higher_is_claimed=True,
                names=(f"DS T={t:g}", "NDS"),
            )
        )
    trend_range = [t for t in c.main if t >= 1]
    for metric in fairness_columns(sweep):
        in_range = c.distilled[c.distilled["temperature"].between(1, PAPER_T_MAX)]
        rows.append(
            c.trend(
                "fairness_improves_with_T", metric, in_range, falls=True, temperatures=trend_range
            )
        )
        rows.append(
            c.every_temperature(
                "ds_fairer_than_nds", metric, c.student, c.main, ds_higher=False, name="NDS"
            )
        )
    for metric in [m for m in fairness_columns(sweep) if m.startswith("dpd_")]:
        claim = "ds_below_teacher_at_high_T"
        if not c.main:
            rows.append(_untestable(claim, metric, f"no temperature <= {PAPER_T_MAX} was run"))
            continue
        top = c.main[-1]
        rows.append(
            c.compare(
                claim,
                metric,
                c.values(c.at(top), metric),
                c.values(c.teacher, metric),
                higher_is_claimed=False,
                names=(f"DS T={top:g}", "teacher"),
            )
        )
    high = [t for t in c.temperatures if t > PAPER_T_MAX]
    for metric in fairness_columns(sweep):
        rows.append(_reversal(c, metric, high))
    if "individual_fairness" in sweep.results:
        rows.append(
            c.every_temperature(
                "ds_never_reaches_teacher",
                "individual_fairness",
                c.teacher,
                c.temperatures,
                ds_higher=True,
                name="teacher",
            )
        )
    if not sweep.attributes and counts is not None:
        rows += _classwise_claims(c, counts)
    return pd.DataFrame(rows, columns=COLUMNS)


def _reversal(c: _Claims, metric: str, high: list[float]) -> dict:
    claim = "reversal_above_T10"
    if not high:
        return _untestable(claim, metric, f"no temperature above {PAPER_T_MAX} was run")
    if not c.main:
        return _untestable(claim, metric, f"no temperature <= {PAPER_T_MAX} was run")
    means = {t: c.values(c.at(t), metric).mean() for t in c.main if len(c.values(c.at(t), metric))}
    if not means:
        return _untestable(claim, metric, f"no values at T <= {PAPER_T_MAX}")
    best = min(means, key=means.get)
    above = c.distilled[c.distilled["temperature"] > PAPER_T_MAX]
    row = c.compare(
        claim,
        metric,
        c.values(above, metric),
        c.values(c.at(best), metric),
        higher_is_claimed=True,
        names=(f"DS T = {', '.join(f'{t:g}' for t in high)}", f"DS T={best:g} (best T <= 10)"),
    )
    return row


def _classwise_claims(c: _Claims, counts: pd.DataFrame) -> list[dict]:
    rows = []
    for claim, metric, falls in (
        ("sc_rises_with_T", "n_sc", False),
        ("tc_falls_with_T", "n_tc", True),
    ):
        usable = counts[(counts["temperature"] <= PAPER_T_MAX) & counts[metric].notna()]
        n_models = int(usable["n_distilled"].sum()) if len(usable) else 0
        reference = c.student if metric == "n_sc" else c.teacher
        reason = c.too_few(
            {
                "NDS" if metric == "n_sc" else "teacher": np.arange(len(reference)),
                **{
                    f"DS T={t:g}": np.arange(n)
                    for t, n in usable[["temperature", "n_distilled"]].values
                },
            }
        )
        if reason:
            rows.append(_untestable(claim, metric, reason, n_models))
            continue
        if len(usable) < 3:
            rows.append(
                _untestable(
                    claim,
                    metric,
                    f"needs #SC/#TC at 3 or more temperatures <= {PAPER_T_MAX} "
                    f"(class-wise tests need 2+ seeds per population); has {len(usable)}",
                    n_models,
                )
            )
            continue
        rho, p = _spearman(usable["temperature"].to_numpy(float), usable[metric].to_numpy(float))
        rows.append(
            _row(
                claim,
                metric,
                _verdict(-rho if falls else rho, p, c.alpha),
                f"Spearman rho of {metric} against T over {len(usable)} temperatures",
                rho,
                p,
                n_models,
            )
        )
    return rows
