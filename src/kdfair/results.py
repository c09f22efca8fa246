"""results.csv: one row per (experiment, model, role, eval setting), appended under a lock.

Columns, in order: experiment, dataset, role, arch, teacher_arch, temperature, alpha, method,
control, seed, model_key, teacher_key, recipe, eval, epochs, lr, t_squared, accuracy, <metric
columns>, predictions, finished_at. Metric columns are the ones rows bring (dpd_<attr>, eod_<attr>,
individual_fairness, consistency). `recipe` and `eval` are short hashes (kdfair.recipes); the
settings behind them are kept in recipes.json beside results.csv. A model already in the file
in the same role under the same eval setting is not appended again; in another role or measured
under another eval setting it gets a new row. The files are rewritten through a temporary file
and a rename, so a killed job never leaves a half-written row.

Every row ends with a line end; a file whose last row ends without one and lacks a field (or
whose finished_at is not a whole timestamp) was cut short, e.g. by an interrupted copy, and is a
KdfairError naming the line, never a row read with empty fields.

A results.csv written before recipes were recorded (no recipe/eval/epochs/lr/t_squared columns)
is still read: those columns come back empty and its rows count as one recipe and one eval. One
written before distillation methods and controls existed (no method/control columns) reads as
kd without a control for its distilled rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd
from filelock import FileLock

from kdfair.atomic import atomic_path, write_json
from kdfair.errors import KdfairError
from kdfair.variants import DEFAULTS as DISTILL_DEFAULTS

IDENTITY = [
    "experiment",
    "dataset",
    "role",
    "arch",
    "teacher_arch",
    "temperature",
    "alpha",
    "method",
    "control",
    "seed",
    "model_key",
    "teacher_key",
]
RECIPE_COLUMNS = ["recipe", "eval", "epochs", "lr", "t_squared"]
LEADING = [*IDENTITY, *RECIPE_COLUMNS, "accuracy"]
TRAILING = ["predictions", "finished_at"]
ROLES = ("teacher", "student", "distilled")
UNRECORDED = "unrecorded"  # recipe/eval of rows written before those columns existed

_STRINGS = {
    "model_key": str,
    "teacher_key": str,
    "recipe": str,
    "eval": str,
    "method": str,
    "control": str,
}
# finished_at as kdfair writes it (UTC, to the second): what a whole last field looks like
_WHOLE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def ordered_columns(columns) -> list[str]:
    """The contract's column order; metric columns keep their order of first appearance."""
    metrics = [c for c in columns if c not in LEADING and c not in TRAILING]
    return LEADING + metrics + TRAILING


def recipes_path(results_path: Path) -> Path:
    return Path(results_path).with_name("recipes.json")


def _row_id(model_key, role, eval_hash) -> tuple[str, str, str]:
    """A row is a model in a role measured under an eval setting: a model reused in another
    role (a student later serving as a teacher) gets a row for that role too."""
    return str(model_key), str(role), UNRECORDED if pd.isna(eval_hash) else str(eval_hash)


def append_results(path: Path, rows: list[dict], recipes: dict | None = None) -> pd.DataFrame:
    """Append the rows whose (model_key, role, eval) is new to `path`; return the whole table.

    `recipes` ({"recipes": {hash: ...}, "evals": {hash: ...}}) is merged into recipes.json
    under the same lock, so every hash in the file can be explained.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if recipes:
            _merge_recipes(recipes_path(path), recipes)
        table = read_results(path) if path.exists() else pd.DataFrame(columns=LEADING + TRAILING)
        known = {
            _row_id(k, r, e)
            for k, r, e in zip(table["model_key"], table["role"], table["eval"], strict=True)
        }
        new = [r for r in rows if _row_id(r["model_key"], r["role"], r.get("eval")) not in known]
        if not new:
            return table
        fresh = pd.DataFrame(new)
        table = fresh if table.empty else pd.concat([table, fresh], ignore_index=True)
        table = table.reindex(columns=ordered_columns(table.columns))
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)  # floats round-trip exactly
        return table


def _merge_recipes(path: Path, recipes: dict) -> None:
    known = read_recipes(path)
    merged = {
        part: {**known.get(part, {}), **recipes.get(part, {})} for part in ("recipes", "evals")
    }
    if merged != known:
        write_json(path, merged)


def read_recipes(path: Path) -> dict:
    """recipes.json ({"recipes": {}, "evals": {}} when absent)."""
    path = Path(path)
    if not path.is_file():
        return {"recipes": {}, "evals": {}}
    try:
        data = json.loads(path.read_text())
        return {"recipes": data.get("recipes", {}), "evals": data.get("evals", {})}
    except (ValueError, AttributeError) as e:  # cut short, or not the object kdfair writes
        raise KdfairError(
            f"{path} cannot be read ({type(e).__name__}: {e}): it was cut short or damaged. If "
            "these outputs are a copy, copy it again; else delete it and rerun the experiment's "
            "`kdfair train` commands, which write it again (their models are reused)."
        ) from e


def read_results(path: Path) -> pd.DataFrame:
    text = Path(path).read_text(encoding="utf-8")
    _refuse_a_cut_row(text, Path(path))
    table = pd.read_csv(io.StringIO(text), dtype=_STRINGS)
    for column in RECIPE_COLUMNS:
        if column not in table.columns:
            table[column] = UNRECORDED if column in ("recipe", "eval") else None
    table[["recipe", "eval"]] = table[["recipe", "eval"]].fillna(UNRECORDED)
    distilled = table["role"] == "distilled"
    for column, default in DISTILL_DEFAULTS.items():
        if column not in table.columns:
            table[column] = None
        table[column] = table[column].astype(object)
        table.loc[distilled & table[column].isna(), column] = default
    return table.reindex(columns=ordered_columns(table.columns))


def _refuse_a_cut_row(text: str, path: Path) -> None:
    """A last row without a line end (never written so by kdfair, pandas or the csv module)
    counts as whole only with every field, finished_at a whole timestamp; else KdfairError."""
    if not text or text.endswith(("\n", "\r")) or "\n" not in text:
        return
    first, number, last_line = text.split("\n", 1)[0], text.count("\n") + 1, text.rsplit("\n", 1)[1]
    header, last = next(csv.reader([first])), next(csv.reader([last_line]))
    whole = len(last) >= len(header) and (
        header[-1] != "finished_at" or _WHOLE_TIME.fullmatch(last[-1]) is not None
    )
    if whole:
        return
    at = header.index("model_key") if "model_key" in header else len(last)
    model = f" (model_key {last[at]})" if len(last) > at + 1 else ""
    raise KdfairError(
        f"{path} line {number}{model} is cut short: the file ends mid-row, "
        "e.g. after an interrupted copy. If it is a copy, copy results.csv again; else delete "
        "that line and rerun the `kdfair train` command that wrote it, which appends the row "
        "again (its models are reused)."
    )
