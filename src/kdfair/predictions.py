"""The saved-predictions file format: predictions.npz, read and written as a `Predictions` record.

A model's test-set outputs, saved once by training (kdfair.predict) and read by every measure
(kdfair.measure, kdfair.metrics) and analysis (kdfair.analysis): predict once, measure many.
Arrays (docs/design.md section 4): y_true, y_pred, logits, index, attr_<name>,
attr_<name>_labels and, optionally, embedding (the model's penultimate features; stored for
teachers) and class_names (C,). Plain numpy: the measuring side never imports torch.
"""

from __future__ import annotations

import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdfair.atomic import atomic_path
from kdfair.errors import KdfairError

HALF_PRECISION_MIN_CLASSES = 200  # logits may be stored as float16 from this many classes on


@dataclass
class Predictions:
    y_true: np.ndarray  # int64 (N,)
    y_pred: np.ndarray  # int64 (N,)
    logits: np.ndarray  # float32 (N, C)
    index: np.ndarray  # int64 (N,), position in the whole test split (before dataset.max_test)
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> int64 (N,)
    attribute_labels: dict[str, list[str]] = field(default_factory=dict)  # name -> group names
    embedding: np.ndarray | None = None  # float32 (N, D)
    class_names: list[str] | None = None  # (C,), optional

    def save(self, path: Path) -> None:
        logits = self.logits
        if logits.shape[1] >= HALF_PRECISION_MIN_CLASSES:
            logits = logits.astype(np.float16)
        arrays = {
            "y_true": self.y_true,
            "y_pred": self.y_pred,
            "logits": logits,
            "index": self.index,
        }
        for name, codes in self.attributes.items():
            arrays[f"attr_{name}"] = codes
            arrays[f"attr_{name}_labels"] = np.asarray(self.attribute_labels[name], dtype=str)
        if self.embedding is not None:
            arrays["embedding"] = self.embedding
        if self.class_names is not None:
            arrays["class_names"] = np.asarray(self.class_names, dtype=str)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # a file object, so numpy does not append ".npz"
                np.savez(f, **arrays)

    @classmethod
    def load(cls, path: Path, *, labels_only: bool = False, model: str = "") -> Predictions:
        """Read predictions.npz. `labels_only` skips the logits (returned as an (N, 0) array) and
        the embedding: what analyses of labels, predictions and groups need, so that a sweep of
        ImageNet models (50,000 x 1,000 logits each) fits in memory. A file that cannot be read
        is a KdfairError naming it, `model` (who made it, for the message) and the fix."""
        with readable(path, model), np.load(path, allow_pickle=False) as f:
            names = [k[5:] for k in f.files if k.startswith("attr_") and not k.endswith("_labels")]
            n = len(f["y_true"])
            return cls(
                y_true=f["y_true"],
                y_pred=f["y_pred"],
                logits=(
                    np.empty((n, 0), np.float32) if labels_only else f["logits"].astype(np.float32)
                ),
                index=f["index"],
                attributes={n: f[f"attr_{n}"] for n in names},
                attribute_labels={n: f[f"attr_{n}_labels"].tolist() for n in names},
                embedding=f["embedding"] if "embedding" in f.files and not labels_only else None,
                class_names=f["class_names"].tolist() if "class_names" in f.files else None,
            )


@contextmanager
def readable(path: Path, model: str = ""):
    """Reading predictions.npz inside this block: a file cut short, damaged (zip's CRC-32 checks
    each array as it is read), not an npz or missing an array is one KdfairError."""
    try:
        yield
    except KdfairError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise unreadable(Path(path), e, model) from e


def unreadable(path: Path, error: Exception, model: str = "") -> KdfairError:
    """The error for a predictions file that cannot be read: the file, the model, the fix."""
    reason = " ".join(f"{type(error).__name__}: {error}".split())  # one line
    whose = f", the predictions of {model}," if model else ""
    folder = path.parent
    retrain = (  # a model store folder (metrics.json marks one): delete it and retrain
        f"delete the model's folder (rm -r {folder}) and rerun the `kdfair train` command that "
        "made it, which trains the model again"
        if (folder / "metrics.json").is_file()
        else "rerun the `kdfair train` command that made it"
    )
    state = "is missing" if isinstance(error, FileNotFoundError) else "was cut short or damaged"
    return KdfairError(
        f"{path}{whose} cannot be read ({reason}): it {state}. If these outputs are a copy, "
        f"copy that file again; else {retrain}."
    )
