"""Write an experiment folder (results.csv + predictions.npz) whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdfair.measure import TrainedModel, recipes_of, result_row
from kdfair.metrics.columns import metric_columns
from kdfair.metrics.individual import Neighbourhood
from kdfair.predictions import Predictions
from kdfair.recipes import eval_hash, eval_settings
from kdfair.results import append_results
from kdfair.store import StoredModel, model_key

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


def _spec(role: str, seed: int, lr: float, temperature=None, teacher_key=None) -> dict:
    spec = {
        "dataset": {"name": "trifeature", "n_test": 2000},
        "batch_size": 64,
        "objective": "kd" if role == "distilled" else "ce",
        "seed": seed,
        "arch": {"name": "resnet20" if role == "teacher" else "lenet5"},
        "optim": {"epochs": 10, "optimizer": {"lr": 0.1 if role == "teacher" else lr}},
    }
    if role == "distilled":
        spec["distill"] = {
            "teacher_key": teacher_key,
            "temperature": temperature,
            "alpha": 0.8,
            "t_squared": False,
        }
    return spec


def write_fairness_sweep(
    outputs: Path,
    *,
    seeds=range(5),
    temperatures=(1.0, 4.0, 7.0, 10.0),
    student_lr: float = 0.05,
    experiment: str = "demo",
    k: int = 5,
    colour_trend: bool = True,
) -> Path:
    """A Trifeature-shaped sweep (ResNet-20 -> LeNet-5, 10 classes, attributes color and texture)
    with recipes recorded as `kdfair train` does. Planted: the DS's errors fall on colour group 0
    and spread evenly as T rises, at a constant total, so EOD (color) falls with T; texture is
    independent of everything. With `colour_trend=False` the DS's extra errors fall on every
    colour group alike at every T: no trend.
    The teachers' predictions carry an embedding (the neighbourhood's space)."""
    rng = np.random.default_rng(1 if student_lr == 0.05 else 2)
    n = 2000
    y_true = np.arange(n) % N_CLASSES
    color, texture = rng.integers(0, 4, n), rng.integers(0, 4, n)
    embedding = rng.normal(size=(n, 4)).astype(np.float32)
    evaluation = {
        "individual": {
            "enabled": True,
            "space": "teacher",
            "reference_seed": 0,
            "pairs": "knn",
            "k": k,
            "metric": "euclidean",
        }
    }
    pairs = Neighbourhood.knn(embedding, k=k)
    rows, recipes = [], {"recipes": {}, "evals": {}}
    settings = eval_settings(evaluation)
    recipes["evals"][eval_hash(settings)] = settings
    for seed in seeds:
        teacher_spec = _spec("teacher", seed, student_lr)
        teacher_key = model_key(teacher_spec)
        models = [
            ("teacher", None, teacher_spec),
            ("student", None, _spec("student", seed, student_lr)),
        ]
        models += [
            ("distilled", t, _spec("distilled", seed, student_lr, t, teacher_key))
            for t in temperatures
        ]
        for role, temperature, spec in models:
            error = np.full(n, 0.02 if role == "teacher" else 0.08)
            if role == "distilled":
                # colour group 0's share f of 0.25 extra errors falls from 1 (T=1) to its size
                # 1/4 (T=10); the total error stays the same, so nothing else changes with T
                share = 0.25 + 0.75 * (10.0 - temperature) / 9.0 if colour_trend else 0.25
                error[color == 0] += 0.25 * share
                error[color != 0] += 0.25 * (1 - share) / 3
            elif role == "student":
                error[color == 0] += 0.3
            wrong = rng.random(n) < error
            y_pred = np.where(wrong, (y_true + rng.integers(1, N_CLASSES, n)) % N_CLASSES, y_true)
            logits = np.eye(N_CLASSES, dtype=np.float32)[y_pred] * 3.0
            predictions = Predictions(
                y_true=y_true,
                y_pred=y_pred,
                logits=logits,
                index=np.arange(n),
                attributes={"color": color, "texture": texture},
                attribute_labels={"color": list("abcd"), "texture": list("wxyz")},
                embedding=embedding if role == "teacher" else None,
            )
            key = model_key(spec)
            path = outputs / "models" / key / "predictions.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            predictions.save(path)
            model = TrainedModel(
                role, StoredModel(key, path.parent, {"finished_at": "2026"}), spec, True
            )
            teacher = TrainedModel("teacher", None, teacher_spec, True)
            recipes["recipes"].update(recipes_of([model], teacher, evaluation)["recipes"])
            rows.append(
                result_row(
                    model,
                    teacher,
                    experiment=experiment,
                    dataset="trifeature",
                    num_classes=N_CLASSES,
                    evaluation=evaluation,
                    neighbourhood=pairs,
                    outputs=outputs,
                )
            )
    append_results(outputs / experiment / "results.csv", rows, recipes)
    return outputs / experiment
