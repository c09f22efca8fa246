"""Atomic writes: a file appears whole under its name or not at all.

Every file kdfair writes (store entries, predictions, results.csv, caches, analysis) goes to a
temporary name beside its target and is renamed onto it (os.replace, atomic on POSIX), so a
killed job never leaves a half-written file that looks finished. Torch files (model.pt,
train.ckpt) are written device-free and contiguous (`torch_save`), so they load anywhere.
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
    """`obj` saved with torch.save, every tensor in it on the CPU and contiguous: a file written
    from a GPU loads with a plain `torch.load(path, weights_only=True)` on a machine without one,
    and channels_last weights are stored in the standard layout that safetensors and other
    formats accept (the values are the same; `load_state_dict` copies them into whatever layout
    the model has)."""
    with atomic_path(path) as tmp:
        _torch().save(portable(obj), tmp)


def portable(obj):
    """`obj` with every tensor (in nested dicts, lists and tuples) detached, on the CPU and
    contiguous; a tensor that already is stays the same object (no copy)."""
    torch = _torch()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().contiguous()
    if isinstance(obj, dict):
        out = type(obj)((k, portable(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # a state_dict's module versions, which loading reads
            out._metadata = obj._metadata
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable(v) for v in obj)
    return obj


def _torch():
    import torch  # here, not above: the analysis writes through this module without torch

    return torch
