"""The paper's claims, each tested on a sweep at the level of seeds and given a verdict.

Every claim is a directional statement, tested two-sided; after the correction for the number of
claims (`p_adjusted`: Holm over every testable row of the table by default) at level alpha it is

    held        the effect goes the claimed way and p_adjusted <= alpha
    reversed    the effect goes the other way and p_adjusted <= alpha
    not held    neither: the data do not show the claimed effect
    not testable  the sweep lacks what the test needs (the reason is in `statistic`)

The unit of replication is the seed (kdfair.analysis.seedtests has the tests and their formulas):

- between populations (DS vs NDS, DS vs teacher, teacher vs NDS): a paired t-test over seeds of
  the per-seed differences (a DS is paired with the NDS of its seed and with its own teacher),
  its variance widened by the shared test split's bootstrap variance where replicates exist;
- trends in T: a one-sample t-test over seeds of each seed's least-squares slope on ln T;
- `fairness_changes_beyond_accuracy`: a t-test over seeds of each seed's ln T coefficient in an
  OLS of the excess on ln T and accuracy;
- claims about every temperature ("DS fairer than NDS at every T <= 10") are intersections of
  per-T paired tests: held only when each is, so p is the largest per-T p (intersection-union);
- `reversal_above_T10` is pre-specified: per seed, the mean over T > 10 minus the value at the
  largest T <= 10 that was run (10 on the paper's grids), paired; no T is chosen on the data;
- `sc_rises_with_T` / `tc_falls_with_T` have one count per T, each from all seeds: Spearman's rho
  of (T, count) over temperatures. Under the null every temperature's DS population is compared
  with the same NDS (or teacher) population, so the counts are exchangeable across T and every
  ordering is equally likely, which is the null Spearman's test assumes; the unit here is the
  temperature.

Other methods and controls (Sweep.variants) are populations of their own, each tested against
the paper's DS at the temperatures both have (per seed, the mean over them; paired by seed):

- `ds_fairer_than_control (<control>)`: the DS that learns from the teacher is fairer than the
  same method learning from the control's targets (kdfair.controls): held means the teacher's
  knowledge, not its confidence or smoothing alone, made the difference;
- `method_changes_fairness (<method>)`: the method's DS differs from kd's. Two-sided, so *held*
  means a significant difference in either direction (its sign is in `estimate`: method - kd),
  and there is no *reversed*.

Every claim over a DPD or EOD column is also made on its excess over the permutation floor
(`eod_color_excess`: kdfair.analysis.floors), which says whether an effect survives what
colour-blind errors would give. With 5 seeds and a table of ~100 claims, only large effects can
be held after the correction. Collapsed models (accuracy near chance) are left out. Each test
needs MIN_SEEDS seeds.

Columns: claim, metric, verdict, statistic (the test, or why it is not testable), estimate (the
mean per-seed difference in the metric's units, or the mean slope per unit ln T; rho for
#SC/#TC), p_value, p_adjusted,
n_seeds, n_models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from kdfair.analysis import seedtests
from kdfair.analysis.load import Sweep
from kdfair.analysis.seedtests import MIN_SEEDS, SeedTest
from kdfair.analysis.seedview import Of, SeedView
from kdfair.metrics.catalog import claimed, floored, lower_is_fairer
from kdfair.metrics.classwise import CORRECTIONS, correct
from kdfair.variants import split_variant

PAPER_T_MAX = 10  # the paper's main range is T = 1..10; 20, 30, 40 test the reversal
COLUMNS = [
    "claim",
    "metric",
    "verdict",
    "statistic",
    "estimate",
    "p_value",
    "p_adjusted",
    "n_seeds",
    "n_models",
]
HELD, NOT_HELD, REVERSED, NOT_TESTABLE = "held", "not held", "reversed", "not testable"


def _row(claim, metric, statistic, *, direction=0, estimate=np.nan, p=np.nan, seeds=0, models=0):
    """`direction`: +1 the effect goes the claimed way, -1 the other way, 0 neither."""
    return {
        "claim": claim,
        "metric": metric,
        "verdict": NOT_TESTABLE if np.isnan(p) else None,
        "statistic": statistic,
        "estimate": estimate,
        "p_value": p,
        "p_adjusted": np.nan,
        "n_seeds": seeds,
        "n_models": models,
        "direction": direction,
    }


def _untestable(claim: str, metric: str, reason: str, models: int = 0) -> dict:
    return _row(claim, metric, reason, models=models)


def _tested(claim, metric, test: SeedTest | str, text: str, *, claimed_sign: int, models: int):
    """A row from a seed-level test; `claimed_sign` +1 when a positive estimate is the claim,
    0 for a two-sided claim (any difference is the claim)."""
    if isinstance(test, str):
        return _untestable(claim, metric, test, models)
    direction = int(np.sign(test.estimate) * claimed_sign) if claimed_sign else 1
    statistic = f"{text}: t({test.seeds - 1}) = {test.statistic:.3g}"
    return _row(
        claim,
        metric,
        statistic,
        direction=direction,
        estimate=test.estimate,
        p=test.p,
        seeds=test.seeds,
        models=models,
    )


class _Claims:
    def __init__(self, view: SeedView):
        self.view = view
        self.main = [t for t in view.temperatures if t <= PAPER_T_MAX]
        self.high = [t for t in view.temperatures if t > PAPER_T_MAX]

    def compare(self, claim, metric, a, b, *, a_higher: bool | None) -> dict:
        """Paired test of population a against b (labels of SeedView); claim: a above b (below
        when not `a_higher`; None: a differs from b)."""
        pairs = self.view.paired(metric, a, b)
        if isinstance(pairs, str):
            return _untestable(claim, metric, pairs)
        differences, replicates, models = pairs
        test = seedtests.paired_difference(differences, replicates)
        return _tested(
            claim,
            metric,
            test,
            f"paired over seeds, {self.view.name(a)} - {self.view.name(b)}",
            claimed_sign=0 if a_higher is None else 1 if a_higher else -1,
            models=models,
        )

    def every_temperature(self, claim, metric, reference, temperatures, *, ds_higher) -> dict:
        """The intersection claim 'DS differs from `reference` in the claimed way at every T'."""
        if not temperatures:
            return _untestable(claim, metric, "no distilled students at the needed temperatures")
        rows = [self.compare(claim, metric, t, reference, a_higher=ds_higher) for t in temperatures]
        untestable = [r for r in rows if np.isnan(r["p_value"])]
        if untestable:
            return untestable[0]
        directions = [r["direction"] for r in rows]
        p_max = max(r["p_value"] for r in rows)
        worst = min(rows, key=lambda r: r["estimate"] * (1 if ds_higher else -1))
        if all(d > 0 for d in directions):
            direction = 1
        elif all(d < 0 for d in directions):
            direction = -1
        else:
            direction = 0
        statistic = (
            f"DS {'above' if ds_higher else 'below'} {self.view.name(reference)} at "
            f"{sum(d > 0 for d in directions)}/{len(rows)} T (T = "
            f"{', '.join(f'{t:g}' for t in temperatures)}); paired t-tests over seeds, "
            "p = the largest"
        )
        return _row(
            claim,
            metric,
            statistic,
            direction=direction,
            estimate=worst["estimate"],
            p=p_max,
            seeds=min(r["n_seeds"] for r in rows),
            models=self.view.count(*temperatures, reference),
        )

    def trend(self, claim, metric, *, falls: bool) -> dict:
        temperatures = [t for t in self.main if t >= 1]
        if len(temperatures) < 3:
            return _untestable(
                claim, metric, f"needs 3+ temperatures in 1..{PAPER_T_MAX}; ran {len(temperatures)}"
            )
        per_seed = self.view.per_seed(metric, temperatures, min_temperatures=3)
        if isinstance(per_seed, str):
            return _untestable(claim, metric, per_seed)
        test = seedtests.trend([(t, m) for t, m in per_seed.values()])
        text = f"mean per-seed slope on ln T over T = {temperatures[0]:g}..{temperatures[-1]:g}"
        models = sum(len(t) for t, _ in per_seed.values())
        return _tested(claim, metric, test, text, claimed_sign=-1 if falls else 1, models=models)

    def beyond_accuracy(self, metric: str) -> dict:
        claim = "fairness_changes_beyond_accuracy"
        temperatures = [t for t in self.main if t >= 1]
        excess = self.view.per_seed(metric, temperatures, min_temperatures=1)
        accuracy = self.view.per_seed("accuracy", temperatures, min_temperatures=1)
        for found in (excess, accuracy):
            if isinstance(found, str):
                return _untestable(claim, metric, found)
        per_seed = []
        for seed, (t, values) in excess.items():
            t_acc, acc = accuracy[seed]
            keep = np.isin(t_acc, t)
            per_seed.append((t, acc[keep], values))
        test = seedtests.beyond_accuracy(per_seed)
        models = sum(len(t) for t, _, _ in per_seed)
        text = "mean per-seed OLS coefficient of ln T (excess ~ ln T + accuracy)"
        falls = lower_is_fairer(metric)  # the paper's claim: fairer as T rises
        return _tested(claim, metric, test, text, claimed_sign=-1 if falls else 1, models=models)

    def reversal(self, metric: str) -> dict:
        claim = "reversal_above_T10"
        if not self.high:
            return _untestable(claim, metric, f"no temperature above {PAPER_T_MAX} was run")
        if not self.main:
            return _untestable(claim, metric, f"no temperature <= {PAPER_T_MAX} was run")
        worse_higher = lower_is_fairer(metric)
        return self.compare(claim, metric, tuple(self.high), self.main[-1], a_higher=worse_higher)


def claims(
    sweep: Sweep,
    counts: pd.DataFrame | None = None,
    *,
    alpha: float = 0.05,
    correction: str = "holm",
    replicates: dict[int, dict] | None = None,
) -> pd.DataFrame:
    """Every claim the sweep's data allow, with its verdict (see the module docstring).
    `counts` is significant_classes.csv's table (for the #SC/#TC claims); `replicates` (row
    index -> {metric: bootstrap replicates}) widens the paired tests by the test split's noise."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    c = _Claims(SeedView(sweep, replicates or {}))
    rows = [
        c.compare("teacher_more_accurate_than_nds", "accuracy", "teacher", "NDS", a_higher=True)
    ]
    if c.main:
        rows.append(
            c.compare("ds_more_accurate_than_nds", "accuracy", tuple(c.main), "NDS", a_higher=True)
        )
    for t in c.main:
        claim = f"ds_more_accurate_than_nds (T={t:g})"
        rows.append(c.compare(claim, "accuracy", t, "NDS", a_higher=True))
    columns = claimed(sweep.results.columns)
    for metric in columns:
        fairer_lower = lower_is_fairer(metric)
        rows.append(c.trend("fairness_improves_with_T", metric, falls=fairer_lower))
        rows.append(
            c.every_temperature(
                "ds_fairer_than_nds", metric, "NDS", c.main, ds_higher=not fairer_lower
            )
        )
    for metric in [m for m in columns if m.startswith("dpd_")]:
        claim = "ds_below_teacher_at_high_T"
        if not c.main:
            rows.append(_untestable(claim, metric, f"no temperature <= {PAPER_T_MAX} was run"))
        else:
            rows.append(c.compare(claim, metric, c.main[-1], "teacher", a_higher=False))
    rows += [c.reversal(metric) for metric in columns]
    rows += [c.beyond_accuracy(f"{m}_excess") for m in floored(sweep.results.columns)]
    if "individual_fairness" in sweep.results:
        rows.append(
            c.every_temperature(
                "ds_never_reaches_teacher",
                "individual_fairness",
                "teacher",
                c.view.temperatures,
                ds_higher=True,
            )
        )
    rows += _variant_claims(c, sweep, columns)
    if not sweep.attributes and counts is not None:
        rows += _classwise_claims(c, counts)
    return _verdicts(pd.DataFrame(rows), alpha, correction)


def _variant_claims(c: _Claims, sweep: Sweep, columns: list[str]) -> list[dict]:
    """ds_fairer_than_control per control and method_changes_fairness per method (module
    docstring), on every claimed fairness column, at the temperatures shared with the DS they
    are compared with."""
    rows = []
    for variant in sweep.variants:
        method, control = split_variant(variant)
        control = "" if control == "none" else control
        # a control stands in for its method's teacher (kd: the DS); a method is against kd
        base = method if control and method != "kd" else ""
        shared = tuple(
            t for t in sweep.temperatures_of(variant) if t in sweep.temperatures_of(base)
        )
        if control:
            claim = f"ds_fairer_than_control ({variant})"
        else:
            claim = f"method_changes_fairness ({method})"
        for metric in columns:
            if not shared:
                rows.append(_untestable(claim, metric, f"no temperature shared with DS {base}"))
                continue
            mine = Of(variant, shared)
            reference = Of(base, shared) if base else shared
            if control:  # the DS below the control on a lower-is-fairer metric
                fairer_higher = not lower_is_fairer(metric)
                rows.append(c.compare(claim, metric, reference, mine, a_higher=fairer_higher))
            else:
                rows.append(c.compare(claim, metric, mine, reference, a_higher=None))
    return rows


def _verdicts(table: pd.DataFrame, alpha: float, correction: str) -> pd.DataFrame:
    """p_adjusted over every testable row (kdfair.metrics.classwise.correct: statsmodels), and
    each row's verdict from its direction and adjusted p."""
    table["p_adjusted"] = correct(table["p_value"].to_numpy(float), correction)
    for i, row in table.iterrows():
        if np.isnan(row["p_value"]):
            continue
        significant = row["p_adjusted"] <= alpha
        table.loc[i, "verdict"] = (
            HELD
            if significant and row["direction"] > 0
            else REVERSED
            if significant and row["direction"] < 0
            else NOT_HELD
        )
    return table[COLUMNS]


def _classwise_claims(c: _Claims, counts: pd.DataFrame) -> list[dict]:
    rows = []
    for claim, metric, falls in (
        ("sc_rises_with_T", "n_sc", False),
        ("tc_falls_with_T", "n_tc", True),
    ):
        usable = counts[(counts["temperature"] <= PAPER_T_MAX) & counts[metric].notna()]
        models = int(usable["n_distilled"].sum()) if len(usable) else 0
        small = usable[usable["n_distilled"] < MIN_SEEDS]
        if len(small):
            reason = f"fewer than {MIN_SEEDS} seeds at T = " + ", ".join(
                f"{t:g}" for t in small["temperature"]
            )
            rows.append(_untestable(claim, metric, reason, models))
            continue
        if len(usable) < 3:
            reason = (
                f"needs #SC/#TC at 3 or more temperatures <= {PAPER_T_MAX} (class-wise tests "
                f"need 2+ seeds per population); has {len(usable)}"
            )
            rows.append(_untestable(claim, metric, reason, models))
            continue
        x, y = usable["temperature"].to_numpy(float), usable[metric].to_numpy(float)
        rho, p = (0.0, 1.0) if np.all(y == y[0]) else stats.spearmanr(x, y)
        direction = int(np.sign(rho)) * (-1 if falls else 1)
        statistic = f"Spearman rho of {metric} against T over {len(usable)} temperatures"
        rows.append(
            _row(claim, metric, statistic, direction=direction, estimate=float(rho), p=float(p))
            | {"n_models": models, "n_seeds": int(usable["n_distilled"].min())}
        )
    return rows
