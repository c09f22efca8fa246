"""CelebA for group fairness (docs/protocol.md): target Smiling, protected Young and Male.

Layout (torchvision's): <root>/celeba/{img_align_celeba/, list_attr_celeba.txt,
list_eval_partition.txt}. The official partition gives train (0), validation (1) and test (2)
splits (a partition file without validation images gives no validation split). In the
training split the majority label is randomly undersampled (seeded) so that both labels are
equally frequent; the group distribution of the balanced set (the paper's Table 5) is logged and
stored with every model. Images (178 x 218) are centre-cropped to 178 x 178 and resized to
`image_size`, decoded once and cached as uint8 arrays.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kdfair.data.bundle import DataBundle, Split
from kdfair.data.cache import cache_path, cached_arrays
from kdfair.data.images import decode_all
from kdfair.data.inputs import ImageInputs
from kdfair.data.layout import DataIO, corrupt, require_files
from kdfair.data.transforms import Augmentation
from kdfair.errors import KdfairError

log = logging.getLogger(__name__)

FOLDER = "celeba"
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet statistics
CROP = 178  # the aligned images are 178 wide
HOW_TO_GET = (
    "Download Align&Cropped Images (img_align_celeba.zip), list_attr_celeba.txt and "
    "list_eval_partition.txt from the CelebA page (mmlab.ie.cuhk.edu.hk/projects/"
    "CelebA.html) into <dataset.io.root>/celeba/, or rerun with dataset.io.download=true "
    "(torchvision's downloader; Google Drive quotas often refuse it)."
)
LAYOUT = """  <root>/celeba/img_align_celeba/000001.jpg ...
  <root>/celeba/list_attr_celeba.txt      (count, 40 attribute names, then one row per image)
  <root>/celeba/list_eval_partition.txt   (image name and 0 train / 1 valid / 2 test)"""


def read_attributes(path: Path) -> pd.DataFrame:
    """list_attr_celeba.txt as a DataFrame of 0/1 ints indexed by image name."""
    try:
        with open(path) as f:
            count = int(f.readline())
            names = f.readline().split()
            table = pd.read_csv(
                f, sep=r"\s+", header=None, names=["image", *names], index_col="image"
            )
        if len(table) != count or table.isna().any().any():
            raise ValueError(f"the header announces {count} rows, {len(table)} were read")
        if not table.isin([-1, 1]).all().all():
            raise ValueError("attribute values must be -1 or 1")
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise corrupt("CelebA", path, e, HOW_TO_GET) from e
    return (table == 1).astype(np.int64)


def read_partition(path: Path) -> pd.Series:
    try:
        partition = pd.read_csv(
            path, sep=r"\s+", header=None, names=["image", "split"], index_col="image"
        )["split"]
        if not partition.isin([0, 1, 2]).all():
            raise ValueError("partition values must be 0, 1 or 2")
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise corrupt("CelebA", path, e, HOW_TO_GET) from e
    return partition


def balance(labels: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices keeping every example of the rarest label and as many, drawn at random
    without replacement, of each other label."""
    rng = np.random.default_rng(seed)
    values, counts = np.unique(labels, return_counts=True)
    keep = [
        rng.choice(np.flatnonzero(labels == v), size=counts.min(), replace=False) for v in values
    ]
    return np.sort(np.concatenate(keep))


def group_distribution(
    labels: np.ndarray, attributes: dict[str, np.ndarray], target: str, groups: dict[str, list[str]]
) -> dict:
    """Share of each (attribute group, label) cell and of each group (Table 5 of the paper)."""
    out = {}
    for name, codes in attributes.items():
        for code, group in enumerate(groups[name]):
            in_group = codes == code
            out[f"{group}"] = float(in_group.mean())
            for label, label_name in ((1, target), (0, f"not {target}")):
                out[f"{group} & {label_name}"] = float((in_group & (labels == label)).mean())
    return out


def load_celeba(
    io: DataIO | str,
    *,
    target: str = "Smiling",
    protected: tuple[str, ...] = ("Young", "Male"),
    image_size: int = 64,
    balance_seed: int = 0,
    crop_padding: int = 4,
    horizontal_flip: bool = True,
) -> DataBundle:
    """CelebA as a binary task `target` with `protected` attributes (see the module docstring)."""
    io = DataIO.of(io)
    images_dir, attr_file, partition_file = _files(Path(io.root), io.download)
    attributes, partition = _tables(attr_file, partition_file, (target, *protected))
    splits = {}
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        names = attributes.index[partition.to_numpy() == code]
        if len(names) == 0 and split == "val":
            continue
        if len(names) == 0:
            raise corrupt("CelebA", partition_file, ValueError(f"no {split} images"), HOW_TO_GET)
        rows = attributes.loc[names]
        images = _images(images_dir, names, split, image_size)
        labels = rows[target].to_numpy()
        keep = balance(labels, balance_seed) if split == "train" else np.arange(len(names))
        splits[split] = Split(
            torch.from_numpy(images[keep]),
            torch.from_numpy(labels[keep]),
            {a: torch.from_numpy(rows[a].to_numpy()[keep]) for a in protected},
        )
    group_names = {a: [f"not {a}", a] for a in protected}
    train = splits["train"]
    distribution = _logged_distribution(train, target, group_names)
    return DataBundle(
        name="celeba",
        train=train,
        test=splits["test"],
        val=splits.get("val"),  # the official partition, unbalanced like the test split
        num_classes=2,
        class_names=[f"not {target}", target],
        attribute_groups=group_names,
        input_kind=ImageInputs(
            mean=IMAGE_MEAN,
            std=IMAGE_STD,
            augmentation=Augmentation(crop_padding=crop_padding, horizontal_flip=horizontal_flip),
        ),
        info={
            "n_train": len(train),
            "n_test": len(splits["test"]),
            "n_val": len(splits.get("val", ())),
            "target": target,
            "balance_seed": balance_seed,
            "train_group_distribution": distribution,
        },
    )


def _logged_distribution(train: Split, target: str, group_names: dict[str, list[str]]) -> dict:
    """The balanced training set's group distribution (the paper's Table 5), logged."""
    distribution = group_distribution(
        train.labels.numpy(),
        {a: v.numpy() for a, v in train.attributes.items()},
        target,
        group_names,
    )
    log.info(
        "CelebA balanced training set: %d images; groups: %s",
        len(train),
        ", ".join(f"{k} {v:.2%}" for k, v in distribution.items()),
    )
    return distribution


def _files(root: Path, download: bool) -> list[Path]:
    """The image folder, attribute file and partition file (downloaded first if asked)."""
    if download:
        from torchvision.datasets import CelebA

        CelebA(str(root), split="all", target_type="attr", download=True)
    return require_files(
        "CelebA",
        root,
        [
            f"{FOLDER}/img_align_celeba",
            f"{FOLDER}/list_attr_celeba.txt",
            f"{FOLDER}/list_eval_partition.txt",
        ],
        layout=LAYOUT.replace("<root>", str(root)),
        how_to_get=HOW_TO_GET,
    )


def _tables(
    attr_file: Path, partition_file: Path, used: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.Series]:
    """The attribute table (checked to hold the `used` attributes) and each image's partition."""
    attributes = read_attributes(attr_file)
    unknown = [a for a in used if a not in attributes.columns]
    if unknown:
        raise KdfairError(
            f"CelebA has no attribute {unknown}; use one of: {', '.join(attributes.columns)} "
            "(dataset.target, dataset.protected)."
        )
    partition = read_partition(partition_file).reindex(attributes.index)
    if partition.isna().any():
        raise corrupt(
            "CelebA", partition_file, ValueError("images without a partition"), HOW_TO_GET
        )
    return attributes, partition


def _images(images_dir: Path, names: pd.Index, split: str, image_size: int) -> np.ndarray:
    """One split's images as uint8, decoded once and cached beside the data (kdfair-cache/)."""
    params = {
        "split": split,
        "image_size": image_size,
        "names": len(names),
        "first": names[0],
        "last": names[-1],
    }
    arrays = cached_arrays(
        # <root>/celeba/kdfair-cache, beside the images
        cache_path(images_dir.parent / "kdfair-cache", f"celeba-{split}-{image_size}px", params),
        lambda: {
            "images": decode_all(
                [images_dir / n for n in names],
                image_size,
                center_crop=CROP,
                description=f"CelebA {split}",
            )
        },
        what=f"CelebA {split}",
    )
    return arrays["images"]
