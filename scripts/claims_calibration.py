"""Measure the claims' false held-or-reversed rates under planted nulls, and their power.

    python scripts/claims_calibration.py [--sweeps 400] > calibration.md

Synthetic sweeps of per-model metrics (tests/fixtures/metric_tables.py: 5 seeds, T = 1..10, 20,
30, 40), each run through kdfair.analysis.claims with no correction, so the rates are those of
the raw p at alpha 0.05. Nulls: `seed` (seed-specific slopes with mean zero; a null for every
claim), `accuracy` (accuracy falls with T, errors group-blind beyond the floor; a null for the
`_excess` claims and fairness_changes_beyond_accuracy only). Power: `effect` (every seed's
metric falls with ln T by 0.03 per unit, the excess rises by 0.01, accuracy falls by 0.01).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fixtures.metric_tables import verdict_rates  # noqa: E402

SCENARIOS = {
    "seed null": {"mean_slope": 0.0, "slope_sd": 0.02},
    "accuracy null": {"accuracy_slope": -0.03, "excess_slope": 0.0},
    "planted effect": {
        "mean_slope": -0.03,
        "slope_sd": 0.01,
        "accuracy_slope": -0.01,
        "excess_slope": 0.01,
    },
}


def rates(sweeps: int, seed: int, settings: dict) -> pd.Series:
    """verdict_rates with the per-T comparisons pooled into one row per claim."""
    by_row = verdict_rates(sweeps, seed, **settings)
    claim = by_row.index.get_level_values(0).str.replace(r" \(T=.*\)", " (per T)", regex=True)
    return by_row.groupby([claim, by_row.index.get_level_values(1)]).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=400)
    args = parser.parse_args()
    table = pd.DataFrame(
        {name: rates(args.sweeps, i, s) for i, (name, s) in enumerate(SCENARIOS.items())}
    )
    print(f"Held-or-reversed rate at raw p <= 0.05 over {args.sweeps} synthetic sweeps each.\n")
    print("| claim | metric | " + " | ".join(table.columns) + " |")
    print("|---|---|" + "---|" * len(table.columns))
    for (claim, metric), row in table.iterrows():
        print(f"| {claim} | {metric} | " + " | ".join(f"{v:.3f}" for v in row) + " |")


if __name__ == "__main__":
    main()
