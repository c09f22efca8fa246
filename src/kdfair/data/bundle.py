"""`DataBundle`: what every dataset factory returns and everything training and metrics need.

Images are held as uint8 (N, C, H, W) tensors; protected attributes as int64 group codes with the
group names alongside, so predictions can carry them without knowing the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from kdfair.data.transforms import Augmentation, augment_batch, normalize


@dataclass
class Split:
    """One split: images uint8 (N, C, H, W), labels int64 (N,), attributes name -> int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DataBundle:
    name: str
    train: Split
    test: Split
    num_classes: int
    class_names: list[str]
    attribute_groups: dict[str, list[str]]  # attribute -> group names, indexed by group code
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augmentation: Augmentation = field(default_factory=Augmentation)
    info: dict = field(default_factory=dict)  # dataset facts worth logging and storing

    def train_batches(
        self, batch_size: int, *, seed: int, epoch: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Shuffled, augmented, normalised training batches (x, y, index) for one epoch.

        The order and the augmentation depend only on (seed, epoch).
        """
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            images = augment_batch(self.train.images[idx], self.augmentation, generator)
            yield self._to_model(images, device), self.train.labels[idx].to(device), idx

    def test_batches(
        self, batch_size: int, *, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Test batches (x, y) in split order, without augmentation."""
        for start in range(0, len(self.test), batch_size):
            images = self.test.images[start : start + batch_size]
            yield (
                self._to_model(images, device),
                self.test.labels[start : start + batch_size].to(device),
            )

    def train_batches_in_order(
        self, batch_size: int, *, device: torch.device
    ) -> Iterator[torch.Tensor]:
        """Un-augmented training images in split order (for caching a frozen teacher's logits)."""
        for start in range(0, len(self.train), batch_size):
            yield self._to_model(self.train.images[start : start + batch_size], device)

    def _to_model(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        return normalize(images.to(device, non_blocking=True), self.mean, self.std)
