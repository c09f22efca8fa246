"""How models run, not what they learn: the CUDA fast path's switches (docs/design.md section 6).

`Speed` (amp, channels_last, compile; kept out of model keys), the bf16 `autocast` that training,
the teacher-logit cache and prediction share, and image batches in the models' memory format.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Speed:
    """How the models run, not what they learn (kept out of model keys).

    amp: bf16 autocast (CUDA only); channels_last: NHWC memory format for image models and their
    batches (faster convolutions: tensor cores on CUDA, oneDNN on CPU, where ResNet-20 trains
    about 25% faster); compile: torch.compile each trained model.
    """

    amp: bool = False
    channels_last: bool = False
    compile: bool = False


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp`; a no-op elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def formatted(x: torch.Tensor, speed: Speed) -> torch.Tensor:
    """An image batch in the models' memory format (NHWC under channels_last)."""
    if speed.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x
