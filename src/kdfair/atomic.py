"""Atomic writes: a file appears whole under its name or not at all.

Every file kdfair writes (store entries, predictions, results.csv, caches, analysis) goes to a
temporary name beside its target and is renamed onto it (os.replace, atomic on POSIX), so a
killed job never leaves a half-written file that looks finished.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp creates the file private (0600); a result file gets the permissions any new file
    # would (0666 less the umask), so the team sharing an outputs folder can read it.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; set it straight back
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def torch_save(obj, path: Path) -> None:
    import torch  # here, not above: the analysis writes through this module without torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
