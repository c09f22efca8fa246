"""Batched augmentation and normalisation on uint8 image tensors.

The whole batch is augmented with a few tensor ops (no per-sample Python or PIL), from an explicit
`torch.Generator`, so an epoch's batches are a pure function of (seed, epoch): a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def augment_batch(
    images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator
) -> torch.Tensor:
    """Randomly crop and flip a (B, C, H, W) uint8 batch; returns a new tensor of the same shape."""
    if augmentation.is_identity:
        return images
    b, _, h, w = images.shape
    p = augmentation.crop_padding
    if p > 0:
        padded = F.pad(images, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
        batch = torch.arange(b)[:, None, None, None]
        channels = torch.arange(images.shape[1])[None, :, None, None]
        images = padded[batch, channels, rows, cols]
    if augmentation.horizontal_flip:
        flip = torch.rand(b, generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(3), images)
    return images


def normalize(
    images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32 (x / 255 - mean) / std per channel."""
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean_t) / std_t
