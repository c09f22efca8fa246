"""The data path moved its per-step host work to once per epoch (orders, labels and augmentation
parameters moved to the device once, normalisation constants cached): the batches themselves
must not change. The digests were recorded from the implementation before that change (main at
6c98633) on this fixed toy split: every training batch (x, y, index) of three epochs for one and
two DDP ranks, and the test batches, under four augmentations."""

from __future__ import annotations

import hashlib

import pytest
import torch

from kdfair.data import DataBundle, ImageInputs, Split
from kdfair.data.transforms import Augmentation

CPU = torch.device("cpu")
RECORDED = {
    Augmentation(4, True): "64f54ebd29f3cfdfad2c643f33a57db11bd2fefcaebbb19fde5097cc7570e7e0",
    Augmentation(0, True): "3b1806f4bc10e21f9cf67596fc070a0ad05e827bf149fef87c7c1b6e7447aba3",
    Augmentation(3, False): "ecaabf0ec59e16359513e1f8f74a25703361f8ed95a4092fff6bb6643263ccec",
    Augmentation(0, False): "6940c5539956c7e6e87b1a5ea8fe293baea61ed00e9fb18a2b4fe5cadd299f3b",
}


def _bundle(augmentation: Augmentation) -> DataBundle:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (75, 3, 12, 10), generator=generator).to(torch.uint8)
    split = Split(images, torch.arange(75) % 10)
    kind = ImageInputs((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), augmentation)
    return DataBundle("toy", split, split, 10, [str(c) for c in range(10)], {}, kind)


@pytest.mark.parametrize("augmentation", list(RECORDED), ids=str)
def test_augmented_batches_are_bitwise_those_of_the_recorded_implementation(augmentation):
    data, digest = _bundle(augmentation), hashlib.sha256()
    for world in (1, 2):
        for rank in range(world):
            for epoch in (0, 1, 5):
                for x, y, index in data.train_batches(
                    16, seed=3, epoch=epoch, device=CPU, rank=rank, world_size=world
                ):
                    assert x.dtype == torch.float32 and x.is_contiguous()
                    for tensor in (x, y, index):
                        digest.update(tensor.numpy().tobytes())
    for x, y in data.test_batches(32, device=CPU):
        digest.update(x.numpy().tobytes())
        digest.update(y.numpy().tobytes())
    assert digest.hexdigest() == RECORDED[augmentation]
