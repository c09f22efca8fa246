"""Where a dataset's files are (`DataIO`, the `dataset.io` config node) and checks that they are
where kdfair expects them, with errors that say how to fix it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kdfair.errors import KdfairError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataIO:
    """Where and how a dataset is read or cached, never what it is: none of it is part of a
    model's key, so moving data or outputs never retrains anything. Every factory takes one as
    its first argument (a plain path means `DataIO(root=path)`)."""

    root: str  # the folder that holds the dataset's own folder or files
    cache_dir: str | None = None  # derived files (tokenised text); None: not needed
    download: bool = False  # fetch with torchvision's downloader first, where it has one
    verify_checksums: bool = False  # log files whose MD5 differs from the official release
    num_workers: int = 8  # DataLoader processes decoding streamed images

    @classmethod
    def of(cls, io: DataIO | str | Path) -> DataIO:
        return io if isinstance(io, DataIO) else cls(root=str(io))

    def require_cache_dir(self, dataset: str) -> Path:
        if self.cache_dir is None:
            raise KdfairError(
                f"{dataset} caches its tokenised text, but dataset.io.cache_dir is not set; set "
                "it to a writable folder (the configs use <paths.outputs>/cache/<dataset>)."
            )
        return Path(self.cache_dir)


def require_files(
    dataset: str, root: Path, relative: list[str], *, layout: str, how_to_get: str
) -> list[Path]:
    """The paths `root / r`, or a KdfairError naming the missing ones and the expected layout."""
    root = Path(root)
    paths = [root / r for r in relative]
    missing = [p for p in paths if not p.exists()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:4]) + (" ..." if len(missing) > 4 else "")
        raise KdfairError(
            f"{dataset} not found under dataset.io.root={str(root)!r}: missing {shown}.\n"
            f"Expected layout:\n{layout.rstrip()}\n{how_to_get}"
        )
    return paths


def corrupt(dataset: str, path: Path, error: Exception, how_to_get: str) -> KdfairError:
    """The error for a file that exists but cannot be read (truncated, wrong format)."""
    return KdfairError(
        f"{dataset}: {path} is corrupt or not in the expected format ({type(error).__name__}: "
        f"{error}). Replace it with a fresh copy. {how_to_get}"
    )


def warn_on_checksums(dataset: str, root: Path, files: list[tuple[str, str]]) -> None:
    """Log a warning for each (relative path, md5) that does not match the official release."""
    from torchvision.datasets.utils import check_integrity

    for relative, md5 in files:
        if not check_integrity(str(Path(root) / relative), md5):
            log.warning(
                "%s: %s differs from the official release (md5 %s); kdfair reads it anyway.",
                dataset,
                Path(root) / relative,
                md5,
            )
