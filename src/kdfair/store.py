"""The model store: every trained model in `outputs/models/<key>/`, found by a content key.

The key is a short hash of exactly the settings that determine a model (dataset, architecture,
optimiser, schedule, epochs, seed; for a distilled student also the teacher's key, T and alpha) and
nothing else, so jobs of a sweep that need the same teacher find the same folder. A missing model
is trained under a file lock, so concurrent jobs train it once (under DDP, rank 0 holds the lock
and decides for all ranks). Every file is written to a temporary name and renamed; `metrics.json`
is written last and marks the entry complete. While a model trains, `train.ckpt` holds the resume
state of the last finished epoch.

Folder: model.pt, predictions.npz, metrics.json, config.yaml, history.csv (and train.ckpt while
training). metrics.json also records the SHA-256 of model.pt and predictions.npz (`sha256`), checked
before an entry is reused: a file changed or cut short since is an error, never silently reused.
Entries written before checksums were recorded have none and are reused as they are.
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

from kdfair import distributed
from kdfair.atomic import atomic_path, torch_save, write_json, write_text
from kdfair.errors import KdfairError
from kdfair.version import __version__

if TYPE_CHECKING:
    from kdfair.predictions import Predictions

log = logging.getLogger(__name__)

KEY_LENGTH = 12
COMPLETE_MARKER = "metrics.json"
REQUIRED_FILES = ("model.pt", "predictions.npz", "metrics.json", "config.yaml", "history.csv")
CHECKSUMS = "sha256"  # metrics.json: {file name: SHA-256 hex digest} of CHECKED_FILES
CHECKED_FILES = ("model.pt", "predictions.npz")
VERIFY_TRIES = 3  # a concurrent replace_predictions changes metrics.json first: look again


def model_key(spec: dict) -> str:
    """Short stable hash of a model's spec (a JSON-serialisable dict)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:  # hashlib.file_digest is Python 3.11+
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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

    def verify(self) -> None:
        """KdfairError if model.pt or predictions.npz differ from the SHA-256 that metrics.json
        recorded (a digest or, while replace_predictions runs, a list of accepted ones). An entry
        without recorded checksums (written before them) is trusted. A mismatch counts only if
        metrics.json did not change meanwhile: every rewrite lists the new digest first."""
        for _ in range(VERIFY_TRIES):
            recorded = self.metrics.get(CHECKSUMS)
            if recorded is None:
                return
            changed = _mismatches(self.folder, recorded)
            if not changed:
                return
            self.metrics = _read_metrics(self.folder)
            if self.metrics.get(CHECKSUMS) == recorded:
                break
        differs = "differs" if len(changed) == 1 else "differ"
        raise corrupt_entry(
            self.folder,
            f"{' and '.join(changed)} {differs} from the SHA-256 recorded in metrics.json when the "
            "model was stored: changed or cut short since",
        )

    def replace_predictions(self, predictions: Predictions) -> None:
        """Rewrite predictions.npz (a reference teacher's features added) and its checksum:
        metrics.json accepts the old and the new file while the new one is renamed into place,
        so no moment, and no job killed at any moment, leaves a mismatch."""
        path, recorded = self.predictions_path, self.metrics.get(CHECKSUMS)
        if recorded is None:  # an entry from before checksums stays without them
            predictions.save(path)
            return
        old = recorded.get(path.name, [])
        with atomic_path(path) as tmp:
            predictions.save(tmp)
            new = sha256(tmp)
            self._record({**recorded, path.name: [*_as_list(old), new]})
        self._record({**recorded, path.name: new})

    def _record(self, checksums: dict) -> None:
        self.metrics = {**self.metrics, CHECKSUMS: checksums}
        write_json(self.folder / COMPLETE_MARKER, self.metrics)


def _as_list(digests) -> list[str]:
    return [digests] if isinstance(digests, str) else list(digests)


def _mismatches(folder: Path, recorded) -> list[str]:
    """The checked files whose digest is not among those recorded for them."""
    if not isinstance(recorded, dict):
        raise corrupt_entry(folder, f"metrics.json's {CHECKSUMS} is not a mapping of files")
    changed = []
    for name, digests in sorted(recorded.items()):
        try:
            digest = sha256(folder / name)
        except OSError:
            digest = None
        if digest not in _as_list(digests):
            changed.append(name)
    return changed


def _read_metrics(folder: Path) -> dict:
    try:
        metrics = json.loads((folder / COMPLETE_MARKER).read_text())
        if not isinstance(metrics, dict) or "accuracy" not in metrics:
            raise ValueError("metrics.json has no 'accuracy'")
    except (OSError, ValueError) as e:
        raise corrupt_entry(folder, str(e)) from e
    return metrics


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
        "kdfair": __version__,
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
        checksums = {name: sha256(folder / name) for name in CHECKED_FILES}
        write_json(folder / COMPLETE_MARKER, {**entry.metrics, CHECKSUMS: checksums})
        (folder / "train.ckpt").unlink(missing_ok=True)

    def folder(self, key: str) -> Path:
        return self.root / key

    def find(self, key: str, *, verify: bool = False) -> StoredModel | None:
        """The complete entry for `key`, or None if it was never finished. `verify`: its files'
        checksums checked too (what reusing it needs; reads every byte of them).

        Under DDP rank 0 looks and every rank gets its answer, so all ranks agree on what to
        train even while another job is finishing the entry.
        """
        return distributed.from_main(lambda: self._find(key, verify))

    def _find(self, key: str, verify: bool) -> StoredModel | None:
        folder = self.folder(key)
        if not (folder / COMPLETE_MARKER).exists():
            return None
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        if missing:
            raise corrupt_entry(folder, f"missing {', '.join(missing)}")
        entry = StoredModel(key, folder, _read_metrics(folder))
        if verify:
            entry.verify()
        return entry

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
        found = {key: self._reusable(key, named[key]) for key in keys}
        missing = [key for key in keys if found[key] is None]
        trained: list[str] = []
        if missing:
            with self.locks(missing):
                for key in missing:
                    found[key] = self._reusable(key, named[key])  # another job finished it?
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
                unchecked = "" if CHECKSUMS in found[key].metrics else " (no checksums recorded)"
                log.info("%s: reusing %s%s%s", named[key], found[key].folder, later, unchecked)
        return [(found[key], key in trained) for key in keys]

    def _reusable(self, key: str, description: str) -> StoredModel | None:
        """find(key), its checksums verified; a corrupt entry's error names the model."""
        try:
            return self.find(key, verify=True)
        except KdfairError as e:
            message = str(e)
            raise KdfairError(f"{description}: {message[:1].lower()}{message[1:]}") from e
