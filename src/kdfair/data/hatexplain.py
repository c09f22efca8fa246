"""HateXplain (Mathew et al. 2021) as a binary toxic-vs-normal task with gender and race groups.

Original release layout: <root>/hatexplain/dataset.json (post id -> annotators with label and
target communities, post_tokens) and <root>/hatexplain/post_id_divisions.json (official train /
val / test ids); or a Hugging Face `datasets` copy in <root>/hatexplain_hf/ (`load_dataset(
"hatexplain").save_to_disk(...)`), whose splits are the same official ones.

As in the original benchmark, a post's label is the majority of its three annotators' labels
(hatespeech, offensive, normal); posts without a majority ("undecided") are dropped; then
hatespeech and offensive are merged into toxic (1) against normal (0). The official val split
is the bundle's validation split (per-epoch accuracy, eval.checkpoint=best); test is the
official test split.

Protected attributes: a community counts as a post's target when a majority (2 of 3) of its
annotators named it. Each attribute maps communities to groups (kept in the dataset config);
a post's group is the first of the attribute's communities among its targets, in mapping order,
or `none` when it targets none of them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from kdfair.data.bundle import DataBundle
from kdfair.data.layout import DataIO, corrupt, require_files
from kdfair.data.text import text_bundle
from kdfair.errors import KdfairError

log = logging.getLogger(__name__)

FOLDER = "hatexplain"
HF_FOLDER = "hatexplain_hf"
LAYOUT = """  <root>/hatexplain/dataset.json and <root>/hatexplain/post_id_divisions.json
  (or a Hugging Face datasets copy: <root>/hatexplain_hf/, saved with save_to_disk)"""
TOXIC = {"hatespeech": 1, "offensive": 1, "normal": 0}
HOW_TO_GET = (
    "Download Data/dataset.json and Data/post_id_divisions.json from the HateXplain "
    "repository (github.com/hate-alert/HateXplain) into <dataset.io.root>/hatexplain/."
)
DEFAULT_ATTRIBUTES = {
    "gender": {"Women": "women", "Men": "men"},
    "race": {
        "African": "african",
        "Arab": "arab",
        "Asian": "asian",
        "Caucasian": "caucasian",
        "Hispanic": "hispanic",
    },
}


def majority(values: list[str], *, at_least: int = 2) -> str | None:
    """The value given by at least `at_least` annotators, or None."""
    value, count = Counter(values).most_common(1)[0] if values else (None, 0)
    return value if count >= at_least else None


def post_groups(annotators: list[dict], mapping: dict[str, str]) -> str:
    """The post's group under one attribute's community -> group mapping (see module docstring)."""
    counts = Counter(t for a in annotators for t in set(a.get("target") or []))
    majority_targets = {t for t, n in counts.items() if n * 2 > len(annotators)}
    for community, group in mapping.items():
        if community in majority_targets:
            return group
    return "none"


def _posts_original(root: Path) -> dict[str, list[tuple[str, list[dict], list[str]]]]:
    """{split: [(post id, annotators, tokens)]} from dataset.json and post_id_divisions.json."""
    dataset_file, divisions_file = require_files(
        "HateXplain",
        root,
        [f"{FOLDER}/dataset.json", f"{FOLDER}/post_id_divisions.json"],
        layout=LAYOUT.replace("<root>", str(root)),
        how_to_get=HOW_TO_GET,
    )
    try:
        posts = json.loads(dataset_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise corrupt("HateXplain", dataset_file, e, HOW_TO_GET) from e
    try:
        divisions = json.loads(divisions_file.read_text())
        splits = {"train": divisions["train"], "test": divisions["test"]}
        if divisions.get("val"):  # the official release has one; without it, no val split
            splits["val"] = divisions["val"]
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as e:
        raise corrupt("HateXplain", divisions_file, e, HOW_TO_GET) from e
    out = {}
    for split, ids in splits.items():
        rows = []
        for post_id in ids:
            post = posts.get(post_id)
            try:
                rows.append(
                    (post_id, post["annotators"], post["post_tokens"])
                    if post
                    else (post_id, None, None)
                )
            except (KeyError, TypeError) as e:
                raise corrupt(
                    "HateXplain", dataset_file, KeyError(f"post {post_id}: {e}"), HOW_TO_GET
                ) from e
        out[split] = rows
    return out


def _posts_hf(path: Path) -> dict[str, list[tuple[str, list[dict], list[str]]]]:
    """The same from a Hugging Face `datasets` copy saved with save_to_disk (train/test splits;
    annotator labels as class indices)."""
    from datasets import load_from_disk  # a core dependency

    try:
        copy = load_from_disk(str(path))
        votes = copy["train"].features["annotators"]  # a dict of lists, or a list of dicts
        label = votes["label"] if isinstance(votes, dict) else votes.feature["label"]
        names = getattr(label, "feature", label).names
    except Exception as e:  # noqa: BLE001 - arrow, json and key errors all mean a broken copy
        raise corrupt("HateXplain", path, e, HOW_TO_GET) from e
    out = {}
    for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
        if name not in copy:
            continue
        rows = []
        for row in copy[name]:
            votes = row["annotators"]
            annotators = [
                {"label": names[label], "target": target}
                for label, target in zip(votes["label"], votes["target"], strict=True)
            ]
            rows.append((row["id"], annotators, row["post_tokens"]))
        out[split] = rows
    return out


def read_hatexplain(root: Path, attributes: dict[str, dict[str, str]]) -> tuple[dict, dict]:
    """{split: (texts, labels, {attribute: group names})} for train, val and test, and drop
    counts.

    Reads <root>/hatexplain/ (the original release) or, when it exists, <root>/hatexplain_hf/
    (a Hugging Face `datasets` copy saved with save_to_disk).
    """
    hf_copy = root / HF_FOLDER
    posts = _posts_hf(hf_copy) if hf_copy.is_dir() else _posts_original(root)
    out, dropped = {}, {"undecided": 0, "missing": 0}
    for split, rows in posts.items():
        texts, labels, groups = [], [], {a: [] for a in attributes}
        for post_id, annotators, tokens in rows:
            if annotators is None:
                dropped["missing"] += 1
                continue
            label = majority([a["label"] for a in annotators])
            if label is None:
                dropped["undecided"] += 1
                continue
            if label not in TOXIC:
                raise KdfairError(
                    f"HateXplain post {post_id} has the unknown label {label!r}; "
                    f"expected one of {sorted(TOXIC)}."
                )
            texts.append(" ".join(tokens))
            labels.append(TOXIC[label])
            for attribute, mapping in attributes.items():
                groups[attribute].append(post_groups(annotators, mapping))
        out[split] = (texts, np.asarray(labels), groups)
    sizes = {split: len(texts) for split, (texts, _, _) in out.items()}
    log.info(
        "HateXplain: %d train / %d val / %d test posts; dropped: %s",
        sizes["train"],
        sizes.get("val", 0),
        sizes["test"],
        dropped,
    )
    return out, dropped


def load_hatexplain(
    io: DataIO | str,
    *,
    tokenizer: str = "bert-base-uncased",
    max_length: int = 128,
    attributes: dict[str, dict[str, str]] | None = None,
) -> DataBundle:
    """HateXplain toxic-vs-normal with one protected attribute per `attributes` entry."""
    attributes = {k: dict(v) for k, v in (attributes or DEFAULT_ATTRIBUTES).items()}
    if not attributes:
        raise KdfairError("dataset.attributes is empty; map target communities to groups.")
    io = DataIO.of(io)
    splits, dropped = read_hatexplain(Path(io.root), attributes)
    group_names = {a: ["none", *dict.fromkeys(m.values())] for a, m in attributes.items()}
    encoded = {
        split: (
            texts,
            labels,
            {
                a: np.array([group_names[a].index(g) for g in groups[a]], dtype=np.int64)
                for a in attributes
            },
        )
        for split, (texts, labels, groups) in splits.items()
    }
    return text_bundle(
        "hatexplain",
        encoded,
        class_names=["normal", "toxic"],
        attribute_groups=group_names,
        tokenizer=tokenizer,
        max_length=max_length,
        cache_dir=io.require_cache_dir("HateXplain"),
        info={
            **{f"n_{split}": len(texts) for split, (texts, _, _) in splits.items()},
            "dropped": dropped,
        },
    )
