"""Read a sweep: outputs/<experiment>/results.csv and the predictions.npz files it points to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kdfair.errors import KdfairError
from kdfair.metrics.catalog import floored
from kdfair.predictions import Predictions, readable
from kdfair.recipes import differences
from kdfair.results import (
    IDENTITY,
    LEADING,
    ROLES,
    TRAILING,
    UNRECORDED,
    read_recipes,
    read_results,
    recipes_path,
)

# A model is "collapsed" when its accuracy is within this share of the way from chance to perfect:
# its predictions are (nearly) constant, so its DPD and EOD look excellent and mean nothing.
COLLAPSE_MARGIN = 0.1


def collapse_threshold(num_classes: int) -> float:
    chance = 1.0 / num_classes
    return chance + COLLAPSE_MARGIN * (1.0 - chance)


@dataclass
class Sweep:
    directory: Path  # outputs/<experiment>
    results: pd.DataFrame  # results.csv plus `label` and `collapsed`
    num_classes: int
    class_names: list[str]
    recipes: dict = field(default_factory=dict)  # role -> (hash, settings) of the selected recipe
    eval: str = UNRECORDED  # the eval hash whose rows are read
    eval_settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # rows of other evals left out, and such
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def outputs_root(self) -> Path:
        return self.directory.parent

    @property
    def metric_columns(self) -> list[str]:
        return [
            c
            for c in self.results.columns
            if c not in LEADING + TRAILING + ["label", "collapsed"] or c == "accuracy"
        ]

    @property
    def temperatures(self) -> list[float]:
        distilled = self.results[self.results.role == "distilled"]
        return sorted(distilled["temperature"].dropna().unique().tolist())

    def predictions(self, row) -> Predictions:
        path = self.outputs_root / row["predictions"]
        if path not in self._cache:  # no logits: memory
            self._cache[path] = Predictions.load(path, labels_only=True, model=describe(row))
        return self._cache[path]

    @property
    def attributes(self) -> list[str]:
        return [c[4:] for c in floored(self.results.columns) if c.startswith("dpd_")]

    def population(self, role: str, temperature: float | None = None) -> pd.DataFrame:
        """Rows of one role (and temperature, for distilled models), ordered by seed."""
        rows = self.results[self.results.role == role]
        if temperature is not None:
            rows = rows[np.isclose(rows["temperature"], temperature)]
        return rows.sort_values("seed")


def load_sweep(
    directory: str | Path, *, recipes: list[str] | None = None, evaluation: str | None = None
) -> Sweep:
    """Read and check results.csv; every predictions file it names must exist.

    Rows of one eval setting are read (`evaluation`, default: that of the newest row) and, per
    role, rows of one recipe: where a role has several, `recipes` must pick one (a picked
    distilled recipe brings the teacher and NDS recipes that agree with it), else KdfairError.
    """
    directory = Path(directory)
    path = directory / "results.csv"
    if not path.is_file():
        raise KdfairError(
            f"No results.csv in {directory}. Pass the experiment folder that `kdfair train` wrote, "
            "e.g. `kdfair analyze outputs/demo`."
        )
    try:
        results = read_results(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise KdfairError(f"{path} is not a readable CSV ({e}).") from e
    _check_table(results, path)
    known = read_recipes(recipes_path(path))
    results, chosen_eval, notes = _one_eval(results, evaluation, path)
    results, chosen = _one_recipe_per_role(results, recipes or [], known["recipes"], path)
    results = results.reset_index(drop=True)
    absent = [p for p in results["predictions"] if not (directory.parent / p).is_file()]
    if absent:
        raise KdfairError(
            f"{len(absent)} predictions files named in {path} are missing (first: "
            f"{directory.parent / absent[0]}). Rerun the `kdfair train` command that made them."
        )
    num_classes, class_names = _classes(directory.parent, results.iloc[0])
    results["collapsed"] = results["accuracy"] < collapse_threshold(num_classes)
    results["label"] = [
        "teacher"
        if r.role == "teacher"
        else "NDS"
        if r.role == "student"
        else f"DS T={r.temperature:g}"
        for r in results.itertuples()
    ]
    return Sweep(
        directory,
        results,
        num_classes,
        class_names,
        recipes={
            role: (h, known["recipes"].get(h, {}).get("settings", {})) for role, h in chosen.items()
        },
        eval=chosen_eval,
        eval_settings=known["evals"].get(chosen_eval, {}),
        notes=notes,
    )


def describe(row) -> str:
    """A results.csv row's model, as error messages name it."""
    temperature = f" T={float(row['temperature']):g}" if row["role"] == "distilled" else ""
    return (
        f"the {row['role']} {row['arch']} seed={row['seed']}{temperature} (model_key "
        f"{row['model_key']}) of experiment {row['experiment']}"
    )


def _classes(outputs: Path, row) -> tuple[int, list[str]]:
    """The number of classes (the logits' width) and their names, from one model's predictions."""
    path = outputs / row["predictions"]
    with readable(path, describe(row)), np.load(path, allow_pickle=False) as first:
        num_classes = int(first["logits"].shape[1])
        names = first["class_names"].tolist() if "class_names" in first.files else None
    return num_classes, names or [str(c) for c in range(num_classes)]


REQUIRED = ["experiment", "dataset", "role", "arch", "seed", "model_key", "accuracy", "predictions"]


def _check_table(results: pd.DataFrame, path: Path) -> None:
    """The contract's columns, and rows with what the analyses read: a row that lacks it was cut
    short or edited, a KdfairError naming its line (the header is line 1), model and fix."""
    missing = [c for c in IDENTITY + ["accuracy"] + TRAILING if c not in results.columns]
    if missing:
        raise KdfairError(
            f"{path} lacks the columns {missing}; it was not written by kdfair train."
        )
    if results.empty:
        raise KdfairError(f"{path} has no rows yet; run `kdfair train` first.")
    problems = _row_problems(results)
    if not problems:
        return
    index, problem = problems[0]
    key = results.at[index, "model_key"]
    model = f" (model_key {key})" if isinstance(key, str) else ""
    more = f" ({len(problems) - 1} more such rows)" if len(problems) > 1 else ""
    raise KdfairError(
        f"{path} line {index + 2}{model} has {problem}: it was cut short or edited{more}. If "
        "it is a copy, copy results.csv again; else delete that line and rerun the `kdfair "
        "train` command that wrote it, which appends the row again (its models are reused)."
    )


def _row_problems(results: pd.DataFrame) -> list[tuple[int, str]]:
    """(index, problem) of each row without its identity, a known role, a whole-number seed, an
    accuracy in [0, 1], a .npz predictions path or (distilled) a temperature > 0."""
    number = {c: pd.to_numeric(results[c], errors="coerce") for c in ("seed", "accuracy")}
    checks = {
        f"a role not in {list(ROLES)}": ~results["role"].isin(ROLES),
        "a seed that is not a whole number": number["seed"].mod(1).ne(0),
        "an accuracy not in [0, 1]": ~number["accuracy"].between(0, 1),
        "a predictions path that is not a .npz file": ~results["predictions"]
        .astype(str)
        .str.endswith(".npz"),
        "no temperature > 0 for a distilled model": (results["role"] == "distilled")
        & ~(pd.to_numeric(results["temperature"], errors="coerce") > 0),
    }
    empty = results[REQUIRED].isna()
    bad = empty.any(axis=1) | pd.concat(checks.values(), axis=1).any(axis=1)
    problems = []
    for i in results.index[bad]:
        missing = [c for c in REQUIRED if empty.at[i, c]]
        problem = "no " + ", ".join(missing) if missing else None
        problems.append((i, problem or next(text for text, mask in checks.items() if mask[i])))
    return problems


def _one_eval(
    results: pd.DataFrame, evaluation: str | None, path: Path
) -> tuple[pd.DataFrame, str, list[str]]:
    """The rows of one eval setting: `evaluation`, or that of the newest (last) row."""
    available = list(dict.fromkeys(results["eval"]))
    chosen = evaluation if evaluation is not None else str(results["eval"].iloc[-1])
    if chosen not in available:
        raise KdfairError(
            f"--eval {chosen}: no rows of {path} were measured with that eval setting; it holds "
            f"{', '.join(available)}."
        )
    notes = []
    others = results[results["eval"] != chosen]
    if len(others):
        notes.append(
            f"{len(others)} row(s) measured with other eval settings "
            f"({', '.join(sorted(set(others['eval'])))}) are left out; this analysis reads eval "
            f"{chosen} only (select another with --eval)."
        )
    return results[results["eval"] == chosen], chosen, notes


def _compatible(a: dict, b: dict) -> bool:
    """Two recipes of different roles belong together when their shared settings agree."""
    return all(a[k] == b[k] for k in set(a) & set(b))


def _one_recipe_per_role(
    results: pd.DataFrame, picked: list[str], known: dict, path: Path
) -> tuple[pd.DataFrame, dict[str, str]]:
    present = {role: list(dict.fromkeys(rows["recipe"])) for role, rows in results.groupby("role")}
    unknown = [h for h in picked if not any(h in hashes for hashes in present.values())]
    if unknown:
        listing = "; ".join(f"{role}: {', '.join(h)}" for role, h in present.items())
        raise KdfairError(f"--recipe {unknown[0]} is not in {path} (recipes there: {listing}).")
    picked_settings = [known.get(h, {}).get("settings", {}) for h in picked]
    chosen = {}
    for role, hashes in present.items():
        candidates = [h for h in hashes if h in picked] or [
            h
            for h in hashes
            if all(_compatible(known.get(h, {}).get("settings", {}), s) for s in picked_settings)
        ]
        if len(candidates) != 1:
            raise KdfairError(_mixed_recipes_message(results, role, candidates or hashes, known))
        chosen[role] = candidates[0]
    keep = results["recipe"] == results["role"].map(chosen)
    return results[keep], chosen


ROLE_NAMES = {"teacher": "teachers", "student": "non-distilled students", "distilled": "DS"}


def _mixed_recipes_message(results: pd.DataFrame, role: str, hashes: list[str], known) -> str:
    counts = results[results["role"] == role]["recipe"].value_counts()
    settings = {h: known.get(h, {}).get("settings") for h in hashes}
    lines = [
        f"{ROLE_NAMES[role]} of {len(hashes)} recipes are in this folder: "
        + ", ".join(f"{h} ({counts.get(h, 0)} models)" for h in hashes)
        + ". Pooling them would treat different settings as extra seeds."
    ]
    first = hashes[0]
    for other in hashes[1:]:
        if settings[first] is None or settings[other] is None:
            lines.append(f"{first} vs {other}: settings not recorded (recipes.json lacks them).")
            continue
        diff = differences(settings[first], settings[other])
        lines.append(
            f"{first} vs {other}: "
            + "; ".join(f"{k}: {_show(a)} vs {_show(b)}" for k, (a, b) in diff.items())
        )
    lines.append(
        f"Analyse one recipe at a time: --recipe {first} (a distilled recipe brings the teacher "
        "and NDS recipes that match it; repeat --recipe to pick each role's)."
    )
    return "\n".join(lines)


def _show(value) -> str:
    return "(unset)" if value is None else str(value)
