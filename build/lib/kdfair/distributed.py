"""Data-parallel training with torchrun (DDP): the few collectives kdfair needs.

`torchrun --nproc_per_node=N -m kdfair train ...` starts N copies of one job (so does a SLURM job
of the submitit launcher with N tasks; see `export_slurm_ranks`). Each copy (rank):
- joins the process group (NCCL on CUDA, gloo on CPU) and trains on its own GPU, cuda:LOCAL_RANK;
- draws the same epoch order and takes every N-th position of it (DistributedSampler's split) in
  batches of batch_size / N, so the N ranks together see the batches one process would (the last
  one padded with up to N-1 repeats when N does not divide the split, as DistributedSampler
  pads), and DistributedDataParallel averages their gradients: one step equals one
  single-process step up to float rounding and BatchNorm statistics, which are per rank (so the
  process count is part of a model's key);
- evaluates and predicts a contiguous shard of the test set; the shards are gathered, so every
  rank holds the whole predictions.
Only rank 0 writes files (model store, results.csv) and logs below WARNING. Whether a model is
already in the store is decided by rank 0 and broadcast (`from_main`), so every rank trains the
same models in the same order, and only rank 0 takes the store's file locks.

Without torchrun (WORLD_SIZE unset or 1) every function here is the one-process identity.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from kdfair.errors import KdfairError

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a rank waits at a collective. Long on purpose: while rank 0 waits for a store lock
# held by another job (a shared teacher in training), the other ranks wait at the next broadcast.
COLLECTIVE_TIMEOUT = timedelta(hours=24)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def export_slurm_ranks() -> None:
    """In a SLURM job of hydra's submitit launcher with several tasks (tasks_per_node x nodes,
    one per GPU), set the variables torchrun would (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
    MASTER_PORT) from SLURM's task layout, through submitit's own helper."""
    if "WORLD_SIZE" in os.environ or os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return
    if int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def setup(device: torch.device) -> torch.device:
    """Join the process group of torchrun (or of a multi-task SLURM job) once per process and
    return this rank's device.

    On CUDA each rank takes the GPU of its LOCAL_RANK, whatever `device` names.
    """
    export_slurm_ranks()
    if not launched_by_torchrun():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
        log.info("DDP: %d processes (%s), batches split across them", world_size(), backend)
    if rank() > 0:  # one rank speaks, the others only warn (again each job: hydra resets logging)
        logging.getLogger().setLevel(logging.WARNING)
    return device


def finish() -> None:
    """After a command's last job: meet the other ranks, then close the process group. A rank
    that exits while another still holds its connections can abort in gloo's teardown. Only on
    success: a rank exiting on an error of its own must exit at once, so torchrun stops the
    others."""
    if dist.is_initialized():
        gc.collect()  # DDP wrappers of finished models hold the process group: release them
        dist.barrier()
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def local_batch_size(batch_size: int) -> int:
    """Each rank's share of the global `batch_size` (the config's, the paper's)."""
    world = world_size()
    if batch_size % world:
        raise KdfairError(
            f"dataset.batch_size={batch_size} does not split over {world} processes: it is the "
            f"global batch, divided evenly between them. Use a multiple of {world}, or run "
            "torchrun with a --nproc_per_node that divides it."
        )
    return batch_size // world


def from_main(compute: Callable[[], T]) -> T:
    """`compute()` run on rank 0 only and its result (or its exception) given to every rank."""
    if world_size() == 1:
        return compute()
    box: list = [None]
    if is_main():
        try:
            box[0] = (compute(), None)
        except Exception as e:  # every rank must leave the broadcast, then all raise
            box[0] = (None, e)
    dist.broadcast_object_list(box, src=0)
    result, error = box[0]
    if error is not None:
        raise error
    return result


def main_first(compute: Callable[[], T]) -> T:
    """`compute()` on rank 0, then on the other ranks: for work that fills a shared folder
    (a download, a dataset cache) once. If rank 0 fails, every rank raises its error."""
    if world_size() == 1:
        return compute()
    if is_main():
        try:
            result = compute()
        except Exception as e:
            dist.broadcast_object_list([e], src=0)
            raise
        dist.broadcast_object_list([None], src=0)
        return result
    box: list = [None]
    dist.broadcast_object_list(box, src=0)
    if box[0] is not None:
        raise box[0]
    return compute()


def shard_positions(n: int, rank: int, world_size: int) -> torch.Tensor:
    """Positions 0..n-1 of an epoch order that `rank` trains on: DistributedSampler's split
    (wrap around to a multiple of `world_size`, then every `world_size`-th from `rank`)."""
    total = -(-n // world_size) * world_size
    return (torch.arange(total) % n)[rank::world_size]


def contiguous_shard(n: int) -> torch.Tensor:
    """This rank's contiguous block of indices 0..n-1 (for evaluation and prediction); the
    blocks of ranks 0, 1, ... differ in size by at most one and concatenate to 0..n-1."""
    return torch.tensor_split(torch.arange(n), world_size())[rank()]


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Every rank's `rows` concatenated in rank order, on every rank. Ranks may hold any number
    of rows, none included (a test split smaller than the number of processes); the trailing
    shape and dtype are taken from the ranks that have rows."""
    if world_size() == 1:
        return rows
    layouts: list = [None] * world_size()
    dist.all_gather_object(layouts, (len(rows), tuple(rows.shape[1:]), rows.dtype))
    filled = [layout for layout in layouts if layout[0] > 0]
    if not filled:
        return rows
    _, trailing, dtype = filled[0]
    longest = max(count for count, _, _ in layouts)
    on = torch.device("cuda", torch.cuda.current_device()) if _nccl() else torch.device("cpu")
    padded = torch.zeros((longest, *trailing), dtype=dtype, device=on)
    if len(rows):
        padded[: len(rows)] = rows.to(on, dtype)
    parts = [torch.empty_like(padded) for _ in layouts]
    dist.all_gather(parts, padded)
    gathered = torch.cat([part[:count] for part, (count, _, _) in zip(parts, layouts, strict=True)])
    return gathered.to(rows.device)


def _nccl() -> bool:
    return dist.get_backend() == "nccl"


def sum_across(values: list[float]) -> list[float]:
    """Element-wise sum of `values` over ranks."""
    if world_size() == 1:
        return list(values)
    total = torch.tensor(values, dtype=torch.float64, device="cuda" if _nccl() else "cpu")
    dist.all_reduce(total)
    return total.tolist()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in DistributedDataParallel when several processes train it, else itself."""
    if world_size() == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def sync_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank. DDP keeps parameters
    equal on all ranks, but each rank's last forward pass updates its own running statistics."""
    if world_size() == 1:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def seed_this_rank(seed: int) -> None:
    """Give each rank its own stream of the global RNG (dropout, stochastic layers); rank 0 keeps
    the one-process stream. Model weights are unaffected: DDP copies rank 0's at wrapping."""
    if rank() > 0:
        torch.manual_seed(seed * 1_000_003 + rank())
