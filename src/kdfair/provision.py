"""The models a job needs: found in the model store, or trained now and stored.

`obtain` returns one teacher or non-distilled student of the job's list of models
(kdfair.jobmodels), `obtain_distilled` its distilled students and `obtain_group` any group of
models of one kind (with `fused`, the missing ones train together: one data stream and one teacher
forward pass per batch, one optimiser each, so `kdfair tune`'s trials at several learning rates
train as one). Either way the
store's `get_or_train` does the locking and re-checking, so concurrent jobs train a model once.
`ensure_embedding` gives a stored model the penultimate features individual fairness needs,
whatever role it was first trained for.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from kdfair.predict import predict
from kdfair.predictions import Predictions
from kdfair.speed import Speed, describe_numerics, numerics
from kdfair.store import Entry, ModelStore, StoredModel
from kdfair.tracking import Tracker
from kdfair.training import Distillation, Run, fit_many

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
    on_divergence: str = "raise"  # "stop": a diverging model's training ends (kdfair tune)
    tracker: Tracker = field(default_factory=Tracker)  # logger=...: a run per model; none: no-op


def obtain(shop: Workshop, model: JobModel) -> TrainedModel:
    """The teacher or non-distilled student `model`, trained if not stored."""
    (found,) = obtain_group(shop, [model], fused=False)
    return found


def obtain_distilled(
    shop: Workshop, teacher: TrainedModel, models: Sequence[JobModel], *, fused: bool
) -> list[TrainedModel]:
    """The distilled students `models` of `teacher`, trained (fused when `fused`) if not
    stored."""
    if any(m.spec["distill"]["teacher_key"] != teacher.entry.key for m in models):
        raise RuntimeError("distilled students listed for another teacher than the one obtained")
    return obtain_group(shop, models, teacher=teacher, fused=fused)


def obtain_group(
    shop: Workshop,
    models: Sequence[JobModel],
    *,
    teacher: TrainedModel | None = None,
    fused: bool = True,
) -> list[TrainedModel]:
    """`models` (all distilled from `teacher`, or all trained on hard labels), each trained if
    not stored; with `fused`, the missing ones train together on one data stream, each with its
    own optimiser (so they may differ in learning rate), as if trained alone."""
    by_key = {m.key: m for m in models}
    groups = [list(by_key)] if fused else [[key] for key in by_key]

    def train(folders: list[Path]) -> None:
        todo = [by_key[folder.name] for folder in folders]  # folder name = key
        if len(todo) > 1:
            first = todo[0]
            log.info(
                "%s %s seed=%d: training %d models fused (%s)",
                first.role,
                first.recipe.name,
                first.seed,
                len(todo),
                ", ".join(_describe_short(m) for m in todo),
            )
        _train_and_store(shop, list(zip(folders, todo, strict=True)), teacher)

    found = []
    for keys in groups:
        outcomes = shop.store.get_or_train(
            keys, train, descriptions=[_describe(by_key[k]) for k in keys]
        )
        for key, (entry, trained) in zip(keys, outcomes, strict=True):
            model = by_key[key]
            if not trained:
                _check_numerics(shop, entry.metrics.get("numerics"), _describe(model))
                _track_reuse(shop, model, entry, teacher)
            found.append(TrainedModel(model.role, entry, model.spec, trained, model.chosen))
    return found


def _check_numerics(shop: Workshop, recorded: dict | None, description: str) -> None:
    """A reused model trained at another precision than this job's (bf16 autocast against
    float32) is said aloud: the key names the recipe, not the precision (docs/design.md
    section 4), so one study could otherwise mix the two unawares."""
    here = numerics(shop.device, shop.speed)
    if distributed.is_main() and recorded is not None and recorded.get("amp") != here["amp"]:
        log.warning(
            "%s: reusing a model trained in %s; this job trains in %s (amp=%s)",
            description,
            describe_numerics(recorded),
            describe_numerics(here),
            "true" if shop.speed.amp else "false",
        )


def _track_reuse(
    shop: Workshop, model: JobModel, entry: StoredModel, teacher: TrainedModel | None
) -> None:
    """A model found in the store gets no second tracker run: its run is tagged as reused, or
    created from the store if it has none, under the model's lock so two jobs create one."""
    if shop.tracker.enabled:
        with shop.store.locks([model.key]):
            shop.tracker.reused(model, entry, teacher.spec if teacher else None)


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
    shop: Workshop, items: list[tuple[Path, JobModel]], teacher: TrainedModel | None
) -> None:
    """Train the models of `items` (store folder, model) together, then predict the test split
    with each and write its store entry."""
    started = time.perf_counter()
    first = items[0][1]
    schedules = {json.dumps(vars(m.recipe.schedule(first.spec["batch_size"]))) for _, m in items}
    if len(schedules) > 1:  # one data stream steps every model's schedule alike
        raise RuntimeError("models trained fused must share one schedule")
    teacher_network = load_model(teacher.entry, teacher.spec["arch"]) if teacher else None
    runs = []
    for folder, model in items:
        torch.manual_seed(model.seed)  # the model's initial weights, as if trained alone
        kd = {k: v for k, v in model.spec.get("distill", {}).items() if k != "teacher_key"}
        runs.append(
            Run(
                build_model(model.recipe.arch),
                Distillation(teacher_network, **kd) if teacher else None,
                folder / "train.ckpt",
                f"{model.role}[{folder.name}]",
                make_optimizer=build_optimizer(model.recipe.optim["optimizer"]),
                on_epoch=shop.tracker.training(model, teacher.spec if teacher else None),
            )
        )
    fit_many(
        runs,
        shop.data,
        None,
        first.recipe.schedule(first.spec["batch_size"]),
        seed=first.seed,
        device=shop.device,
        speed=shop.speed,
        eval_every_epoch=shop.eval_every_epoch,
        keep=shop.keep,
        on_divergence=shop.on_divergence,
    )
    for (folder, model), run in zip(items, runs, strict=True):
        # Teachers store their features (individual fairness's space); a model first trained in
        # another role gets them from ensure_embedding if it is ever a reference teacher.
        predictions = _predict(shop, run.model, with_embedding=model.role == "teacher")
        seconds = time.perf_counter() - started
        entry = _entry(shop, model.spec, model.role, run, predictions, seconds)
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
        "diverged": run.diverged,
        "processes": distributed.world_size(),
        # device kind, autocast dtype, deterministic algorithms: not in the key, so recorded
        "numerics": numerics(shop.device, shop.speed),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return Entry(spec, role, run.model.state_dict(), predictions, metrics, run.history)


def _describe(model: JobModel) -> str:
    return f"{model.role} {model.recipe.name} seed={model.seed} " + _describe_short(model)


def _describe_short(model: JobModel) -> str:
    t = model.temperature
    return (f"T={t:g} " if t is not None else "") + f"lr={model.lr:g}"
