"""`DataBundle`: what every dataset factory returns and everything training and metrics need.

Three splits: train, test and, where there is one, val (a dataset's official validation
partition, or a seeded stratified hold-out of the training split: `hold_out`). Two kinds of
split, one interface:
- `Split`: inputs held in memory, images as a uint8 (N, C, H, W) tensor augmented a batch at a
  time (CIFAR, SVHN, Trifeature, Tiny ImageNet, CelebA at reduced resolution), or token ids;
- `FolderSplit`: image files decoded and augmented per sample by DataLoader workers (ImageNet).
Protected attributes are int64 group codes with the group names alongside, so predictions can
carry them without knowing the dataset. The bundle's input kind (`kdfair.data.inputs`) says how a
batch is augmented and how it reaches the model (images: normalised float32 on the device).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from kdfair.data.inputs import InputKind, to_device
from kdfair.distributed import shard_positions
from kdfair.errors import KdfairError


@dataclass
class Split:
    """In memory: inputs (images: uint8 (N, C, H, W); text: int64 (N, 2, L) token ids and
    attention masks), labels int64 (N,), attributes name -> int64 (N,)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)
    # Positions of these examples in the whole split, set by DataBundle.subset (None: whole).
    origin: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def positions(self) -> torch.Tensor:
        """Each example's position in the whole split (before any max_train/max_test cut)."""
        return torch.arange(len(self)) if self.origin is None else self.origin


@dataclass
class FolderSplit:
    """On disk: image paths with labels; `transform` maps a PIL image to a uint8 (C, H, W)."""

    paths: list[str]
    labels: torch.Tensor
    transform: Callable[[Image.Image], torch.Tensor]
    num_workers: int = 8
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    origin: torch.Tensor | None = None  # as Split.origin

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def positions(self) -> torch.Tensor:
        return torch.arange(len(self)) if self.origin is None else self.origin

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:  # the torch Dataset protocol
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB")), i

    def loader(self, order: torch.Tensor, batch_size: int, seed: int, device: torch.device):
        """Batches of (uint8 images, indices) in `order`; worker RNGs derive from `seed`. Pinned
        (page-locked, so the copy to the GPU runs without the host waiting) only when `device`,
        where the batches go, is a GPU."""
        return torch.utils.data.DataLoader(
            self,
            batch_size=batch_size,
            sampler=order.tolist(),
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(seed),
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )


def _take(split: Split | FolderSplit, keep: torch.Tensor) -> Split | FolderSplit:
    """The examples of `split` at positions `keep` (int64), remembering where they came from."""
    attributes = {k: v[keep] for k, v in split.attributes.items()}
    origin = split.positions[keep]
    if isinstance(split, FolderSplit):
        return replace(
            split,
            paths=[split.paths[i] for i in keep.tolist()],
            labels=split.labels[keep],
            attributes=attributes,
            origin=origin,
        )
    return Split(split.inputs[keep], split.labels[keep], attributes, origin)


@dataclass
class DataBundle:
    name: str
    train: Split | FolderSplit
    test: Split | FolderSplit
    num_classes: int
    class_names: list[str]
    attribute_groups: dict[str, list[str]]  # attribute -> group names, indexed by group code
    # ImageInputs (normalisation, batch-level augmentation of in-memory splits) or TokenInputs
    input_kind: InputKind
    info: dict = field(default_factory=dict)  # dataset facts worth logging and storing
    # Validation split (per-epoch accuracy, checkpoint selection); None: the dataset has none.
    val: Split | FolderSplit | None = None

    @property
    def modality(self) -> str:
        """ "image" or "text": what the inputs are."""
        return self.input_kind.kind

    def subset(
        self,
        max_train: int | None,
        max_test: int | None,
        seed: int = 0,
        max_val: int | None = None,
    ) -> DataBundle:
        """The same data cut to at most max_train / max_test / max_val examples (a fixed random
        subset, kept in split order), for quick runs; None keeps a split whole."""
        generator = torch.Generator().manual_seed(seed)
        cut = {}
        for name, limit in (("train", max_train), ("test", max_test), ("val", max_val)):
            split = getattr(self, name)
            if split is None or limit is None or limit >= len(split):
                cut[name] = split
                continue
            keep = torch.randperm(len(split), generator=generator)[:limit].sort().values
            cut[name] = _take(split, keep)
        return replace(self, **cut, info=self._counted(**cut))

    def hold_out(self, fraction: float, seed: int) -> DataBundle:
        """A validation split of `fraction` of the training split, stratified by label (each
        class gives round(fraction * its count) examples, sklearn's train_test_split), drawn with
        `seed`; the rest stays the training split. Both keep split order."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        from sklearn.model_selection import train_test_split  # fairlearn's dependency

        labels = self.train.labels.cpu().numpy()
        positions = np.arange(len(labels))
        try:
            kept, held = train_test_split(
                positions, test_size=fraction, random_state=seed, stratify=labels
            )
        except ValueError as e:  # a class too small to split, or a fraction leaving nothing
            raise KdfairError(
                f"dataset.val_fraction={fraction} cannot hold out a stratified validation split "
                f"of the {len(labels)} training examples ({e}). Raise or lower the fraction, or "
                "use more training examples."
            ) from e
        train = _take(self.train, torch.from_numpy(np.sort(kept)))
        val = _take(self.train, torch.from_numpy(np.sort(held)))
        info = {**self._counted(train=train, val=val), "val_from": f"train ({fraction:g})"}
        return replace(self, train=train, val=val, info=info)

    def _counted(self, **splits) -> dict:
        """`info` with the sizes of the given splits updated."""
        info = dict(self.info)
        for name, split in splits.items():
            if split is not None:
                info[f"n_{name}"] = len(split)
        return info

    @property
    def deterministic_train_stream(self) -> bool:
        """True when a training image looks the same every epoch (no augmentation at all)."""
        return isinstance(self.train, Split) and not self.input_kind.augmented

    def train_batches(
        self,
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Shuffled, augmented, normalised training batches (x, y, index) for one epoch, y and
        index (the examples' positions in the split) on `device` (streamed splits: index on the
        CPU).

        The order and each position's augmentation depend only on (seed, epoch). With several
        DDP processes, `rank` takes DistributedSampler's share of that order (every
        `world_size`-th position, the order wrapped round to a multiple of world_size) in
        batches of batch_size / world_size, so the processes' batches together are the
        one-process batches, augmented identically (the last one plus up to world_size - 1
        repeats). Streamed splits are augmented in DataLoader workers seeded per process.
        """
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train), generator=generator)
        positions = shard_positions(len(order), rank, world_size)
        local_batch = batch_size // world_size
        if isinstance(self.train, FolderSplit):
            # Per-sample augmentation happens in DataLoader workers, seeded per rank.
            worker_seed = int(torch.randint(0, 2**62, (1,), generator=generator)) + rank
            loader = self.train.loader(order[positions], local_batch, worker_seed, device)
            for images, idx in loader:
                yield self._to_model(images, device), to_device(self.train.labels[idx], device), idx
            return
        params = self.input_kind.draw(len(order), generator)
        # This rank's whole epoch moved once (order, labels, augmentation parameters: drawn on
        # the CPU) to where the split and the model are: a step only slices them, so no step
        # waits for a host-to-device copy of its own.
        mine = order[positions]
        on_split = to_device(mine, self.train.inputs.device)
        labels = to_device(self.train.labels[on_split], device)
        index = to_device(mine, device)
        own = params[positions].to(self.train.inputs.device) if params is not None else None
        for start in range(0, len(mine), local_batch):
            batch = slice(start, start + local_batch)
            images = self.input_kind.augment(
                self.train.inputs[on_split[batch]], own[batch] if own is not None else None
            )
            yield self._to_model(images, device), labels[batch], index[batch]

    def test_batches(
        self,
        batch_size: int,
        *,
        device: torch.device,
        indices: torch.Tensor | None = None,
        split: str = "test",
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches (x, y) of the test split (or `split="val"`) in split order, or of `indices`
        in their order, unaugmented."""
        chosen = getattr(self, split)
        for images, idx in self._in_order(chosen, batch_size, device, indices):
            yield self._to_model(images, device), to_device(chosen.labels[idx], device)

    def train_batches_in_order(
        self, batch_size: int, *, device: torch.device, indices: torch.Tensor | None = None
    ) -> Iterator[torch.Tensor]:
        """Un-augmented training images in split order, or of `indices` (for caching a frozen
        teacher's logits)."""
        for images, _ in self._in_order(self.train, batch_size, device, indices):
            yield self._to_model(images, device)

    def train_on(self, device: torch.device) -> DataBundle:
        """This bundle with its in-memory training split (uint8 images, labels) moved to
        `device`: on a GPU, batches are then cut, augmented and normalised there, with no
        host-to-device copy per step. Streamed splits stay as they are."""
        if not isinstance(self.train, Split):
            return self
        train = replace(
            self.train, inputs=self.train.inputs.to(device), labels=self.train.labels.to(device)
        )
        return replace(self, train=train)

    @staticmethod
    def _in_order(
        split: Split | FolderSplit,
        batch_size: int,
        device: torch.device,
        indices: torch.Tensor | None = None,
    ):
        """(uint8 inputs, indices) batches of `split` in order (or of `indices`), for a model on
        `device`; the indices are moved to the split's device once, not per batch."""
        order = torch.arange(len(split)) if indices is None else indices
        if isinstance(split, FolderSplit):
            yield from split.loader(order, batch_size, seed=0, device=device)
            return
        on_split = to_device(order, split.inputs.device)
        for start in range(0, len(order), batch_size):
            idx = on_split[start : start + batch_size]
            yield split.inputs[idx], idx

    def _to_model(self, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
        return self.input_kind.to_model(inputs, device)
