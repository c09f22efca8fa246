"""run(cfg): the study of one seed, in the order of the paper's method section.

1. check the config; 2. build the dataset; 3. get (or train) the teacher, the non-distilled
student (same architecture as the distilled one, hard labels only) and one distilled student per
temperature from the model store, each saving its test predictions once, when trained;
4. measure accuracy, group fairness (DPD, EOD per protected attribute) and individual fairness
from the saved predictions; 5. append one row per model to outputs/<experiment>/results.csv.

Configs become objects in kdfair.factories (the only caller of hydra's instantiate); below this
module everything takes typed values.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from kdfair import distributed
from kdfair.data import Split
from kdfair.factories import (
    build_dataset,
    build_model,
    build_optimizer,
    dataset_spec,
    load_model,
)
from kdfair.measure import (
    TrainedModel,
    check_input_space,
    neighbourhood,
    recipes_of,
    result_row,
)
from kdfair.metrics.accuracy import accuracy, per_class_accuracy
from kdfair.metrics.individual import Neighbourhood
from kdfair.predict import Predictions, predict
from kdfair.results import append_results
from kdfair.schedule import Schedule, scaled_milestones
from kdfair.store import Entry, ModelStore, model_key
from kdfair.training import Distillation, Run, Speed, fit_many, resolve_device, switch
from kdfair.validate import temperatures, validate

log = logging.getLogger(__name__)

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


def run(cfg: DictConfig) -> pd.DataFrame:
    """Train (or reuse) every model of one job and append their rows to results.csv."""
    validate(cfg)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device, amp = resolve_device(str(cfg.device), cfg.amp)
    device = distributed.setup(device)  # under torchrun: this rank's device, process group joined
    distributed.local_batch_size(int(cfg.dataset.batch_size))  # fails early if it cannot split
    data = distributed.main_first(lambda: build_dataset(cfg.dataset))  # one download, one cache
    check_input_space(OmegaConf.to_container(cfg.eval.individual), data)  # before training
    speed = Speed(
        amp=amp,
        # faster on CUDA and on CPU alike (benchmarks/RESULTS.md)
        channels_last=switch(cfg.speed.channels_last, auto=data.modality == "image"),
        compile=bool(cfg.speed.compile),
    )
    in_memory = isinstance(data.train, Split)
    if switch(cfg.speed.data_on_device, auto=device.type == "cuda" and in_memory):
        data = data.train_on(device)  # uint8 on the GPU: batches cut and augmented there
    store = ModelStore(cfg.paths.models)
    common = {"dataset": dataset_spec(cfg.dataset), "batch_size": int(cfg.dataset.batch_size)}
    if distributed.world_size() > 1:
        # BatchNorm statistics (per process) and streamed augmentation (seeded per process)
        # depend on the process count: a DDP-trained model is not the one-process model.
        common["processes"] = distributed.world_size()
    job = _Job(cfg, data, store, device, speed, common)

    teacher_seed = cfg.seed if cfg.distill.teacher_seed is None else cfg.distill.teacher_seed
    teacher = job.get_or_train("teacher", cfg.teacher, cfg.teacher_optim, teacher_seed)
    student = job.get_or_train("student", cfg.student, cfg.student_optim, cfg.seed)
    distilled = job.get_or_train_distilled(teacher, temperatures(cfg))

    models = [teacher, student, *distilled]
    reference = job.reference_teacher(teacher)  # may train one: every DDP rank takes part
    if reference is not None:
        job.ensure_embedding(reference)  # a model first trained in another role has none yet
    # Rank 0 measures and writes; the other ranks wait for it (and get its summary or error).
    return distributed.from_main(lambda: record(cfg, job, models, teacher, reference))


def record(
    cfg: DictConfig,
    job: _Job,
    models: list[TrainedModel],
    teacher: TrainedModel,
    reference: TrainedModel | None,
) -> pd.DataFrame:
    """Measure every model of the job from its saved predictions, append the rows (and their
    recipes) to results.csv and log the one-screen summary."""
    evaluation = OmegaConf.to_container(cfg.eval, resolve=True)
    pairs = job.neighbourhood(reference)
    rows = [
        result_row(
            m,
            teacher,
            experiment=cfg.experiment,
            dataset=cfg.dataset.name,
            num_classes=job.data.num_classes,
            evaluation=evaluation,
            neighbourhood=pairs,
            outputs=Path(cfg.paths.outputs),
        )
        for m in models
    ]
    results_path = Path(cfg.paths.experiment) / "results.csv"
    append_results(results_path, rows, recipes_of(models, teacher, evaluation))
    summary = pd.DataFrame(rows).drop(columns=SUMMARY_HIDDEN)
    summary["status"] = ["trained" if m.trained_now else "reused" for m in models]
    log.info(
        "Results of this job (appended to %s):\n%s",
        results_path,
        summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"),
    )
    return summary


class _Job:
    """What every model of one job shares: config, data, store, device."""

    def __init__(self, cfg, data, store, device, speed: Speed, common):
        self.cfg, self.data, self.store = cfg, data, store
        self.device, self.speed, self.common = device, speed, common

    def spec(
        self,
        role: str,
        arch: DictConfig,
        optim: DictConfig,
        seed: int,
        teacher: TrainedModel | None,
        temperature: float | None,
    ) -> dict:
        spec = {
            **self.common,
            "objective": "kd" if teacher else "ce",
            "seed": int(seed),
            "arch": OmegaConf.to_container(arch, resolve=True),
            "optim": OmegaConf.to_container(optim, resolve=True),
        }
        if teacher is not None:
            spec["distill"] = {
                "teacher_key": teacher.entry.key,
                "temperature": temperature,
                "alpha": float(self.cfg.distill.alpha),
                "t_squared": bool(self.cfg.distill.t_squared),
            }
        return spec

    def get_or_train(
        self,
        role: str,
        arch: DictConfig,
        optim: DictConfig,
        seed: int,
        *,
        teacher: TrainedModel | None = None,
        temperature: float | None = None,
    ) -> TrainedModel:
        spec = self.spec(role, arch, optim, seed, teacher, temperature)
        ((entry, trained),) = self.store.get_or_train(
            [model_key(spec)],
            lambda folders: self.train_into([(folders[0], spec)], role, arch, optim, teacher),
            descriptions=[_describe(role, arch.name, seed, temperature)],
        )
        return TrainedModel(role, entry, spec, trained)

    def get_or_train_distilled(
        self, teacher: TrainedModel, temps: list[float]
    ) -> list[TrainedModel]:
        """One distilled student per temperature. With distill.fused, the missing ones train
        together: one data stream and one teacher forward pass per batch for all of them."""
        arch, optim, seed = self.cfg.student, self.cfg.student_optim, self.cfg.seed
        if not self.cfg.distill.fused:
            return [
                self.get_or_train("distilled", arch, optim, seed, teacher=teacher, temperature=t)
                for t in temps
            ]
        specs = {
            model_key(s): s
            for s in (self.spec("distilled", arch, optim, seed, teacher, t) for t in temps)
        }

        def train(folders: list[Path]) -> None:
            todo = [(folder, specs[folder.name]) for folder in folders]  # folder name = key
            if len(todo) > 1:
                log.info(
                    "distilled %s seed=%d T=%s: training %d students fused",
                    arch.name,
                    seed,
                    ",".join(f"{s['distill']['temperature']:g}" for _, s in todo),
                    len(todo),
                )
            self.train_into(todo, "distilled", arch, optim, teacher)

        outcomes = self.store.get_or_train(
            list(specs),
            train,
            descriptions=[_describe("distilled", arch.name, seed, t) for t in temps],
        )
        return [
            TrainedModel("distilled", entry, spec, trained)
            for (entry, trained), spec in zip(outcomes, specs.values(), strict=True)
        ]

    def train_into(
        self,
        items: list[tuple[Path, dict]],
        role: str,
        arch: DictConfig,
        optim: DictConfig,
        teacher: TrainedModel | None,
    ) -> None:
        """Train the models of `items` (folder, spec) together and write each store folder,
        metrics.json last."""
        started = time.perf_counter()
        teacher_model = load_model(teacher.entry, teacher.spec["arch"]) if teacher else None
        runs = []
        for folder, spec in items:
            torch.manual_seed(spec["seed"])  # the model's initial weights, as if trained alone
            settings = {k: v for k, v in spec.get("distill", {}).items() if k != "teacher_key"}
            runs.append(
                Run(
                    build_model(arch),
                    Distillation(teacher_model, **settings) if teacher else None,
                    folder / "train.ckpt",
                    f"{role}[{folder.name}]",
                )
            )
        schedule = Schedule(
            epochs=int(optim.epochs),
            batch_size=items[0][1]["batch_size"],
            milestones=scaled_milestones(optim.milestones, optim.epochs, optim.reference_epochs),
            gamma=float(optim.gamma),
            kind=str(optim.schedule),
            warmup_epochs=float(optim.warmup_epochs),
        )
        fit_many(
            runs,
            self.data,
            build_optimizer(optim.optimizer),
            schedule,
            seed=items[0][1]["seed"],
            device=self.device,
            speed=self.speed,
            eval_every_epoch=bool(self.cfg.eval.every_epoch),
        )
        for (folder, spec), run in zip(items, runs, strict=True):
            self.write_entry(folder, spec, role, run, time.perf_counter() - started)

    def write_entry(self, folder: Path, spec: dict, role: str, run: Run, seconds: float) -> None:
        """Predict the test split (every DDP rank its shard) and write the store folder (rank 0),
        metrics.json last."""
        predictions = predict(
            run.model,
            self.data,
            device=self.device,
            amp=self.speed.amp,
            batch_size=int(self.cfg.eval.batch_size),
            with_embedding=role == "teacher",
        )
        # Rank 0 writes; a failure there (a full disk) is raised on every rank, none left waiting.
        distributed.from_main(
            lambda: self._write_files(folder, spec, role, run, predictions, seconds)
        )

    def _write_files(self, folder, spec, role, run, predictions, seconds) -> None:
        metrics = {
            "accuracy": accuracy(predictions.y_true, predictions.y_pred),
            "per_class_accuracy": per_class_accuracy(
                predictions.y_true, predictions.y_pred, self.data.num_classes
            ).tolist(),
            "class_names": self.data.class_names,
            "dataset_info": self.data.info,
            "train_seconds": seconds,
            "processes": distributed.world_size(),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        entry = Entry(spec, role, run.model.state_dict(), predictions, metrics, run.history)
        self.store.write(folder, entry)

    def reference_teacher(self, teacher: TrainedModel) -> TrainedModel | None:
        """The teacher whose features define individual fairness's neighbourhoods: that of seed
        `eval.individual.reference_seed`, whatever this job's seed (None when not needed)."""
        settings = self.cfg.eval.individual
        if not settings.enabled or settings.space != "teacher":
            return None
        if teacher.spec["seed"] == settings.reference_seed:
            return teacher
        return self.get_or_train(
            "teacher", self.cfg.teacher, self.cfg.teacher_optim, int(settings.reference_seed)
        )

    def ensure_embedding(self, model: TrainedModel) -> None:
        """Role is not part of a model's key, and only models trained as teachers store their
        penultimate features: a model first trained in another role gets them computed now
        (every DDP rank takes part) and added to its predictions.npz, once."""
        path = model.entry.predictions_path

        def stored() -> bool:
            with np.load(path) as f:
                return "embedding" in f.files

        if distributed.from_main(stored):
            return
        with self.store.locks([model.entry.key]):
            if distributed.from_main(stored):  # another job added them while we waited
                return
            log.info("%s: computing its features for individual fairness", model.entry.folder)
            features = predict(
                load_model(model.entry, model.spec["arch"]),
                self.data,
                device=self.device,
                amp=self.speed.amp,
                batch_size=int(self.cfg.eval.batch_size),
                with_embedding=True,
            ).embedding

            def add() -> None:
                predictions = Predictions.load(path)
                predictions.embedding = features
                predictions.save(path)  # atomic: readers see the old file or the new one

            distributed.from_main(add)

    def neighbourhood(self, reference: TrainedModel | None) -> Neighbourhood | None:
        """The pairs individual fairness is measured on, shared by every model of the experiment."""
        individual = OmegaConf.to_container(self.cfg.eval.individual, resolve=True)
        if not individual["enabled"]:
            return None
        test = self.data.test
        return neighbourhood(
            individual,
            reference_embedding=(
                Predictions.load(reference.entry.predictions_path).embedding
                if reference is not None
                else None
            ),
            test_inputs=test.inputs.numpy() if isinstance(test, Split) else None,
            dataset_name=self.data.name,
        )


def _describe(role: str, arch: str, seed: int, temperature: float | None) -> str:
    return f"{role} {arch} seed={seed}" + (f" T={temperature:g}" if temperature is not None else "")
