"""The statistics of one sweep, computed once for `kdfair analyze` and `kdfair compare`.

In order: bootstrap replicates of every model over the shared test split
(kdfair.analysis.bootstrap), permutation floors of every DPD and EOD (kdfair.analysis.floors,
added to the sweep as <metric>_floor and <metric>_excess), the summary over seeds with
intervals, the class-wise tests, and the claims with their corrected verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kdfair.analysis.bootstrap import RESAMPLES, model_replicates
from kdfair.analysis.claims import claims as test_claims
from kdfair.analysis.floors import PERMUTATIONS, floors, with_floors
from kdfair.analysis.load import Sweep
from kdfair.analysis.tables import classwise, summary


@dataclass
class Analysed:
    sweep: Sweep  # with the floor and excess columns
    replicates: dict[int, dict]  # row index -> {metric: (resamples,) bootstrap replicates}
    floors: pd.DataFrame  # floors.csv
    summary: pd.DataFrame  # summary.csv
    tests: pd.DataFrame  # classwise_tests.csv
    counts: pd.DataFrame  # significant_classes.csv
    notes: list[str]  # class-wise comparisons left out
    claims: pd.DataFrame  # claims.csv


def analyse(
    sweep: Sweep,
    *,
    normalisation: str = "ratio",
    threshold: float = 0.05,
    correction: str = "none",
    claims_correction: str = "holm",
    resamples: int = RESAMPLES,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> Analysed:
    """Every statistic of the sweep (see the module docstring); `correction` is the class-wise
    tests' (the paper's none by default), `claims_correction` the claims table's."""
    rows = list(sweep.results.index)
    predictions = [sweep.predictions(sweep.results.loc[i]) for i in rows]
    bootstrapped = model_replicates(predictions, sweep.num_classes, resamples=resamples, seed=seed)
    replicates = {  # only for the columns results.csv has (its eval setting's)
        i: {m: v for m, v in model.items() if m in sweep.metric_columns}
        for i, model in zip(rows, bootstrapped, strict=True)
    }
    floor_table = floors(sweep, permutations=permutations, seed=seed)
    sweep = with_floors(sweep, floor_table)
    tests, counts, notes = classwise(
        sweep, normalisation=normalisation, threshold=threshold, correction=correction
    )
    claims = test_claims(
        sweep, counts, alpha=threshold, correction=claims_correction, replicates=replicates
    )
    return Analysed(
        sweep=sweep,
        replicates=replicates,
        floors=floor_table,
        summary=summary(sweep, replicates, seed=seed),
        tests=tests,
        counts=counts,
        notes=notes,
        claims=claims,
    )
