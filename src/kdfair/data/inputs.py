"""What a dataset's inputs are, and what follows from it.

An input kind owns how a batch reaches the model (images: uint8 -> normalised float32; token ids:
as they are), how training batches are augmented (images: batched crop + flip; token ids: never),
and whether distances between raw inputs mean anything (`eval.individual.space=input`: between
pixels, yes; between token ids, no). Every `DataBundle` carries one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from kdfair.data.transforms import (
    Augmentation,
    CropFlip,
    apply_augmentation,
    draw_augmentation,
    normalize,
)


@dataclass(frozen=True)
class ImageInputs:
    """uint8 (N, C, H, W) images, normalised per channel on the way to the model:
    x -> (x / 255 - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    augmentation: Augmentation = field(default_factory=lambda: Augmentation(0, False))

    kind: ClassVar[str] = "image"
    # Pixels have a geometry: nearby images look alike, so input-space neighbourhoods are fair
    # game for individual fairness.
    distances_are_meaningful: ClassVar[bool] = True

    @property
    def augmented(self) -> bool:
        return not self.augmentation.is_identity

    def draw(self, n: int, generator: torch.Generator) -> CropFlip | None:
        """One epoch's augmentation parameters, one set per position (None: no augmentation)."""
        return draw_augmentation(n, self.augmentation, generator)

    def augment(self, batch: torch.Tensor, params: CropFlip | None) -> torch.Tensor:
        return apply_augmentation(batch, params, self.augmentation)

    def to_model(self, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
        return normalize(to_device(batch, device), self.mean, self.std)


@dataclass(frozen=True)
class TokenInputs:
    """int64 (N, 2, L) token ids and attention masks, passed to the model as they are."""

    kind: ClassVar[str] = "text"
    # Token ids are arbitrary codes: the distance between two ids says nothing about meaning.
    distances_are_meaningful: ClassVar[bool] = False
    augmented: ClassVar[bool] = False

    def draw(self, n: int, generator: torch.Generator) -> None:
        return None

    def augment(self, batch: torch.Tensor, params: None) -> torch.Tensor:
        return batch

    def to_model(self, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
        return to_device(batch, device)


InputKind = ImageInputs | TokenInputs


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device` without the host waiting for the GPU: a CPU tensor bound for a GPU
    is copied from pinned (page-locked) memory with non_blocking (a copy from pageable memory
    waits for the GPU's queue); anything else is moved as it is (no copy where it already is)."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
