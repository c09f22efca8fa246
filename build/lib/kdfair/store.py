"""The model store: every trained model in `outputs/models/<key>/`, found by a content key.

The key is a short hash of exactly the settings that determine a model (dataset, architecture,
optimiser, schedule, epochs, seed; for a distilled student also the teacher's key, T and alpha) and
nothing else, so jobs of a sweep that need the same teacher find the same folder. A missing model
is trained under a file lock, so concurrent jobs train it once (under DDP, rank 0 holds the lock
and decides for all ranks). Every file is written to a temporary name and renamed; `metrics.json`
is written last and marks the entry complete. While a model trains, `train.ckpt` holds the resume
state of the last finished epoch.

Folder: model.pt, predictions.npz, metrics.json, config.yaml, history.csv (and train.ckpt while
training).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import yaml
from filelock import FileLock

import kdfair
from kdfair import distributed
from kdfair.atomic import torch_save, write_json, write_text
from kdfair.errors import KdfairError

if TYPE_CHECKING:
    from kdfair.predict import Predictions

log = logging.getLogger(__name__)

KEY_LENGTH = 12
COMPLETE_MARKER = "metrics.json"
REQUIRED_FILES = ("model.pt", "predictions.npz", "metrics.json", "config.yaml", "history.csv")


def model_key(spec: dict) -> str:
    """Short stable hash of a model's spec (a JSON-serialisable dict)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


def corrupt_entry(folder: Path, reason: str) -> KdfairError:
    """The error for a store folder that looks finished but cannot be read, with the fix."""
    return KdfairError(
        f"The model store entry {folder} is corrupt ({reason}). Delete that folder "
        f"(rm -r {folder}) and rerun the same command to retrain the model."
    )


@dataclass
class StoredModel:
    """A complete store entry: its key, folder and metrics."""

    key: str
    folder: Path
    metrics: dict

    @property
    def predictions_path(self) -> Path:
        return self.folder / "predictions.npz"

    def load_checkpoint(self) -> dict:
        """model.pt: state_dict, spec, role, metrics (loaded with weights_only=True)."""
        return torch.load(self.folder / "model.pt", map_location="cpu", weights_only=True)


@dataclass
class Entry:
    """Everything a store folder holds, in memory: what `ModelStore.write` puts on disk."""

    spec: dict  # what the key hashes
    role: str  # the role it was trained for (recorded, never part of the key)
    state_dict: dict
    predictions: Predictions  # its test-set outputs (features included for teachers)
    metrics: dict  # accuracy, per-class accuracy, dataset facts, timing, finished_at
    history: list[dict]  # one row per epoch


def environment() -> dict:
    """Versions and git commit, so a model folder says what produced it."""
    try:
        sha = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                cwd=Path(__file__).parent,
                timeout=5,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {
        "kdfair": kdfair.__version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "git_sha": sha,
    }


class ModelStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def write(self, folder: Path, entry: Entry) -> None:
        """Write every file of an entry, each atomically, metrics.json last (it marks the entry
        complete), then drop the resume checkpoint: the folder contract in one place."""
        entry.predictions.save(folder / "predictions.npz")
        torch_save(
            {
                "state_dict": entry.state_dict,
                "spec": entry.spec,
                "role": entry.role,
                "metrics": entry.metrics,
            },
            folder / "model.pt",
        )
        write_text(folder / "history.csv", pd.DataFrame(entry.history).to_csv(index=False))
        config = {"spec": entry.spec, "key": folder.name, "environment": environment()}
        write_text(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        write_json(folder / COMPLETE_MARKER, entry.metrics)
        (folder / "train.ckpt").unlink(missing_ok=True)

    def folder(self, key: str) -> Path:
        return self.root / key

    def find(self, key: str) -> StoredModel | None:
        """The complete entry for `key`, or None if it was never finished.

        Under DDP rank 0 looks and every rank gets its answer, so all ranks agree on what to
        train even while another job is finishing the entry.
        """
        return distributed.from_main(lambda: self._find(key))

    def _find(self, key: str) -> StoredModel | None:
        folder = self.folder(key)
        if not (folder / COMPLETE_MARKER).exists():
            return None
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        try:
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            metrics = json.loads((folder / COMPLETE_MARKER).read_text())
            if not isinstance(metrics, dict) or "accuracy" not in metrics:
                raise ValueError("metrics.json has no 'accuracy'")
        except (OSError, ValueError) as e:
            raise corrupt_entry(folder, str(e)) from e
        return StoredModel(key, folder, metrics)

    @contextmanager
    def locks(self, keys: list[str]):
        """Hold the training locks of `keys` (taken in sorted order, so jobs never deadlock).
        Under DDP only rank 0 takes them: the job's other ranks follow its decisions."""
        self.root.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            for key in sorted(set(keys)) if distributed.is_main() else []:
                stack.enter_context(FileLock(str(self.root / f"{key}.lock")))
            yield

    def get_or_train(
        self, keys: list[str], train: Callable[[list[Path]], None], *, descriptions: list[str]
    ) -> list[tuple[StoredModel, bool]]:
        """(entry, trained_now) per key. The missing entries are trained together, by one call
        `train(folders)` that must write each folder (`write`).

        Training happens under the keys' locks (`<root>/<key>.lock`, taken in sorted order): a
        second job asking for one of the models waits and then finds the finished entry instead
        of training it again. One key is the common case; several are fused training.
        """
        named = dict(zip(keys, descriptions, strict=True))
        found = {key: self.find(key) for key in keys}
        missing = [key for key in keys if found[key] is None]
        trained: list[str] = []
        if missing:
            with self.locks(missing):
                for key in missing:
                    found[key] = self.find(key)  # another job may have finished it meanwhile
                trained = [key for key in missing if found[key] is None]
                if trained:
                    folders = [self.folder(key) for key in trained]
                    for key, folder in zip(trained, folders, strict=True):
                        folder.mkdir(parents=True, exist_ok=True)
                        log.info("%s: training into %s", named[key], folder)
                    train(folders)
                    for key in trained:
                        found[key] = self.find(key)
                        if found[key] is None:
                            raise RuntimeError(f"training {named[key]} did not complete its entry")
        for key in keys:
            if key not in trained:
                later = " (trained by another job)" if key in missing else ""
                log.info("%s: reusing %s%s", named[key], found[key].folder, later)
        return [(found[key], key in trained) for key in keys]
