"""Check that a change of kdfair's code changed no result: two results.csv files, same rows.

    python scripts/check_no_behaviour_change.py BEFORE/results.csv AFTER/results.csv [--tol 1e-6]

Run the same command (the demo smoke: `kdfair train -m +debug=smoke seed=0,1`) into two outputs
folders, once on the code before the change and once after (KDFAIR_OUTPUTS=/tmp/before, then
/tmp/after), and compare their results.csv. Passes when both have the same rows (matched in order
of appearance by role, arch, temperature, seed), every model key, recipe and eval hash identical,
and every numeric column equal within `--tol` (NaN equals NaN). finished_at, a time stamp, is
left out. Exits 1 and lists the differences otherwise.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

IGNORED = ("finished_at",)  # when a row was written, not what it says
IDENTITY = ("experiment", "dataset", "role", "arch", "temperature", "seed")


def differences(before: pd.DataFrame, after: pd.DataFrame, tol: float) -> list[str]:
    """Every way `after` differs from `before` (an empty list when they agree)."""
    if list(before.columns) != list(after.columns):
        return [f"columns differ: {list(before.columns)} vs {list(after.columns)}"]
    if len(before) != len(after):
        return [f"{len(before)} rows before, {len(after)} after"]
    found = []
    for column in before.columns:
        if column in IGNORED:
            continue
        old, new = before[column], after[column]
        numeric = pd.api.types.is_numeric_dtype(old) and pd.api.types.is_numeric_dtype(new)
        if numeric:
            same = np.isclose(
                old.to_numpy(float), new.to_numpy(float), rtol=0, atol=tol, equal_nan=True
            )
        else:
            same = (
                old.fillna("<empty>").astype(str) == new.fillna("<empty>").astype(str)
            ).to_numpy()
        for row in np.flatnonzero(~same):
            who = ", ".join(f"{c}={before.at[row, c]}" for c in IDENTITY if c in before.columns)
            found.append(f"row {row} ({who}): {column} {old.iloc[row]} -> {new.iloc[row]}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="results.csv written by the code before the change")
    parser.add_argument("after", help="results.csv written by the code after the change")
    parser.add_argument("--tol", type=float, default=1e-6, help="numeric tolerance (absolute)")
    options = parser.parse_args(argv)
    before, after = pd.read_csv(options.before), pd.read_csv(options.after)
    found = differences(before, after, options.tol)
    for line in found:
        print(line)
    numeric = [c for c in before.select_dtypes("number").columns if c not in IGNORED]
    if found:
        print(f"DIFFERENT: {len(found)} differences")
        return 1
    print(
        f"same: {len(before)} rows, {before['model_key'].nunique()} model keys identical, "
        f"{len(numeric)} numeric columns equal within {options.tol:g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
