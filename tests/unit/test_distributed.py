"""DDP's data split, checked without a process group: ranks' batches make up the one-process
batches exactly (same images, same augmentation), as DistributedSampler would split them; and
the GPU-resident training split, which must give the CPU's batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from kdfair.data import DataBundle, Split
from kdfair.data.inputs import ImageInputs
from kdfair.data.transforms import Augmentation
from kdfair.distributed import (
    contiguous_shard,
    export_slurm_ranks,
    from_main,
    gather_rows,
    local_batch_size,
    main_first,
    shard_positions,
    sum_across,
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
        input_kind=ImageInputs((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), augmentation),
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


def test_a_split_that_does_not_divide_pads_the_last_batch_like_distributed_sampler():
    data = _bundle(97, Augmentation(2, True))
    alone = list(data.train_batches(32, seed=0, epoch=0, device=CPU))
    ranks = [
        list(data.train_batches(32, seed=0, epoch=0, device=CPU, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(alone) == 4  # the same steps per epoch
    for step in range(3):  # full batches: exactly the one-process batches
        together = torch.cat([ranks[0][step][2], ranks[1][step][2]])
        assert torch.equal(together.sort().values, alone[step][2].sort().values)
    # The last: the one example left (position 96) plus the epoch's first example again
    # (position 0, wrapped around), so both processes take one.
    last_alone = alone[3][2]
    first_of_epoch = alone[0][2][0]
    (_, _, i0), (_, _, i1) = ranks[0][3], ranks[1][3]
    assert len(last_alone) == 1 and i0.tolist() == last_alone.tolist()
    assert i1.tolist() == [first_of_epoch.item()]


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
    assert on_gpu.train.inputs.device.type == "cuda"
    for (x, y, i), (xg, yg, ig) in zip(
        data.train_batches(32, seed=0, epoch=2, device=CPU),
        on_gpu.train_batches(32, seed=0, epoch=2, device=cuda),
        strict=True,
    ):
        assert torch.equal(i, ig.cpu()) and torch.equal(y, yg.cpu())
        assert yg.device.type == ig.device.type == "cuda"  # moved once per epoch, sliced per step
        torch.testing.assert_close(xg.cpu(), x)  # cut, augmented and normalised on the GPU


def _collectives(rank: int, world: int, init_file: str, out_dir: str) -> None:
    """One gloo rank of `test_collectives_across_two_processes`."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        flag = Path(out_dir) / "main-was-first"
        rows = torch.arange(6.0).reshape(3, 2) + 10 * rank
        out = {
            # rank 0 has nothing to send (a test split smaller than the number of processes),
            # not even the row shape; rank 1 has three rows
            "gathered": gather_rows(rows if rank else torch.zeros(0)),
            "sum": sum_across([rank + 1.0, 2.0]),
            "from_main": from_main(lambda: f"decided by rank {rank}"),
            "main_first": main_first(lambda: flag.touch() if rank == 0 else flag.exists()),
        }
        try:
            from_main(lambda: (_ for _ in ()).throw(KdfairError(f"only rank {rank} saw this")))
        except KdfairError as e:
            out["error"] = str(e)
        torch.save(out, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # neither rank closes its connections while the other still uses them
    finally:
        dist.destroy_process_group()


def test_collectives_across_two_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_collectives, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        out = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(out["gathered"], torch.arange(6.0).reshape(3, 2) + 10)
        assert out["sum"] == [3.0, 4.0]
        assert out["from_main"] == "decided by rank 0"
        assert out["error"] == "only rank 0 saw this"  # raised on every rank, not only rank 0
    assert torch.load(tmp_path / "rank1.pt")["main_first"] is True  # rank 0 had finished


def test_a_hydra_launcher_under_torchrun_is_refused_with_the_alternative(monkeypatch, capsys):
    from kdfair.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "-m", "hydra/launcher=parallel", "seed=0,1"]) == 2
    error = capsys.readouterr().err
    assert "cannot run under torchrun" in error and "hydra/launcher=slurm" in error
