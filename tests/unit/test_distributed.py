"""DDP's data split, checked without a process group: ranks' batches make up the one-process
batches exactly (same images, same augmentation), as DistributedSampler would split them; and
the GPU-resident training split, which must give the CPU's batches."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import DistributedSampler

from kdfair.data import DataBundle, Split
from kdfair.data.transforms import Augmentation
from kdfair.distributed import (
    contiguous_shard,
    export_slurm_ranks,
    local_batch_size,
    shard_positions,
)
from kdfair.errors import KdfairError

CPU = torch.device("cpu")
TORCHRUN_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _bundle(n: int, augmentation: Augmentation) -> DataBundle:
    images = torch.randint(0, 256, (n, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    split = Split(images.to(torch.uint8), torch.arange(n) % 10)
    return DataBundle(
        name="toy",
        train=split,
        test=split,
        num_classes=10,
        class_names=[str(c) for c in range(10)],
        attribute_groups={},
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        augmentation=augmentation,
    )


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 4), (100, 3)])
def test_shard_positions_are_distributed_samplers_split(n, world):
    dataset = list(range(n))
    for rank in range(world):
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
        assert shard_positions(n, rank, world).tolist() == list(sampler)


@pytest.mark.parametrize("augmentation", [Augmentation(0, False), Augmentation(2, True)])
def test_two_ranks_batches_together_are_the_one_process_batches(augmentation):
    data = _bundle(96, augmentation)
    alone = list(data.train_batches(32, seed=3, epoch=1, device=CPU))
    ranks = [
        list(data.train_batches(32, seed=3, epoch=1, device=CPU, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(alone) == 3
    for step, (x, y, index) in enumerate(alone):
        (x0, y0, i0), (x1, y1, i1) = ranks[0][step], ranks[1][step]
        assert len(i0) == len(i1) == 16
        together = torch.cat([i0, i1])
        order = together.argsort()
        assert torch.equal(together[order], index.sort().values)
        assert torch.equal(torch.cat([x0, x1])[order], x[index.argsort()])  # same augmentation
        assert torch.equal(torch.cat([y0, y1])[order], y[index.argsort()])


def test_the_global_batch_must_split_evenly_between_processes(monkeypatch):
    monkeypatch.setattr("kdfair.distributed.world_size", lambda: 4)
    assert local_batch_size(128) == 32
    with pytest.raises(KdfairError, match="batch_size=130 does not split over 4 processes"):
        local_batch_size(130)


def test_contiguous_shards_cover_the_test_split_once(monkeypatch):
    monkeypatch.setattr("kdfair.distributed.world_size", lambda: 4)
    parts = []
    for r in range(4):
        monkeypatch.setattr("kdfair.distributed.rank", lambda r=r: r)
        parts.append(contiguous_shard(10))
    assert [len(p) for p in parts] == [3, 3, 2, 2]
    assert torch.cat(parts).tolist() == list(range(10))


def test_a_multi_task_slurm_job_becomes_torchrun_ranks(monkeypatch):
    environ = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARIABLES}
    environ.update(
        SUBMITIT_EXECUTOR="slurm",
        SLURM_JOB_ID="4242",
        SLURM_NTASKS="8",
        SLURM_PROCID="5",
        SLURM_LOCALID="1",
        SLURM_NODEID="1",
        SLURM_JOB_NUM_NODES="2",
        SLURM_JOB_NODELIST="gpu[07-08]",
    )
    monkeypatch.setattr(os, "environ", environ)  # the test's own copy: nothing leaks out
    export_slurm_ranks()
    assert (environ["RANK"], environ["WORLD_SIZE"], environ["LOCAL_RANK"]) == ("5", "8", "1")
    assert environ["MASTER_ADDR"] == "gpu07"  # the job's first node hosts the rendezvous


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_training_split_on_the_gpu_gives_the_cpu_batches():
    data = _bundle(96, Augmentation(4, True))
    cuda = torch.device("cuda")
    on_gpu = data.train_on(cuda)
    assert on_gpu.train.images.device.type == "cuda"
    for (x, y, i), (xg, yg, ig) in zip(
        data.train_batches(32, seed=0, epoch=2, device=CPU),
        on_gpu.train_batches(32, seed=0, epoch=2, device=cuda),
        strict=True,
    ):
        assert torch.equal(i, ig) and torch.equal(y, yg.cpu())
        torch.testing.assert_close(xg.cpu(), x)  # cut, augmented and normalised on the GPU
