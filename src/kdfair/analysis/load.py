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
from kdfair.variants import variant_name

# A model is "collapsed" when its accuracy is within this share of the way from chance to perfect:
# its predictions are (nearly) constant, so its DPD and EOD look excellent and mean nothing.
COLLAPSE_MARGIN = 0.1


def collapse_threshold(num_classes: int) -> float:
    chance = 1.0 / num_classes
    return chance + COLLAPSE_MARGIN * (1.0 - chance)


def group_of(role: str, variant: str) -> str:
    """A population group: a role, or for distilled students of another method or control than
    kd without one, "distilled:<variant>" (recipes are selected per group)."""
    return f"{role}:{variant}" if variant else role


@dataclass
class Sweep:
    """A sweep's rows and what they need. Distilled students come in variants (`variant`: ""
    for kd without a control, the paper's DS; else "dkd", "at", "smoothing", "shuffled", ...):
    each variant is its own population at every T, never pooled with another."""

    directory: Path  # outputs/<experiment>
    results: pd.DataFrame  # results.csv plus `variant`, `label` and `collapsed`
    num_classes: int
    class_names: list[str]
    recipes: dict = field(default_factory=dict)  # group -> (hash, settings) of its chosen recipe
    eval: str = UNRECORDED  # the eval hash whose rows are read
    eval_settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # rows of other evals left out, and such
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if "variant" not in self.results:  # a table built without load_sweep: all kd, no control
            self.results = self.results.assign(variant="")

    @property
    def outputs_root(self) -> Path:
        return self.directory.parent

    @property
    def metric_columns(self) -> list[str]:
        return [
            c
            for c in self.results.columns
            if c not in LEADING + TRAILING + ["variant", "label", "collapsed"] or c == "accuracy"
        ]

    @property
    def temperatures(self) -> list[float]:
        """The temperatures of the paper's DS (kd without a control)."""
        return self.temperatures_of("")

    def temperatures_of(self, variant: str) -> list[float]:
        rows = self.population("distilled", variant=variant)
        return sorted(rows["temperature"].dropna().unique().tolist())

    @property
    def variants(self) -> list[str]:
        """The distilled variants other than kd without a control, in the order they appear."""
        distilled = self.results[self.results.role == "distilled"]
        return [v for v in dict.fromkeys(distilled["variant"]) if v]

    def predictions(self, row) -> Predictions:
        path = self.outputs_root / row["predictions"]
        if path not in self._cache:  # no logits: memory
            self._cache[path] = Predictions.load(path, labels_only=True, model=describe(row))
        return self._cache[path]

    @property
    def attributes(self) -> list[str]:
        return [c[4:] for c in floored(self.results.columns) if c.startswith("dpd_")]

    def population(
        self, role: str, temperature: float | None = None, variant: str = ""
    ) -> pd.DataFrame:
        """Rows of one role (for distilled models: of one variant, and temperature if given),
        ordered by seed."""
        rows = self.results[(self.results.role == role) & (self.results.variant == variant)]
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
    results["variant"] = [
        variant_name(m, c) if role == "distilled" else ""
        for role, m, c in zip(results["role"], results["method"], results["control"], strict=True)
    ]
    results, chosen = _one_recipe_per_group(results, recipes or [], known["recipes"], path, notes)
    results = results.reset_index(drop=True)
    absent = [p for p in results["predictions"] if not (directory.parent / p).is_file()]
    if absent:
        raise KdfairError(
            f"{len(absent)} predictions files named in {path} are missing (first: "
            f"{directory.parent / absent[0]}). Rerun the `kdfair train` command that made them."
        )
    num_classes, class_names = _classes(directory.parent, results.iloc[0])
    results["collapsed"] = results["accuracy"] < collapse_threshold(num_classes)
    results["label"] = [label(r.role, r.temperature, r.variant) for r in results.itertuples()]
    return Sweep(
        directory,
        results,
        num_classes,
        class_names,
        recipes={
            group: (h, known["recipes"].get(h, {}).get("settings", {}))
            for group, h in chosen.items()
        },
        eval=chosen_eval,
        eval_settings=known["evals"].get(chosen_eval, {}),
        notes=notes,
    )


def variant_of(value) -> str:
    """A variant cell as a name: summary.csv read back by pandas gives NaN for the empty one."""
    return value if isinstance(value, str) else ""


def label(role: str, temperature: float, variant: str = "") -> str:
    """A population's name in tables and figures: teacher, NDS, DS T=4, DS dkd T=4."""
    if role != "distilled":
        return {"teacher": "teacher", "student": "NDS"}[role]
    return f"DS {variant} T={temperature:g}" if variant else f"DS T={temperature:g}"


def describe(row) -> str:
    """A results.csv row's model, as error messages name it."""
    variant = row.get("variant", "")
    temperature = f" T={float(row['temperature']):g}" if row["role"] == "distilled" else ""
    temperature += f" ({variant})" if isinstance(variant, str) and variant else ""
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


def _one_recipe_per_group(
    results: pd.DataFrame, picked: list[str], known: dict, path: Path, notes: list[str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One recipe per group (role, or distilled variant: group_of). A variant group that has no
    recipe matching the picked ones is left out, with a note."""
    groups = pd.Series(
        [group_of(r, v) for r, v in zip(results["role"], results["variant"], strict=True)],
        index=results.index,
    )
    present = {g: list(dict.fromkeys(rows["recipe"])) for g, rows in results.groupby(groups)}
    unknown = [h for h in picked if not any(h in hashes for hashes in present.values())]
    if unknown:
        listing = "; ".join(f"{role}: {', '.join(h)}" for role, h in present.items())
        raise KdfairError(f"--recipe {unknown[0]} is not in {path} (recipes there: {listing}).")
    picked_settings = [known.get(h, {}).get("settings", {}) for h in picked]
    chosen = {}
    for group, hashes in present.items():
        candidates = [h for h in hashes if h in picked] or [
            h
            for h in hashes
            if all(_compatible(known.get(h, {}).get("settings", {}), s) for s in picked_settings)
        ]
        if not candidates and ":" in group and picked:
            notes.append(f"{group}: none of its recipes ({', '.join(hashes)}) matches --recipe")
            continue
        if len(candidates) != 1:
            rows = results[groups == group]
            raise KdfairError(_mixed_recipes_message(rows, group, candidates or hashes, known))
        chosen[group] = candidates[0]
    keep = results["recipe"] == groups.map(chosen)
    return results[keep], chosen


ROLE_NAMES = {"teacher": "teachers", "student": "non-distilled students", "distilled": "DS"}


def _mixed_recipes_message(rows: pd.DataFrame, group: str, hashes: list[str], known) -> str:
    counts = rows["recipe"].value_counts()
    settings = {h: known.get(h, {}).get("settings") for h in hashes}
    role, _, variant = group.partition(":")
    lines = [
        f"{ROLE_NAMES[role]}{f' ({variant})' if variant else ''} of {len(hashes)} recipes are "
        "in this folder: "
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
