"""ImageNet ILSVRC-2012 from class folders, streamed by DataLoader workers.

Layout: <root>/imagenet/train/<wnid>/*.JPEG and <root>/imagenet/val/<wnid>/*.JPEG (the validation
images moved into class folders, the usual preparation step; see README). 1.28M images do not fit
in memory as tensors, so they are decoded per batch in `num_workers` processes with torchvision's
transforms: RandomResizedCrop(224) + horizontal flip for training, Resize(256) + CenterCrop(224)
for testing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import transforms
from torchvision.datasets import ImageFolder

from kdfair.data.bundle import DataBundle, FolderSplit
from kdfair.data.inputs import ImageInputs
from kdfair.data.layout import DataIO, require_files
from kdfair.errors import KdfairError

FOLDER = "imagenet"
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HOW_TO_GET = (
    "Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from image-net.org (after "
    "registering), extract the train tar's per-class tars into train/<wnid>/, and move the "
    "validation images into val/<wnid>/ (e.g. with the widely used valprep.sh script)."
)
LAYOUT = """  <root>/imagenet/train/n01440764/n01440764_10026.JPEG ...
  <root>/imagenet/val/n01440764/ILSVRC2012_val_00000293.JPEG ..."""


def _folder_split(
    path: Path, transform, num_workers: int, classes: list[str] | None
) -> FolderSplit:
    try:
        folder = ImageFolder(str(path))
    except (FileNotFoundError, OSError) as e:
        raise KdfairError(
            f"ImageNet: {path} holds no class folders with images ({e}).\nExpected layout:\n"
            f"{LAYOUT}\n{HOW_TO_GET}"
        ) from e
    if classes is not None and folder.classes != classes:
        raise KdfairError(
            f"ImageNet: the class folders of {path} ({len(folder.classes)}) differ from those of "
            f"the training split ({len(classes)}). Check that val/ was prepared into the same "
            "<wnid> folders as train/."
        )
    paths = [p for p, _ in folder.samples]
    labels = torch.tensor([label for _, label in folder.samples], dtype=torch.int64)
    return FolderSplit(paths, labels, transform, num_workers, classes=folder.classes)


def load_imagenet(io: DataIO | str, *, image_size: int = 224, resize: int = 256) -> DataBundle:
    """ImageNet-1k train and val splits, streamed from class folders."""
    io = DataIO.of(io)
    root, num_workers = Path(io.root), io.num_workers
    require_files(
        "ImageNet",
        root,
        [f"{FOLDER}/train", f"{FOLDER}/val"],
        layout=LAYOUT.replace("<root>", str(root)),
        how_to_get=HOW_TO_GET,
    )
    train_transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size),
            transforms.RandomHorizontalFlip(),
            transforms.PILToTensor(),
        ]
    )
    test_transform = transforms.Compose(
        [transforms.Resize(resize), transforms.CenterCrop(image_size), transforms.PILToTensor()]
    )
    train = _folder_split(root / FOLDER / "train", train_transform, num_workers, None)
    test = _folder_split(root / FOLDER / "val", test_transform, num_workers, train.classes)
    return DataBundle(
        name="imagenet",
        train=train,
        test=test,
        num_classes=len(train.classes),
        class_names=list(train.classes),
        attribute_groups={},
        # Augmentation happens in the workers' transforms; nothing left for the batch step.
        input_kind=ImageInputs(mean=IMAGE_MEAN, std=IMAGE_STD),
        info={"n_train": len(train), "n_test": len(test)},
    )
