"""Decoded datasets cached as one .npz of arrays, built once under a file lock.

Decoding 100k JPEGs or rendering 20k images takes minutes; reading the arrays back takes a second.
The cache file name carries a hash of everything that determines its content, so a change of
setting builds a new file instead of reusing a stale one. Written to a temporary file and renamed:
a killed build leaves no file that looks finished, and an unreadable one is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from filelock import FileLock

from kdfair.atomic import atomic_path
from kdfair.errors import KdfairError

log = logging.getLogger(__name__)


def cache_path(folder: Path, stem: str, params: dict) -> Path:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return Path(folder) / f"{stem}-{digest}.npz"


def cached_arrays(
    path: Path, build: Callable[[], dict[str, np.ndarray]], *, what: str
) -> dict[str, np.ndarray]:
    """The arrays stored at `path`, or `build()`'s result after saving it there."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.exists():
                try:
                    with np.load(path, allow_pickle=False) as f:
                        return dict(f)
                except Exception as e:  # noqa: BLE001 - any unreadable cache is rebuilt
                    log.warning("The %s cache %s is unreadable (%s); rebuilding it", what, path, e)
            log.info("Building the %s cache %s (once)", what, path)
            arrays = build()
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
            return arrays
    except OSError as e:
        raise KdfairError(
            f"Cannot write the {what} cache {path} ({e}). Make its folder writable, or point "
            "dataset.io.cache_dir at a writable folder."
        ) from e
