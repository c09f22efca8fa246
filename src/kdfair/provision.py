"""The models a job needs: found in the model store, or trained now and stored.

`obtain` returns one teacher or non-distilled student of the job's list of models
(kdfair.jobmodels), `obtain_distilled` its distilled students (with `distill.fused`, the missing
ones train together: one data stream and one teacher forward pass per batch). Either way the
store's `get_or_train` does the locking and re-checking, so concurrent jobs train a model once.
`ensure_embedding` gives a stored model the penultimate features individual fairness needs,
whatever role it was first trained for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
import torch

from kdfair import distributed
from kdfair.data import DataBundle
from kdfair.factories import build_model, build_optimizer, load_model
from kdfair.jobmodels import JobModel
from kdfair.measure import TrainedModel
from kdfair.metrics.accuracy import accuracy, per_class_accuracy
from kdfair.predict import Predictions, predict
from kdfair.settings import Recipe
from kdfair.store import Entry, ModelStore
from kdfair.training import Distillation, Run, Speed, fit_many

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workshop:
    """What every model of one job shares."""

    data: DataBundle
    store: ModelStore
    device: torch.device
    speed: Speed
    eval_batch_size: int
    eval_every_epoch: bool
    keep: str = "last"  # eval.checkpoint: which epoch's weights each model keeps


def obtain(shop: Workshop, model: JobModel) -> TrainedModel:
    """The teacher or non-distilled student `model`, trained if not stored."""
    ((entry, trained),) = shop.store.get_or_train(
        [model.key],
        lambda folders: _train_and_store(
            shop, [(folders[0], model.spec)], model.role, model.recipe, None
        ),
        descriptions=[_describe(model.role, model.recipe.name, model.seed)],
    )
    return TrainedModel(model.role, entry, model.spec, trained)


def obtain_distilled(
    shop: Workshop, teacher: TrainedModel, models: Sequence[JobModel], *, fused: bool
) -> list[TrainedModel]:
    """The distilled students `models` of `teacher`, trained (fused when `fused`) if not
    stored."""
    if any(m.spec["distill"]["teacher_key"] != teacher.entry.key for m in models):
        raise RuntimeError("distilled students listed for another teacher than the one obtained")
    by_key = {m.key: m for m in models}
    groups = [list(by_key)] if fused else [[key] for key in by_key]

    def train(folders: list[Path]) -> None:
        todo = [by_key[folder.name] for folder in folders]  # folder name = key
        first = todo[0]
        if len(todo) > 1:
            log.info(
                "distilled %s seed=%d T=%s: training %d students fused",
                first.recipe.name,
                first.seed,
                ",".join(f"{m.temperature:g}" for m in todo),
                len(todo),
            )
        items = [(folder, m.spec) for folder, m in zip(folders, todo, strict=True)]
        _train_and_store(shop, items, "distilled", first.recipe, teacher)

    trained_models = []
    for keys in groups:
        outcomes = shop.store.get_or_train(
            keys,
            train,
            descriptions=[
                _describe("distilled", by_key[k].recipe.name, by_key[k].seed, by_key[k].temperature)
                for k in keys
            ],
        )
        trained_models += [
            TrainedModel("distilled", entry, by_key[key].spec, trained)
            for key, (entry, trained) in zip(keys, outcomes, strict=True)
        ]
    return trained_models


def ensure_embedding(shop: Workshop, model: TrainedModel) -> None:
    """Role is not part of a model's key, and only models trained as teachers store their
    penultimate features: a model first trained in another role gets them computed now (every
    DDP rank takes part) and added to its predictions.npz, once."""
    path = model.entry.predictions_path

    def stored() -> bool:
        with np.load(path) as f:
            return "embedding" in f.files

    if distributed.from_main(stored):
        return
    with shop.store.locks([model.entry.key]):
        if distributed.from_main(stored):  # another job added them while we waited
            return
        log.info("%s: computing its features for individual fairness", model.entry.folder)
        network = load_model(model.entry, model.spec["arch"])
        features = _predict(shop, network, with_embedding=True).embedding

        def add() -> None:
            predictions = Predictions.load(path)
            predictions.embedding = features
            model.entry.replace_predictions(predictions)  # atomic, with its checksum

        distributed.from_main(add)


def _train_and_store(
    shop: Workshop,
    items: list[tuple[Path, dict]],
    role: str,
    recipe: Recipe,
    teacher: TrainedModel | None,
) -> None:
    """Train the models of `items` (store folder, spec) together, then predict the test split
    with each and write its store entry."""
    started = time.perf_counter()
    teacher_network = load_model(teacher.entry, teacher.spec["arch"]) if teacher else None
    runs = []
    for folder, spec in items:
        torch.manual_seed(spec["seed"])  # the model's initial weights, as if trained alone
        kd = {k: v for k, v in spec.get("distill", {}).items() if k != "teacher_key"}
        runs.append(
            Run(
                build_model(recipe.arch),
                Distillation(teacher_network, **kd) if teacher else None,
                folder / "train.ckpt",
                f"{role}[{folder.name}]",
            )
        )
    fit_many(
        runs,
        shop.data,
        build_optimizer(recipe.optim["optimizer"]),
        recipe.schedule(items[0][1]["batch_size"]),
        seed=items[0][1]["seed"],
        device=shop.device,
        speed=shop.speed,
        eval_every_epoch=shop.eval_every_epoch,
        keep=shop.keep,
    )
    for (folder, spec), run in zip(items, runs, strict=True):
        # Teachers store their features (individual fairness's space); a model first trained in
        # another role gets them from ensure_embedding if it is ever a reference teacher.
        predictions = _predict(shop, run.model, with_embedding=role == "teacher")
        entry = _entry(shop, spec, role, run, predictions, time.perf_counter() - started)
        # Rank 0 writes; a failure there (a full disk) is raised on every rank, none waiting.
        distributed.from_main(partial(shop.store.write, folder, entry))


def _predict(shop: Workshop, network: torch.nn.Module, *, with_embedding: bool) -> Predictions:
    """The test split's predictions (every DDP rank predicts its shard)."""
    return predict(
        network,
        shop.data,
        device=shop.device,
        amp=shop.speed.amp,
        batch_size=shop.eval_batch_size,
        with_embedding=with_embedding,
    )


def _entry(shop: Workshop, spec, role, run: Run, predictions: Predictions, seconds) -> Entry:
    y_true, y_pred = predictions.y_true, predictions.y_pred
    metrics = {
        "accuracy": accuracy(y_true, y_pred),
        "per_class_accuracy": per_class_accuracy(y_true, y_pred, shop.data.num_classes).tolist(),
        "class_names": shop.data.class_names,
        "dataset_info": shop.data.info,
        "train_seconds": seconds,
        # the epoch whose weights were kept: the last, or the best on validation
        "kept_epoch": run.best.epoch if run.best is not None else len(run.history),
        "processes": distributed.world_size(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return Entry(spec, role, run.model.state_dict(), predictions, metrics, run.history)


def _describe(role: str, arch: str, seed: int, temperature: float | None = None) -> str:
    return f"{role} {arch} seed={seed}" + (f" T={temperature:g}" if temperature is not None else "")
