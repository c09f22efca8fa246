"""Tiny ImageNet (200 classes, 64 x 64) from the official tiny-imagenet-200 folder.

Layout: <root>/tiny-imagenet-200/{wnids.txt, words.txt, train/<wnid>/images/*.JPEG,
val/images/*.JPEG, val/val_annotations.txt}. The labelled validation set serves as the test split
(the official test set has no labels). JPEGs are decoded once and cached as uint8 arrays.
"""

from __future__ import annotations

from pathlib import Path

import torch

from kdfair.data.bundle import DataBundle, Split
from kdfair.data.cache import cache_path, cached_arrays
from kdfair.data.images import decode_all
from kdfair.data.inputs import ImageInputs
from kdfair.data.layout import DataIO, corrupt, require_files
from kdfair.data.transforms import Augmentation

FOLDER = "tiny-imagenet-200"
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HOW_TO_GET = (
    "Download tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) "
    "and extract it into dataset.io.root."
)
LAYOUT = """  <root>/tiny-imagenet-200/wnids.txt, words.txt
  <root>/tiny-imagenet-200/train/<wnid>/images/<wnid>_<n>.JPEG
  <root>/tiny-imagenet-200/val/images/val_<n>.JPEG and val/val_annotations.txt"""


def _class_names(wnids: list[str], words_file: Path) -> list[str]:
    words = {}
    for line in words_file.read_text().splitlines():
        wnid, _, text = line.partition("\t")
        words[wnid] = text.split(",")[0].strip()
    return [words.get(w, w) for w in wnids]


def load_tinyimagenet(
    io: DataIO | str, *, image_size: int = 64, crop_padding: int = 4, horizontal_flip: bool = True
) -> DataBundle:
    """Tiny ImageNet train and val splits, resized to `image_size` (native: 64)."""
    root = Path(DataIO.of(io).root)
    wnids_file, words_file, annotations = require_files(
        "Tiny ImageNet",
        root,
        [f"{FOLDER}/wnids.txt", f"{FOLDER}/words.txt", f"{FOLDER}/val/val_annotations.txt"],
        layout=LAYOUT.replace("<root>", str(root)),
        how_to_get=HOW_TO_GET,
    )
    wnids = wnids_file.read_text().split()
    index = {w: i for i, w in enumerate(wnids)}
    train_files = _train_files(root, wnids, index)
    val_files = _val_files(root, annotations, index)  # read (and checked) before any decoding
    train = _split(root, "train", *train_files, image_size)
    test = _split(root, "val", *val_files, image_size)
    return DataBundle(
        name="tinyimagenet",
        train=train,
        test=test,
        num_classes=len(wnids),
        class_names=_class_names(wnids, words_file),
        attribute_groups={},
        input_kind=ImageInputs(
            mean=IMAGE_MEAN,
            std=IMAGE_STD,
            augmentation=Augmentation(crop_padding=crop_padding, horizontal_flip=horizontal_flip),
        ),
        info={"n_train": len(train), "n_test": len(test)},
    )


def _train_files(
    root: Path, wnids: list[str], index: dict[str, int]
) -> tuple[list[Path], list[int]]:
    """The training images, class by class, and their labels; a class without images is an
    error that shows the expected layout."""
    paths, labels = [], []
    for wnid in wnids:
        files = sorted((root / FOLDER / "train" / wnid / "images").glob("*.JPEG"))
        if not files:
            require_files(
                "Tiny ImageNet",
                root,
                [f"{FOLDER}/train/{wnid}/images/*.JPEG"],
                layout=LAYOUT.replace("<root>", str(root)),
                how_to_get=HOW_TO_GET,
            )
        paths += files
        labels += [index[wnid]] * len(files)
    return paths, labels


def _val_files(
    root: Path, annotations: Path, index: dict[str, int]
) -> tuple[list[Path], list[int]]:
    """The val images (kdfair's test split) and their labels, from val_annotations.txt."""
    paths, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise corrupt(
                "Tiny ImageNet",
                annotations,
                ValueError(f"line {number} names no known wnid: {line[:60]!r}"),
                HOW_TO_GET,
            )
        paths.append(root / FOLDER / "val" / "images" / fields[0])
        labels.append(index[fields[1]])
    return paths, labels


def _split(root: Path, name: str, paths: list[Path], labels: list[int], image_size: int) -> Split:
    """One split, decoded once and cached in <root>/tiny-imagenet-200/kdfair-cache."""
    params = {
        "split": name,
        "n": len(paths),
        "first": str(paths[0].name),
        "last": str(paths[-1].name),
        "image_size": image_size,
    }
    arrays = cached_arrays(
        cache_path(root / FOLDER / "kdfair-cache", f"tinyimagenet-{name}-{image_size}px", params),
        lambda: {"images": decode_all(paths, image_size, description=f"Tiny ImageNet {name}")},
        what=f"Tiny ImageNet {name}",
    )
    return Split(torch.from_numpy(arrays["images"]), torch.tensor(labels, dtype=torch.int64))
