"""SVHN (cropped digits) from the official train_32x32.mat and test_32x32.mat.

Layout (torchvision's): <root>/train_32x32.mat, <root>/test_32x32.mat. Each holds X uint8
(32, 32, 3, N) and y (N, 1) with digits 1..9 and 10 for the digit 0, mapped here to 0..9.
Read with scipy.io.loadmat rather than torchvision's SVHN class, which refuses files whose MD5
differs from the official release.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.io import loadmat

from kdfair.data.bundle import DataBundle, Split
from kdfair.data.inputs import ImageInputs
from kdfair.data.layout import DataIO, corrupt, require_files, warn_on_checksums
from kdfair.data.transforms import Augmentation

MEAN, STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)  # training-set statistics
HOW_TO_GET = (
    "Download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/"
    "housenumbers/ into dataset.io.root, or rerun with dataset.io.download=true."
)


def _read(path: Path) -> Split:
    try:
        mat = loadmat(path)
        images = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)), dtype=np.uint8)
        labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1) % 10  # 10 means digit 0
        if images.shape[1:] != (3, 32, 32) or len(labels) != len(images):
            raise ValueError(f"X has shape {mat['X'].shape} and y {mat['y'].shape}")
    except Exception as e:  # noqa: BLE001 - loadmat fails in many ways on truncated files
        raise corrupt("SVHN", path, e, HOW_TO_GET) from e
    return Split(torch.from_numpy(images), torch.from_numpy(labels))


def load_svhn(
    io: DataIO | str,
    *,
    crop_padding: int = 4,
    horizontal_flip: bool = True,
) -> DataBundle:
    """SVHN train (73,257) and test (26,032) splits."""
    io = DataIO.of(io)
    root, download, verify_checksums = Path(io.root), io.download, io.verify_checksums
    if download:
        from torchvision.datasets import SVHN

        for split in ("train", "test"):
            SVHN(str(root), split=split, download=True)
    train_path, test_path = require_files(
        "SVHN",
        root,
        ["train_32x32.mat", "test_32x32.mat"],
        layout=f"  {root}/train_32x32.mat\n  {root}/test_32x32.mat",
        how_to_get=HOW_TO_GET,
    )
    if verify_checksums:
        from torchvision.datasets import SVHN

        warn_on_checksums(
            "SVHN",
            root,
            [(SVHN.split_list[s][1], SVHN.split_list[s][2]) for s in ("train", "test")],
        )
    train, test = _read(train_path), _read(test_path)
    return DataBundle(
        name="svhn",
        train=train,
        test=test,
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        attribute_groups={},
        input_kind=ImageInputs(
            mean=MEAN,
            std=STD,
            augmentation=Augmentation(crop_padding=crop_padding, horizontal_flip=horizontal_flip),
        ),
        info={"n_train": len(train), "n_test": len(test)},
    )
