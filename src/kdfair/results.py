"""results.csv: one row per (experiment, model), appended under a lock (DESIGN.md section 4).

Columns, in order: experiment, dataset, role, arch, teacher_arch, temperature, alpha, seed,
model_key, teacher_key, accuracy, <metric columns>, predictions, finished_at. Metric columns are
the ones rows bring (dpd_<attr>, eod_<attr>, individual_fairness, consistency); a model already in
the file is not appended again. The file is rewritten through a temporary file and a rename, so a
killed job never leaves a half-written row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from filelock import FileLock

from kdfair.store import atomic_path

LEADING = [
    "experiment",
    "dataset",
    "role",
    "arch",
    "teacher_arch",
    "temperature",
    "alpha",
    "seed",
    "model_key",
    "teacher_key",
    "accuracy",
]
TRAILING = ["predictions", "finished_at"]
ROLES = ("teacher", "student", "distilled")


def ordered_columns(columns) -> list[str]:
    """The contract's column order; metric columns keep their order of first appearance."""
    metrics = [c for c in columns if c not in LEADING and c not in TRAILING]
    return LEADING + metrics + TRAILING


def append_results(path: Path, rows: list[dict]) -> pd.DataFrame:
    """Append the rows whose model_key is new to `path`; return the whole table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        table = read_results(path) if path.exists() else pd.DataFrame(columns=LEADING + TRAILING)
        known = set(table["model_key"].astype(str))
        new = [r for r in rows if str(r["model_key"]) not in known]
        if not new:
            return table
        fresh = pd.DataFrame(new)
        table = fresh if table.empty else pd.concat([table, fresh], ignore_index=True)
        table = table.reindex(columns=ordered_columns(table.columns))
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)  # floats round-trip exactly
        return table


def read_results(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"model_key": str, "teacher_key": str})
