"""Datasets. One module per dataset family; each factory returns a `DataBundle`."""

from kdfair.data.bundle import DataBundle, FolderSplit, Split
from kdfair.data.transforms import Augmentation

__all__ = ["Augmentation", "DataBundle", "FolderSplit", "Split"]
