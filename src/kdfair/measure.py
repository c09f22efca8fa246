"""Measuring: a trained model's saved predictions -> its results.csv row.

Every metric is computed from predictions.npz (predict once, measure many), so a job that reuses a
stored model measures it again with the job's own eval settings, and `kdfair analyze --remeasure`
does the same for a whole folder without training anything. Individual fairness is measured on
one `Neighbourhood` per experiment: pairs of test points in an embedding space shared by every
model (the penultimate features of the teacher of `eval.individual.reference_seed`, or the input
pixels), built from the eval.individual settings by kdfair.metrics.individual.neighbourhood.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kdfair.data import DataBundle, Split
from kdfair.errors import KdfairError
from kdfair.metrics.columns import metric_columns
from kdfair.metrics.individual import Neighbourhood, neighbourhood
from kdfair.predictions import Predictions
from kdfair.recipes import eval_hash, eval_settings, readable_columns, recipe_hash, recipe_settings
from kdfair.results import append_results
from kdfair.settings import Settings
from kdfair.store import StoredModel

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    role: str  # teacher, student or distilled
    entry: StoredModel
    spec: dict
    trained_now: bool
    chosen: dict = field(default_factory=dict)  # JobModel.chosen: settings its recipe names


def check_input_space(individual, data) -> None:
    """eval.individual.space=input compares inputs as pixels: meaningless for token ids."""
    meaningful = data.input_kind.distances_are_meaningful
    if individual["enabled"] and individual["space"] == "input" and not meaningful:
        raise KdfairError(
            f"eval.individual.space=input measures distances between input pixels, but "
            f"{data.name}'s inputs are {data.modality} token ids, whose distances mean nothing. "
            "Use eval.individual.space=teacher (the reference teacher's features)."
        )


def recipes_of(models: list[TrainedModel], teacher: TrainedModel, evaluation: dict) -> dict:
    """recipes.json entries for the models of one job and its eval settings."""
    recipes = {}
    for model in models:
        settings = _settings(model, teacher)
        recipes[recipe_hash(settings)] = {"role": model.role, "settings": settings}
    settings = eval_settings(evaluation)
    return {"recipes": recipes, "evals": {eval_hash(settings): settings}}


def _settings(model: TrainedModel, teacher: TrainedModel) -> dict:
    distilled = "distill" in model.spec
    return recipe_settings(
        model.spec, model.role, teacher.spec if distilled else None, chosen=model.chosen
    )


def result_row(
    model: TrainedModel,
    teacher: TrainedModel,
    *,
    experiment: str,
    dataset: str,
    num_classes: int,
    evaluation: dict,
    neighbourhood: Neighbourhood | None,
    outputs: Path,
) -> dict:
    """One results.csv row: identity, recipe, every metric column, where the predictions are."""
    distill = model.spec.get("distill")
    predictions = Predictions.load(model.entry.predictions_path)
    metrics = metric_columns(
        predictions,
        num_classes=num_classes,
        neighbourhood=neighbourhood,
        name=f"{model.role} {model.entry.key}",
    )
    return {
        "experiment": experiment,
        "dataset": dataset,
        "role": model.role,
        "arch": model.spec["arch"]["name"],
        "teacher_arch": teacher.spec["arch"]["name"] if distill else None,
        "temperature": distill["temperature"] if distill else None,
        "alpha": distill["alpha"] if distill else None,
        "method": distill.get("method", "kd") if distill else None,
        "control": distill.get("control", "none") if distill else None,
        "seed": model.spec["seed"],
        "model_key": model.entry.key,
        "teacher_key": distill["teacher_key"] if distill else None,
        "recipe": recipe_hash(_settings(model, teacher)),
        "eval": eval_hash(eval_settings(evaluation)),
        **readable_columns(model.spec),
        **metrics,
        "predictions": Path(os.path.relpath(model.entry.predictions_path, outputs)).as_posix(),
        "finished_at": model.entry.metrics["finished_at"],
    }


# results.csv columns left out of the one-screen summary a job logs.
SUMMARY_HIDDEN = [
    "experiment",
    "dataset",
    "teacher_arch",
    "alpha",
    "teacher_key",
    "recipe",
    "eval",
    "predictions",
    "finished_at",
]


def record(
    settings: Settings,
    data: DataBundle,
    models: list[TrainedModel],
    teacher: TrainedModel,
    reference: TrainedModel | None,
) -> pd.DataFrame:
    """Measure every model of a job from its saved predictions, append the rows (and their
    recipes) to results.csv and log a one-screen summary of them. Returns the rows as written,
    plus `status`: trained (by this job) or reused (found in the store)."""
    evaluation = settings.evaluation
    pairs = neighbourhood(
        settings.individual,
        reference_embedding=(
            Predictions.load(reference.entry.predictions_path).embedding if reference else None
        ),
        test_inputs=data.test.inputs.numpy() if isinstance(data.test, Split) else None,
        dataset_name=data.name,
    )
    rows = [
        result_row(
            m,
            teacher,
            experiment=settings.experiment,
            dataset=settings.dataset["name"],
            num_classes=data.num_classes,
            evaluation=evaluation,
            neighbourhood=pairs,
            outputs=settings.paths.outputs,
        )
        for m in models
    ]
    results_path = settings.paths.experiment / "results.csv"
    append_results(results_path, rows, recipes_of(models, teacher, evaluation))
    written = pd.DataFrame(rows)
    written["status"] = ["trained" if m.trained_now else "reused" for m in models]
    log.info(
        "Results of this job (appended to %s):\n%s",
        results_path,
        written.drop(columns=SUMMARY_HIDDEN).to_string(
            index=False, float_format=lambda v: f"{v:.4f}"
        ),
    )
    return written
