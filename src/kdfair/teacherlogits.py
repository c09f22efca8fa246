"""The frozen teacher's outputs for the batches a distilled student trains on.

Its logits are computed once for the whole training split when the stream is deterministic (no
augmentation), else live, batch by batch; `fit_many` asks once per batch and shares them between
fused students. Attention transfer also needs the teacher's stage activations, which are never
cached: when a run asks for them the teacher runs every batch (its logits still come from the
cache where there is one, so a KD student fused with an AT student sees what it would alone).
Always in float32, outside bf16 autocast (`amp`): the soft targets softmax(z_t / T) carry the
small logit differences KD transfers, which bf16's 8-bit mantissa (about 0.4% of a logit) would
round away; only the students' own forward runs under autocast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from kdfair import distributed
from kdfair.data import DataBundle
from kdfair.speed import Speed, formatted

if TYPE_CHECKING:
    from kdfair.training import Distillation


class TeacherLogits:
    """The frozen teacher's logits (and, if asked, stage activations) for a training batch.

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
        stages: Sequence[str] = (),
    ):
        from kdfair.objectives import Activations  # objectives imports controls and losses

        self.teacher = distillation.teacher.to(device).eval().requires_grad_(False)
        if speed.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        self.device, self.speed, self.data = device, speed, data
        self.batch_size = max(batch_size, 256)
        self.num_classes = data.num_classes
        self.training_size = len(data.train)
        self.stages = Activations(self.teacher, stages, "teacher") if stages else None
        self.cache: torch.Tensor | None = None
        if data.deterministic_train_stream:
            # Each DDP process computes a contiguous shard; the shards are gathered.
            mine = distributed.contiguous_shard(len(data.train))
            self.cache = distributed.gather_rows(self._in_order(mine))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # float32: no autocast (module docstring)
            return self.teacher(x).float()

    def _in_order(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """The logits of the training split's un-augmented images (or of `indices`), in order."""
        batches = self.data.train_batches_in_order(
            self.batch_size, device=self.device, indices=indices
        )
        chunks = [self._forward(formatted(x, self.speed)) for x in batches]
        empty = torch.zeros(0, self.num_classes, device=self.device)
        return torch.cat(chunks) if chunks else empty

    def training_logits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the whole un-augmented training split, in split order."""
        logits = self.cache if self.cache is not None else self._in_order()
        return logits, self.data.train.labels.to(logits.device)

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        live = None
        if self.stages is not None or self.cache is None:
            live = self._forward(x)
        if self.cache is not None:
            return self.cache[index.to(self.cache.device, non_blocking=True)]
        return live

    def activations(self, names: Sequence[str]) -> list[torch.Tensor]:
        """The teacher's outputs at the stages `names` for the batch of the last call."""
        kept = self.stages.outputs
        return [kept[name] for name in names]
