"""Read a sweep: outputs/<experiment>/results.csv and the predictions.npz files it points to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kdfair.errors import KdfairError
from kdfair.predict import Predictions
from kdfair.results import LEADING, ROLES, TRAILING, read_results

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
        if path not in self._cache:
            self._cache[path] = Predictions.load(path)
        return self._cache[path]

    def population(self, role: str, temperature: float | None = None) -> pd.DataFrame:
        """Rows of one role (and temperature, for distilled models), ordered by seed."""
        rows = self.results[self.results.role == role]
        if temperature is not None:
            rows = rows[np.isclose(rows["temperature"], temperature)]
        return rows.sort_values("seed")


def load_sweep(directory: str | Path) -> Sweep:
    """Read and check results.csv; every predictions file it names must exist."""
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
    missing = [c for c in LEADING + TRAILING if c not in results.columns]
    if missing:
        raise KdfairError(
            f"{path} lacks the columns {missing}; it was not written by kdfair train."
        )
    if results.empty:
        raise KdfairError(f"{path} has no rows yet; run `kdfair train` first.")
    unknown = sorted(set(results["role"]) - set(ROLES))
    if unknown:
        raise KdfairError(f"{path} has unknown roles {unknown}; expected {list(ROLES)}.")
    absent = [p for p in results["predictions"] if not (directory.parent / p).is_file()]
    if absent:
        raise KdfairError(
            f"{len(absent)} predictions files named in {path} are missing (first: "
            f"{directory.parent / absent[0]}). Rerun the `kdfair train` command that made them."
        )
    with np.load(directory.parent / results["predictions"].iloc[0]) as first:
        num_classes = int(first["logits"].shape[1])
        class_names = (
            first["class_names"].tolist()
            if "class_names" in first.files
            else [str(c) for c in range(num_classes)]
        )
    results["collapsed"] = results["accuracy"] < collapse_threshold(num_classes)
    results["label"] = [
        "teacher"
        if r.role == "teacher"
        else "NDS"
        if r.role == "student"
        else f"DS T={r.temperature:g}"
        for r in results.itertuples()
    ]
    return Sweep(directory, results, num_classes, class_names)
