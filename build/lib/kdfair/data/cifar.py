"""CIFAR-10 and CIFAR-100 from the official "python version" pickle batches.

Layout (torchvision's):  <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
                         <root>/cifar-100-python/{train, test, meta}
Read directly rather than through torchvision's dataset classes, which refuse any file whose MD5
differs from the official release (a re-packed copy, a test fixture); `verify_checksums=true` logs
such differences instead. `download=true` fetches the release with torchvision's downloader.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from kdfair.data.bundle import DataBundle, Split
from kdfair.data.inputs import ImageInputs
from kdfair.data.layout import DataIO, corrupt, require_files, warn_on_checksums
from kdfair.data.transforms import Augmentation

# Per-channel statistics of the training sets (commonly used values).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
HOW_TO_GET = (
    "Download and extract the python version from https://www.cs.toronto.edu/~kriz/"
    "cifar.html into dataset.io.root, or rerun with dataset.io.download=true."
)


def _files(variant: str) -> tuple[list[str], list[str], str, str, str]:
    """(train files, test files, meta file, label key, names key)."""
    if variant == "cifar10":
        return (
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            "batches.meta",
            "labels",
            "label_names",
        )
    return ["train"], ["test"], "meta", "fine_labels", "fine_label_names"


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds (dicts, lists, strings, numbers and numpy arrays):
    a pickle may name any callable, and a crafted batch file must not run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # byte strings pickled by Python 3 with protocol < 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which no CIFAR batch contains (refused unread)"
            )
        return super().find_class(module, name)


def _unpickle(path: Path, dataset: str) -> dict:
    try:
        with open(path, "rb") as f:
            return _BatchUnpickler(f, encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - truncated or foreign files fail in many ways
        raise corrupt(dataset, path, e, HOW_TO_GET) from e


def _read_split(folder: Path, names: list[str], label_key: str, dataset: str) -> Split:
    images, labels = [], []
    for name in names:
        batch = _unpickle(folder / name, dataset)
        try:
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            target = np.asarray(batch[label_key], dtype=np.int64)
            if len(target) != len(data):
                raise ValueError(f"{len(data)} images but {len(target)} labels")
        except (KeyError, ValueError, TypeError) as e:
            raise corrupt(dataset, folder / name, e, HOW_TO_GET) from e
        images.append(data)
        labels.append(target)
    return Split(torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)))


def load_cifar(
    io: DataIO | str,
    *,
    variant: str = "cifar10",
    crop_padding: int = 4,
    horizontal_flip: bool = True,
) -> DataBundle:
    """CIFAR-10 (variant='cifar10') or CIFAR-100 ('cifar100', fine labels) as a DataBundle."""
    if variant not in FOLDERS:
        raise ValueError(f"variant must be one of {sorted(FOLDERS)}, got {variant!r}")
    dataset = variant.upper().replace("CIFAR", "CIFAR-")
    io = DataIO.of(io)
    root, download, verify_checksums = Path(io.root), io.download, io.verify_checksums
    if download:
        from torchvision.datasets import CIFAR10, CIFAR100

        (CIFAR10 if variant == "cifar10" else CIFAR100)(str(root), download=True)
    train_files, test_files, meta_file, label_key, names_key = _files(variant)
    folder = root / FOLDERS[variant]
    layout = f"  {root}/{FOLDERS[variant]}/" + ", ".join([*train_files, *test_files, meta_file])
    require_files(
        dataset,
        root,
        [f"{FOLDERS[variant]}/{n}" for n in [*train_files, *test_files, meta_file]],
        layout=layout,
        how_to_get=HOW_TO_GET,
    )
    if verify_checksums:
        from torchvision.datasets import CIFAR10, CIFAR100

        official = CIFAR10 if variant == "cifar10" else CIFAR100
        files = [
            *official.train_list,
            *official.test_list,
            [official.meta["filename"], official.meta["md5"]],
        ]
        warn_on_checksums(dataset, folder, [(name, md5) for name, md5 in files])
    meta = _unpickle(folder / meta_file, dataset)
    try:
        class_names = [str(n) for n in meta[names_key]]
    except KeyError as e:
        raise corrupt(dataset, folder / meta_file, e, HOW_TO_GET) from e
    train = _read_split(folder, train_files, label_key, dataset)
    test = _read_split(folder, test_files, label_key, dataset)
    mean, std = STATS[variant]
    return DataBundle(
        name=variant,
        train=train,
        test=test,
        num_classes=len(class_names),
        class_names=class_names,
        attribute_groups={},
        input_kind=ImageInputs(
            mean=mean,
            std=std,
            augmentation=Augmentation(crop_padding=crop_padding, horizontal_flip=horizontal_flip),
        ),
        info={"n_train": len(train), "n_test": len(test)},
    )
