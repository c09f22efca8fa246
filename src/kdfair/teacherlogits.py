"""The frozen teacher's logits for the batches a distilled student trains on.

Computed once for the whole training split when the stream is deterministic (no augmentation),
else live, batch by batch; `fit_many` asks once per batch and shares them between fused students.
Always in float32, outside bf16 autocast (`amp`): the soft targets softmax(z_t / T) carry the
small logit differences KD transfers, which bf16's 8-bit mantissa (about 0.4% of a logit) would
round away; only the students' own forward runs under autocast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from kdfair import distributed
from kdfair.data import DataBundle
from kdfair.speed import Speed, formatted

if TYPE_CHECKING:
    from kdfair.training import Distillation


class TeacherLogits:
    """The frozen teacher's logits for a training batch.

    When the training stream has no augmentation the teacher sees the same image every epoch, so
    its logits are computed once for the whole training split and looked up by index afterwards:
    the teacher's forward, the dominant cost of distilling a small student, is paid once.
    """

    def __init__(
        self,
        distillation: Distillation,
        data: DataBundle,
        device: torch.device,
        speed: Speed,
        batch_size: int,
    ):
        self.teacher = distillation.teacher.to(device).eval().requires_grad_(False)
        if speed.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        self.device = device
        self.cache: torch.Tensor | None = None
        if data.deterministic_train_stream:
            # Each DDP process computes a contiguous shard; the shards are gathered.
            mine = distributed.contiguous_shard(len(data.train))
            batches = data.train_batches_in_order(max(batch_size, 256), device=device, indices=mine)
            with torch.no_grad():  # float32: no autocast (module docstring)
                chunks = [self.teacher(formatted(x, speed)).float() for x in batches]
            num_classes = data.num_classes
            local = torch.cat(chunks) if chunks else torch.zeros(0, num_classes, device=device)
            self.cache = distributed.gather_rows(local)

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[index.to(self.cache.device, non_blocking=True)]
        with torch.no_grad():  # float32: no autocast (module docstring)
            return self.teacher(x).float()
