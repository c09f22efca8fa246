"""The baselines `benchmarks/run.py` measures kdfair against, and the fixture they read.

A CIFAR-10-format folder of random images; torchvision's CIFAR10 with the paper's augmentation,
per sample in PIL; and KD written as a plain PyTorch script (DataLoader, teacher under no_grad,
Hinton's loss inline), so a reader can see exactly what kdfair's numbers are compared with.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import torch


def write_cifar_format(root: Path, n: int = 10_000) -> None:
    """A CIFAR-10-format folder of n random images (5 training batches, a test batch, meta)."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name, count):
        batch = {
            "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, count).tolist(),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)

    for i in range(1, 6):
        dump(f"data_batch_{i}", n // 5)
    dump("test_batch", 100)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(c) for c in range(10)]}, f)


def torchvision_cifar10(root: str, mean, std):
    """torchvision's CIFAR10 training set with the paper's augmentation, per sample in PIL, as a
    plain PyTorch script would build it (minus the MD5 checks, which a random fixture fails)."""
    from torchvision import transforms
    from torchvision.datasets import CIFAR10

    class UncheckedCIFAR10(CIFAR10):
        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            with open(Path(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    return UncheckedCIFAR10(root, train=True, transform=transform)


def plain_kd_epoch_seconds(
    dataset, teacher, student, device, epochs: int, workers: int, batch_size: int
):
    """The same KD training written as a plain PyTorch script: torchvision's CIFAR10 through a
    DataLoader, the teacher under no_grad, Hinton's loss inline (T = 4, alpha = 0.8), fp32."""
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    cuda = device.type == "cuda"
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=cuda,
        persistent_workers=workers > 0,
    )
    teacher.to(device).eval()
    student.to(device).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    temperature, alpha = 4.0, 0.8
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.no_grad():
                z_teacher = teacher(x)
            z_student = student(x)
            soft = F.kl_div(
                F.log_softmax(z_student / temperature, dim=1),
                F.softmax(z_teacher / temperature, dim=1),
                reduction="batchmean",
            )
            loss = alpha * soft + (1 - alpha) * F.cross_entropy(z_student, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds[1:]
