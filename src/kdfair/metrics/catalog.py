"""Every metric kdfair reports, in one plain table: its column, which way is fairer, its unit.

A row of METRICS says, for one metric:

    pattern   its results.csv column; `{attr}` stands for a protected attribute (dpd_color)
    better    "lower" or "higher": which direction is fairer (or, for accuracy, better)
    percent   True: a fraction in [0, 1] shown in %; False: shown as it is
    floor     True: a permutation floor applies (kdfair.analysis.floors: the metric's mean when
              the attribute is permuted within each true class), so the analysis adds the
              derived columns <column>_floor, <column>_excess (= metric - floor) and
              <column>_perm_p
    claimed   True: the paper's fairness claims are tested on it (kdfair.analysis.claims)
    title     how tables and figures name it (`{attr}` filled in)

Claims, bootstrap intervals, tables, figures, the report and `kdfair compare` read this table, so
a new metric needs its function (kdfair.metrics) and one row here. Pure Python: importing it
imports no numerical library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Metric:
    pattern: str
    better: str
    percent: bool
    floor: bool
    claimed: bool
    title: str


METRICS = (
    Metric("accuracy", "higher", True, False, False, "accuracy"),
    Metric("dpd_{attr}", "lower", True, True, True, "DPD ({attr})"),
    Metric("eod_{attr}", "lower", True, True, True, "EOD ({attr})"),
    Metric("individual_fairness", "lower", False, False, True, "individual unfairness"),
    Metric("consistency", "higher", False, False, False, "kNN consistency"),
)
# Derived from a floored metric by kdfair.analysis.floors, in this order.
FLOOR_SUFFIXES = ("_floor", "_excess", "_perm_p")


def _match(column: str) -> tuple[Metric, str] | None:
    for metric in METRICS:
        regex = "^" + re.escape(metric.pattern).replace(r"\{attr\}", "(?P<attr>.+)") + "$"
        found = re.match(regex, column)
        if found:
            return metric, found.groupdict().get("attr", "")
    return None


def describe(column: str) -> Metric | None:
    """The METRICS row of a column with `{attr}` filled in (None for a column that is no
    metric). A derived `_floor` / `_excess` column is described as its metric's floor / excess:
    same direction and unit, no floor of its own, claimed like its metric."""
    for suffix, word in (("_floor", "floor"), ("_excess", "excess over floor")):
        if column.endswith(suffix):
            base = describe(column[: -len(suffix)])
            if base is None or not base.floor:
                return None
            return replace(base, pattern=column, floor=False, title=f"{base.title} {word}")
    found = _match(column)
    if found is None:
        return None
    metric, attr = found
    return replace(metric, pattern=column, title=metric.title.format(attr=attr))


def metrics_in(columns) -> list[str]:
    """The columns (in their order) that are metrics, derived ones included."""
    return [c for c in columns if describe(c) is not None]


def floored(columns) -> list[str]:
    """The columns (in their order) that get a permutation floor (every DPD and EOD)."""
    return [c for c in columns if (m := describe(c)) is not None and m.floor]


def claimed(columns, *, excess: bool = True) -> list[str]:
    """The columns the paper's fairness claims are tested on: each claimed metric, followed by
    its `_excess` where it has a floor (when `excess`). `_floor` columns are never claimed."""
    out = []
    for column in columns:
        metric = describe(column)
        if metric is None or not metric.claimed or column.endswith("_floor"):
            continue
        if column.endswith("_excess") and not excess:
            continue
        out.append(column)
    return out


def lower_is_fairer(column: str) -> bool:
    metric = describe(column)
    if metric is None:
        raise KeyError(f"{column!r} is not a metric column (kdfair.metrics.catalog.METRICS)")
    return metric.better == "lower"


def scale(column: str) -> float:
    """100 for a metric shown in %, else 1."""
    metric = describe(column)
    return 100.0 if metric is not None and metric.percent else 1.0
