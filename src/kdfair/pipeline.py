"""run(cfg): the study of one seed, in the order of the paper's method section.

1. check the config and turn it into typed settings (nothing below reads the config);
2. build the dataset and the workshop every model of the job shares;
3. get the teacher, the non-distilled student (the distilled student's architecture, hard labels
   only) and one distilled student per temperature from the model store, training and storing
   each that is missing (with its test predictions, predicted once);
4. measure accuracy, group fairness (DPD, EOD per protected attribute) and individual fairness
   from the saved predictions, and append one row per model to outputs/<experiment>/results.csv.
"""

from __future__ import annotations

import pandas as pd
import torch
from omegaconf import DictConfig

from kdfair import distributed
from kdfair.checkpoints import check_keep
from kdfair.data import Split
from kdfair.factories import build_dataset
from kdfair.jobmodels import JobModel, epochs_to_train, job_models
from kdfair.measure import TrainedModel, check_input_space, record
from kdfair.objectives import check_stages
from kdfair.progress import JobProgress
from kdfair.provision import Workshop, ensure_embedding, obtain, obtain_distilled
from kdfair.settings import Settings, resolve_device, switch
from kdfair.speed import Speed, use_deterministic
from kdfair.store import ModelStore
from kdfair.tracking import Tracker, job_tracker
from kdfair.validate import validate


def run(cfg: DictConfig) -> pd.DataFrame:
    """Train (or reuse) every model of one job and append their rows to results.csv."""
    settings = validate(cfg)
    shop = workshop(settings, tracked=True)  # an unreachable tracker stops the job here
    needed = job_models(settings, distributed.world_size())  # the one list (plan reads it too)
    job = JobProgress(
        models=len(needed.trained()),
        # every rank (store.find is collective)
        epochs_left=epochs_to_train(needed.trained(), shop.store),
    )
    with shop.tracker:  # its runs still open at the end: finished, or failed with the job
        teacher = obtain(shop, needed.teacher)
        job.done(epochs_trained=trained_epochs([teacher]))
        student = obtain(shop, needed.student)
        job.done(epochs_trained=trained_epochs([student]))
        distilled = obtain_distilled(shop, teacher, needed.distilled, fused=settings.distill.fused)
        job.done(len(distilled), epochs_trained=trained_epochs(distilled))

        reference = reference_teacher(shop, needed.reference, teacher)  # every DDP rank too
        models = [teacher, student, *distilled]
        # Rank 0 measures and writes; the other ranks wait for it (and get its summary or error).
        rows = distributed.from_main(
            lambda: record(settings, shop.data, models, teacher, reference)
        )
        shop.tracker.results(rows)  # final accuracy and fairness: copies of the rows
    return rows


def trained_epochs(models: list[TrainedModel]) -> int:
    """Epochs the job trained for `models` (none for a model found in the store)."""
    return sum(int(m.spec["optim"]["epochs"]) for m in models if m.trained_now)


def workshop(
    settings: Settings, *, on_divergence: str = "raise", tracked: bool = False
) -> Workshop:
    """The device (under torchrun: this rank's), the dataset and the model store of a job
    (`on_divergence`: "stop" where a diverging model is a result, as in kdfair tune), and with
    `tracked` the experiment tracker of `logger` (rank 0's), reached before the data is built."""
    hardware = settings.hardware
    if hardware.threads:
        torch.set_num_threads(int(hardware.threads))
    device, amp = resolve_device(hardware.device, hardware.amp)
    use_deterministic(hardware.deterministic)  # before the first CUDA kernel (cuBLAS's workspace)
    device = distributed.setup(device)  # under torchrun: this rank's device, group joined
    tracker = job_tracker(settings) if tracked and distributed.is_main() else Tracker()
    distributed.local_batch_size(settings.batch_size)  # fails early if it cannot split
    data = distributed.main_first(lambda: build_dataset(settings.dataset))  # one download
    check_input_space(settings.individual, data)  # before anything trains
    check_keep(settings.checkpoint, data)  # before anything trains
    if settings.distill.method == "at":  # its stage names, before anything trains
        pairs = settings.distill.options["at"]["pairs"]
        check_stages(settings.teacher.arch, settings.student.arch, pairs)
    in_memory = isinstance(data.train, Split)
    if switch(hardware.data_on_device, auto=device.type == "cuda" and in_memory):
        data = data.train_on(device)  # uint8 on the GPU: batches cut and augmented there
    return Workshop(
        data=data,
        store=ModelStore(settings.paths.models),
        device=device,
        speed=Speed(
            amp=amp,
            # faster on CUDA and on CPU alike (benchmarks/RESULTS.md)
            channels_last=switch(hardware.channels_last, auto=data.modality == "image"),
            compile=hardware.compile,
            deterministic=hardware.deterministic,
        ),
        eval_batch_size=int(settings.evaluation["batch_size"]),
        eval_every_epoch=bool(settings.evaluation["every_epoch"]),
        keep=settings.checkpoint,
        on_divergence=on_divergence,
        tracker=tracker,
    )


def reference_teacher(
    shop: Workshop, reference: JobModel | None, teacher: TrainedModel
) -> TrainedModel | None:
    """The teacher whose features define individual fairness's neighbourhoods: that of seed
    `eval.individual.reference_seed`, whatever this job's seed (None when not needed)."""
    if reference is None:
        return None
    found = teacher if reference.key == teacher.entry.key else obtain(shop, reference)
    ensure_embedding(shop, found)  # a model first trained in another role has none yet
    return found
