"""Write an experiment folder (results.csv + predictions.npz) whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdfair.metrics.columns import metric_columns
from kdfair.metrics.individual import Neighbourhood
from kdfair.predict import Predictions
from kdfair.results import append_results

N_CLASSES, PER_CLASS = 10, 100


def _predictions(rng, class_accuracy: np.ndarray) -> Predictions:
    y_true = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    correct = rng.random(len(y_true)) < class_accuracy[y_true]
    wrong = (y_true + rng.integers(1, N_CLASSES, len(y_true))) % N_CLASSES
    y_pred = np.where(correct, y_true, wrong)
    logits = np.eye(N_CLASSES, dtype=np.float32)[y_pred] * 4.0
    return Predictions(
        y_true=y_true,
        y_pred=y_pred,
        logits=logits,
        index=np.arange(len(y_true)),
        attributes={"color": rng.integers(0, 3, len(y_true))},
        attribute_labels={"color": ["red", "green", "blue"]},
        class_names=[f"shape{c}" for c in range(N_CLASSES)],
    )


def write_sweep(
    outputs: Path,
    *,
    seeds=range(5),
    temperatures=(1.0, 4.0),
    planted_class=3,
    planted_at=4.0,
    planted_drop=0.3,
    collapsed=(),
) -> Path:
    """Teacher, NDS and DS(T) over seeds: accuracy 0.9 per class, except the DS at `planted_at`,
    whose `planted_class` loses `planted_drop`. (role, T) pairs in `collapsed` predict class 0."""
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(N_CLASSES * PER_CLASS, 4))
    pairs = Neighbourhood.knn(embedding, k=5)
    rows = []
    for seed in seeds:
        teacher_key = f"teacher{seed:07d}"
        models = [("teacher", None, teacher_key), ("student", None, f"student{seed:07d}")]
        models += [("distilled", t, f"ds{int(t):02d}seed{seed:05d}") for t in temperatures]
        for role, temperature, key in models:
            accuracy = np.full(N_CLASSES, 0.95 if role == "teacher" else 0.9)
            if role == "distilled" and temperature == planted_at:
                accuracy[planted_class] -= planted_drop
            predictions = _predictions(rng, accuracy)
            if (role, temperature) in collapsed:
                predictions.y_pred[:] = 0
                predictions.logits[:] = np.eye(N_CLASSES, dtype=np.float32)[0]
            path = outputs / "models" / key / "predictions.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            predictions.save(path)
            distilled = role == "distilled"
            rows.append(
                {
                    "experiment": "planted",
                    "dataset": "fixture",
                    "role": role,
                    "arch": "resnet20" if role == "teacher" else "lenet5",
                    "teacher_arch": "resnet20" if distilled else None,
                    "temperature": temperature,
                    "alpha": 0.8 if distilled else None,
                    "seed": seed,
                    "model_key": key,
                    "teacher_key": teacher_key if distilled else None,
                    **metric_columns(predictions, num_classes=N_CLASSES, neighbourhood=pairs),
                    "predictions": f"models/{key}/predictions.npz",
                    "finished_at": "2026-01-01T00:00:00+00:00",
                }
            )
    append_results(outputs / "planted" / "results.csv", rows)
    return outputs / "planted"
