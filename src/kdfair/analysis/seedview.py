"""A sweep seen seed by seed: each population's value per seed, and pairs matched by seed.

A population is named by a label: "teacher", "NDS", a temperature T (the DS at T) or a tuple of
temperatures (per seed, the mean of its DS over them), or an `Of(variant, T or tuple)` for
the distilled students of another method or control (Sweep.variants); bare temperatures always
mean the paper's DS (kd without a control). A DS of seed s is matched with the NDS
of seed s and with its own teacher (its `teacher_key`), so a pinned teacher (one for every seed)
is paired with every seed's students. Collapsed models (accuracy near chance) are left out, and
so is a seed whose model on either side is.

Bootstrap replicates (row index -> {metric: (B,) array}, kdfair.analysis.bootstrap) travel with
the values; a derived `<metric>_excess` uses its metric's replicates, holding the floor fixed
(the floor is a mean over shuffles of the same test split and moves far less than the metric).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdfair.analysis.load import Sweep
from kdfair.analysis.seedtests import MIN_SEEDS as MIN_PAIRS


@dataclass(frozen=True)
class Of:
    """The distilled students of `variant` ("dkd", "smoothing", ...) at one temperature, or per
    seed the mean over a tuple of temperatures."""

    variant: str
    temperature: float | tuple


Label = str | float | tuple | Of


class SeedView:
    def __init__(self, sweep: Sweep, replicates: dict[int, dict]):
        self.rows = sweep.results[~sweep.results["collapsed"]]
        self.replicates = replicates
        self.temperatures = sweep.temperatures
        self._members: dict[Label, dict[int, list[int]]] = {}
        self._columns: dict[str, dict[int, float]] = {}
        distilled = self.rows[self.rows.role == "distilled"]
        teachers = self.rows[self.rows.role == "teacher"]
        by_key = {key: i for i, key in teachers["model_key"].items()}
        seeds = sorted(set(self.rows.loc[self.rows.role != "teacher", "seed"]))
        self.teacher_of: dict[int, int] = {}
        for seed in seeds:
            keys = distilled.loc[distilled["seed"] == seed, "teacher_key"].dropna()
            own = teachers.index[teachers["seed"] == seed]
            if len(keys) and keys.iloc[0] in by_key:
                self.teacher_of[seed] = by_key[keys.iloc[0]]
            elif len(own):
                self.teacher_of[seed] = own[0]
            elif len(teachers) == 1:
                self.teacher_of[seed] = teachers.index[0]

    @staticmethod
    def name(label: Label) -> str:
        if isinstance(label, str):
            return label
        if isinstance(label, Of):
            return SeedView.name(label.temperature).replace("DS", f"DS {label.variant}", 1)
        if isinstance(label, tuple):
            return f"DS T = {', '.join(f'{t:g}' for t in label)} (mean per seed)"
        return f"DS T={label:g}"

    def members(self, label: Label) -> dict[int, list[int]]:
        """seed -> the row indices that make up the population's value of that seed."""
        if label not in self._members:
            self._members[label] = self._find_members(label)
        return self._members[label]

    def _find_members(self, label: Label) -> dict[int, list[int]]:
        if label == "teacher":
            return {seed: [i] for seed, i in self.teacher_of.items()}
        if label == "NDS":
            rows = self.rows[self.rows.role == "student"]
        else:
            variant, wanted = (
                (label.variant, label.temperature) if isinstance(label, Of) else ("", label)
            )
            wanted = wanted if isinstance(wanted, tuple) else (wanted,)
            rows = self.rows[(self.rows.role == "distilled") & (self.rows.variant == variant)]
            rows = rows[np.isclose(rows["temperature"].to_numpy(float)[:, None], wanted).any(1)]
        out: dict[int, list[int]] = {}
        for i, seed in rows["seed"].items():
            out.setdefault(int(seed), []).append(i)
        return out

    def count(self, *labels: Label) -> int:
        """How many distinct models make up these populations."""
        return len({i for label in labels for rows in self.members(label).values() for i in rows})

    def _column(self, metric: str) -> dict[int, float]:
        if metric not in self._columns:
            self._columns[metric] = self.rows[metric].astype(float).to_dict()
        return self._columns[metric]

    def _replicates(self, index: int, metric: str) -> np.ndarray | None:
        base = metric.removesuffix("_excess")
        return self.replicates.get(index, {}).get(base)

    def value(self, indices: list[int], metric: str) -> tuple[float, np.ndarray | None]:
        """The mean of the rows' values (NaN if any is missing) and of their replicates."""
        column = self._column(metric)
        value = float(np.mean([column[i] for i in indices]))
        replicates = [self._replicates(i, metric) for i in indices]
        if any(r is None for r in replicates):
            return value, None
        return value, replicates[0] if len(replicates) == 1 else np.mean(replicates, axis=0)

    def paired(self, metric: str, a: Label, b: Label):
        """(d_s = a - b per shared seed, their (S, B) replicates or None, models used), or the
        reason the pair cannot be tested."""
        if metric not in self.rows:
            return f"no {metric} column"
        left, right = self.members(a), self.members(b)
        differences, replicates, models = [], [], set()
        for seed in sorted(set(left) & set(right)):
            va, ra = self.value(left[seed], metric)
            vb, rb = self.value(right[seed], metric)
            if not (np.isfinite(va) and np.isfinite(vb)):
                continue
            differences.append(va - vb)
            replicates.append(None if ra is None or rb is None else ra - rb)
            models.update(left[seed] + right[seed])
        if len(differences) < MIN_PAIRS:
            return (
                f"{len(differences)} seeds with both {self.name(a)} and {self.name(b)} "
                f"(needs {MIN_PAIRS})"
            )
        stacked = None if any(r is None for r in replicates) else np.stack(replicates)
        return np.array(differences), stacked, len(models)

    def per_seed(self, metric: str, temperatures: list[float], *, min_temperatures: int):
        """seed -> (T values, metric values) of its DS at `temperatures` (finite values only);
        seeds with fewer than `min_temperatures` are left out. The reason when fewer than
        MIN_PAIRS seeds remain."""
        if metric not in self.rows:
            return f"no {metric} column"
        distilled = self.rows[(self.rows.role == "distilled") & (self.rows.variant == "")]
        distilled = distilled.dropna(subset=[metric])
        distilled = distilled[distilled["temperature"].isin(temperatures)]
        out = {}
        for seed, rows in distilled.groupby("seed"):
            rows = rows.sort_values("temperature")
            if len(rows) >= min_temperatures:
                out[int(seed)] = (
                    rows["temperature"].to_numpy(float),
                    rows[metric].to_numpy(float),
                )
        if len(out) < MIN_PAIRS:
            return (
                f"{len(out)} seeds with DS at {min_temperatures}+ of T = "
                f"{', '.join(f'{t:g}' for t in temperatures)} (needs {MIN_PAIRS})"
            )
        return out
