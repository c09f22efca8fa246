"""Batched augmentation and normalisation on uint8 image tensors.

The whole batch is augmented with a few tensor ops (no per-sample Python or PIL), on whatever
device holds it (the GPU when the training split lives there). The random parameters are drawn on
the CPU from an explicit `torch.Generator`, one set per position of an epoch's order, so an epoch's
batches are a pure function of (seed, epoch) whatever the device or the number of DDP processes,
and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Random crop after zero padding by `crop_padding` pixels (0: none), then random h-flip."""

    crop_padding: int = 4
    horizontal_flip: bool = True

    @property
    def is_identity(self) -> bool:
        return self.crop_padding == 0 and not self.horizontal_flip


@dataclass(frozen=True)
class CropFlip:
    """Per-image augmentation parameters: crop offsets into the padded image and h-flips."""

    dy: torch.Tensor  # int64 (N,), 0 .. 2 * padding
    dx: torch.Tensor  # int64 (N,)
    flip: torch.Tensor  # bool (N,)

    def __getitem__(self, index: torch.Tensor | slice) -> CropFlip:
        return CropFlip(self.dy[index], self.dx[index], self.flip[index])

    def to(self, device: torch.device) -> CropFlip:
        """On `device` (an epoch's parameters, moved once: see DataBundle.train_batches)."""
        if self.dy.device == device or device.type == "cpu":
            return CropFlip(self.dy.to(device), self.dx.to(device), self.flip.to(device))
        stacked = torch.stack([self.dy, self.dx, self.flip.long()]).pin_memory()
        dy, dx, flip = stacked.to(device, non_blocking=True)
        return CropFlip(dy, dx, flip.bool())


def draw_augmentation(
    n: int, augmentation: Augmentation, generator: torch.Generator
) -> CropFlip | None:
    """Random crop offsets and flips for `n` images, drawn on the CPU from `generator` (so they
    are the same whichever device applies them); None when `augmentation` is the identity."""
    if augmentation.is_identity:
        return None
    span = 2 * augmentation.crop_padding + 1
    dy = torch.randint(0, span, (n,), generator=generator)
    dx = torch.randint(0, span, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    if not augmentation.horizontal_flip:
        flip = torch.zeros_like(flip)
    return CropFlip(dy, dx, flip)


def apply_augmentation(
    images: torch.Tensor, params: CropFlip | None, augmentation: Augmentation
) -> torch.Tensor:
    """Crop and flip a (B, C, H, W) uint8 batch with per-image `params`, on the batch's device
    with a few tensor ops (one gather, one select): no per-image Python."""
    if params is None:
        return images
    device = images.device
    b, c, h, w = images.shape
    p = augmentation.crop_padding
    if p > 0:
        padded = F.pad(images, (p, p, p, p))
        dy, dx = params.dy.to(device), params.dx.to(device)
        rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]  # (B, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :]  # (B, 1, 1, W)
        batch = torch.arange(b, device=device)[:, None, None, None]
        channels = torch.arange(c, device=device)[None, :, None, None]
        images = padded[batch, channels, rows, cols]
    if augmentation.horizontal_flip:
        flip = params.flip.to(device)[:, None, None, None]
        images = torch.where(flip, images.flip(3), images)
    return images


def augment_batch(
    images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator
) -> torch.Tensor:
    """Randomly crop and flip a (B, C, H, W) uint8 batch; returns a new tensor of the same shape."""
    params = draw_augmentation(len(images), augmentation, generator)
    return apply_augmentation(images, params, augmentation)


def normalize(
    images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32 (x / 255 - mean) / std per channel."""
    mean_t, std_t = _channel_constants(tuple(mean), tuple(std), images.device)
    return (images.float() / 255.0 - mean_t) / std_t


@lru_cache(maxsize=64)
def _channel_constants(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean and std as (1, C, 1, 1) float32 tensors on `device`, made once per device: a
    tensor built from Python numbers on a GPU is a host-to-device copy that waits for the GPU's
    queue, which per batch would stall every step."""
    return (
        torch.tensor(mean, device=device).view(1, -1, 1, 1),
        torch.tensor(std, device=device).view(1, -1, 1, 1),
    )
