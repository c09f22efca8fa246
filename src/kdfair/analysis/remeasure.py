"""`kdfair analyze DIR --remeasure`: every metric column again, from stored predictions, under
new eval settings, without training anything.

Each model of results.csv is measured from its predictions.npz with `evaluation` (the eval.*
block as a plain dict) and gets a new row under the new eval hash; rows of earlier eval settings
stay, and `analyze` reads one eval setting at a time. Individual fairness needs the same
neighbourhood for every model: that of the teacher of `eval.individual.reference_seed` in the
folder (space=teacher), or of the test images (space=input, passed in as `test_inputs`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from kdfair.errors import KdfairError
from kdfair.metrics.columns import metric_columns
from kdfair.metrics.individual import neighbourhood
from kdfair.predictions import Predictions
from kdfair.recipes import eval_hash, eval_settings
from kdfair.results import LEADING, TRAILING, append_results, read_results

log = logging.getLogger(__name__)


def remeasure(directory: str | Path, evaluation: dict, *, test_inputs=None) -> int:
    """Append one row per model of `directory`/results.csv measured with `evaluation`; return
    how many rows were new (models already measured with these settings are skipped)."""
    directory = Path(directory)
    path = directory / "results.csv"
    if not path.is_file():
        raise KdfairError(f"No results.csv in {directory}; nothing to remeasure.")
    results = read_results(path)
    models = results.drop_duplicates(["model_key", "role"], keep="last")
    outputs = directory.parent
    pairs = neighbourhood(
        evaluation["individual"],
        reference_embedding=_reference_embedding(models, evaluation, outputs),
        test_inputs=test_inputs,
        dataset_name=str(models["dataset"].iloc[0]),
    )
    settings = eval_settings(evaluation)
    new_eval = eval_hash(settings)
    rows = []
    for _, row in models.iterrows():
        predictions = Predictions.load(outputs / row["predictions"])
        metrics = metric_columns(
            predictions,
            num_classes=predictions.logits.shape[1],
            neighbourhood=pairs,
            name=f"{row['role']} {row['model_key']}",
        )
        kept = {c: row[c] for c in LEADING + TRAILING if c != "accuracy"}
        rows.append({**kept, "eval": new_eval, **metrics})
    before = len(results)
    after = len(append_results(path, rows, {"recipes": {}, "evals": {new_eval: settings}}))
    log.info("remeasured %d models under eval %s: %d new rows", len(rows), new_eval, after - before)
    return after - before


def _reference_embedding(models, evaluation: dict, outputs: Path):
    individual = evaluation["individual"]
    if not individual["enabled"] or individual["space"] != "teacher":
        return None
    seed = int(individual["reference_seed"])
    teachers = models[(models["role"] == "teacher") & (models["seed"] == seed)]
    if teachers.empty:
        raise KdfairError(
            f"eval.individual.reference_seed={seed}: this folder has no teacher of seed {seed}, "
            "whose features define the neighbourhoods. Train it (kdfair train ... seed="
            f"{seed}) or pick another eval.individual.reference_seed."
        )
    if teachers["model_key"].nunique() > 1:
        raise KdfairError(
            f"This folder holds {teachers['model_key'].nunique()} teachers of seed {seed} "
            "(different recipes), so the reference embedding is ambiguous; remeasure a folder "
            "with one teacher recipe."
        )
    embedding = Predictions.load(outputs / teachers["predictions"].iloc[0]).embedding
    if embedding is None:
        raise KdfairError(
            f"The teacher {teachers['model_key'].iloc[0]} stored no embedding; use "
            "eval.individual.space=input."
        )
    return embedding
