"""Datasets. One module per dataset family; each factory returns a `DataBundle`."""

from kdfair.data.bundle import DataBundle, FolderSplit, Split
from kdfair.data.inputs import ImageInputs, InputKind, TokenInputs
from kdfair.data.layout import DataIO
from kdfair.data.transforms import Augmentation

__all__ = [
    "Augmentation",
    "DataBundle",
    "DataIO",
    "FolderSplit",
    "ImageInputs",
    "InputKind",
    "Split",
    "TokenInputs",
]
