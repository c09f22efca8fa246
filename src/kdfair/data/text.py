"""Text as tensors: tokenised once with the experiment's tokenizer and cached.

Teacher and student read the same token ids, so one tokenizer (dataset.tokenizer) serves both:
bert-base-uncased, distilbert-base-uncased and all-MiniLM-L6-v2 share one uncased vocabulary.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from kdfair.data.bundle import DataBundle, Split
from kdfair.data.cache import cache_path, cached_arrays
from kdfair.data.inputs import TokenInputs
from kdfair.errors import KdfairError
from kdfair.models.text import resolve_source


def tokenize(texts: list[str], tokenizer: str, max_length: int, cache_dir: Path) -> torch.Tensor:
    """int64 (N, 2, max_length): token ids and attention masks, padded and truncated."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    params = {"tokenizer": tokenizer, "max_length": max_length, "texts": digest, "n": len(texts)}

    def build() -> dict[str, np.ndarray]:
        from transformers import AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            tok = AutoTokenizer.from_pretrained(resolve_source(tokenizer), local_files_only=True)
        except OSError as e:
            raise KdfairError(
                f"dataset.tokenizer={tokenizer!r} is neither a local tokenizer directory nor in "
                "the Hugging Face cache, and kdfair downloads nothing. Point it at a saved "
                "tokenizer (tokenizer.save_pretrained(dir)), or use `minilm`."
            ) from e
        encoded = tok(
            texts, max_length=max_length, padding="max_length", truncation=True, return_tensors="np"
        )
        return {
            "tokens": np.stack([encoded["input_ids"], encoded["attention_mask"]], axis=1).astype(
                np.int64
            )
        }

    arrays = cached_arrays(cache_path(cache_dir, "tokens", params), build, what="tokenised text")
    return torch.from_numpy(arrays["tokens"])


def text_bundle(
    name: str,
    splits: dict[str, tuple[list[str], np.ndarray, dict[str, np.ndarray]]],
    *,
    class_names: list[str],
    attribute_groups: dict[str, list[str]],
    tokenizer: str,
    max_length: int,
    cache_dir: Path,
    info: dict,
) -> DataBundle:
    """A text DataBundle from {split: (texts, labels, attributes)} with `train`, `test` and
    optionally `val`."""
    built = {}
    for split, (texts, labels, attributes) in splits.items():
        built[split] = Split(
            tokenize(texts, tokenizer, max_length, cache_dir),
            torch.tensor(np.array(labels), dtype=torch.int64),
            {k: torch.tensor(np.array(v), dtype=torch.int64) for k, v in attributes.items()},
        )
    return DataBundle(
        name=name,
        train=built["train"],
        test=built["test"],
        val=built.get("val"),
        num_classes=len(class_names),
        class_names=class_names,
        attribute_groups=attribute_groups,
        input_kind=TokenInputs(),
        info=info,
    )
