"""Text datasets and models: HateXplain JSON, RedditBias CSVs with messy labels, offline models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kdfair.data import DataIO
from kdfair.data.hatexplain import load_hatexplain, majority
from kdfair.data.redditbias import load_redditbias, parse_labels
from kdfair.errors import KdfairError
from kdfair.models.text import text_model

from ..conftest import REAL_REDDITBIAS
from ..fixtures.text import (
    write_hatexplain,
    write_hatexplain_hf,
    write_tiny_models,
    write_tokenizer,
)

SHARED_REDDITBIAS = REAL_REDDITBIAS


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return str(write_tokenizer(tmp_path_factory.mktemp("tokenizer")))


def test_majority_vote_needs_two_of_three():
    assert majority(["normal", "normal", "offensive"]) == "normal"
    assert majority(["hatespeech", "offensive", "normal"]) is None


def test_hatexplain_labels_groups_and_splits_follow_the_release(tmp_path, tokenizer):
    written = write_hatexplain(tmp_path / "data")
    data = load_hatexplain(
        DataIO(str(tmp_path / "data"), cache_dir=str(tmp_path / "cache")),
        tokenizer=tokenizer,
        max_length=16,
    )
    expected_test = [p for p in written["divisions"]["test"] if p in written["expected"]]
    assert len(data.test) == len(expected_test)  # undecided posts dropped
    assert data.info["dropped"]["undecided"] == 12
    assert data.test.labels.tolist() == [written["expected"][p]["label"] for p in expected_test]
    gender = [data.attribute_groups["gender"][g] for g in data.test.attributes["gender"].tolist()]
    race = [data.attribute_groups["race"][g] for g in data.test.attributes["race"].tolist()]
    for post_id, g, r in zip(expected_test, gender, race, strict=True):
        targets = written["expected"][post_id]["targets"]
        assert g == ("women" if "Women" in targets else "men" if "Men" in targets else "none")
        assert r == (
            "african" if "African" in targets else "asian" if "Asian" in targets else "none"
        )
    assert data.test.inputs.shape == (len(expected_test), 2, 16) and data.modality == "text"


def test_hatexplain_reads_the_official_validation_split(tmp_path, tokenizer):
    written = write_hatexplain(tmp_path / "data", n_val=10)
    data = load_hatexplain(
        DataIO(str(tmp_path / "data"), cache_dir=str(tmp_path / "cache")),
        tokenizer=tokenizer,
        max_length=16,
    )
    expected_val = [p for p in written["divisions"]["val"] if p in written["expected"]]
    assert len(data.val) == len(expected_val) == 8  # two undecided posts dropped
    assert data.val.labels.tolist() == [written["expected"][p]["label"] for p in expected_val]
    train_ids = [p for p in written["divisions"]["train"] if p in written["expected"]]
    assert len(data.train) == len(train_ids)  # val posts are not trained on


def test_hatexplain_missing_and_corrupt_files(tmp_path, tokenizer):
    with pytest.raises(KdfairError, match="dataset.json"):
        load_hatexplain(DataIO(str(tmp_path), cache_dir=str(tmp_path / "c")), tokenizer=tokenizer)
    write_hatexplain(tmp_path)
    (tmp_path / "hatexplain" / "dataset.json").write_text('{"truncated": ')
    with pytest.raises(KdfairError, match="dataset.json is corrupt"):
        load_hatexplain(DataIO(str(tmp_path), cache_dir=str(tmp_path / "c")), tokenizer=tokenizer)


def test_redditbias_messy_labels_are_parsed_explicitly():
    values = pd.Series(["1", "0", "1.0", "0.0", "2", None, "?", 1.0])
    assert parse_labels(values).tolist()[:4] == [1, 0, 1, 0]
    assert parse_labels(values).isna().tolist() == [False] * 4 + [True] * 3 + [False]


def _write_redditbias(root: Path) -> None:
    rows = {
        "gender": [
            ("women are bad", "1"),
            ("they are good", "0"),
            ("hmm", "2"),
            ("x", None),
            ("all men are bad", "1"),
            ("we love you", "0"),
        ],
        "race": [
            ("people hate this", "1.0"),
            ("some love", "0.0"),
            ("arab people", "1.0"),
            ("asian people", "0.0"),
        ],
    }
    for group, items in rows.items():
        (root / group).mkdir(parents=True)
        table = pd.DataFrame(
            {
                "id": range(len(items)),
                "comment": [t for t, _ in items],
                "bias_sent": [label for _, label in items],
            }
        )
        encoding = "latin-1" if group == "race" else "utf-8"
        table.to_csv(
            root / group / f"reddit_comments_{group}_x_annotated.csv",
            index=False,
            encoding=encoding,
        )


def test_redditbias_reads_groups_and_drops_what_is_not_a_label(tmp_path, tokenizer):
    _write_redditbias(tmp_path / "rb")
    data = load_redditbias(
        DataIO(str(tmp_path / "rb"), cache_dir=str(tmp_path / "cache")),
        tokenizer=tokenizer,
        groups=("gender", "race"),
        test_fraction=0.5,
    )
    assert len(data.train) == len(data.test) == 4  # half of each (group, label) cell
    assert data.info["dropped"]["gender"] == {"unlabelled": 1, "other_label": 1}
    assert data.attribute_groups == {"group": ["gender", "race"]}
    assert sorted(data.test.labels.tolist()) == [0, 0, 1, 1]
    with pytest.raises(KdfairError, match="empty split"):
        load_redditbias(
            DataIO(str(tmp_path / "rb"), cache_dir=str(tmp_path / "cache")),
            tokenizer=tokenizer,
            groups=("gender", "race"),
            test_fraction=0.01,
        )


@pytest.mark.skipif(
    not SHARED_REDDITBIAS.is_dir(), reason="KDFAIR_REDDITBIAS (the real RedditBias CSVs) not set"
)
def test_the_real_redditbias_release(tmp_path):
    data = load_redditbias(DataIO(str(SHARED_REDDITBIAS), cache_dir=str(tmp_path)), max_length=32)
    assert len(data.train) + len(data.test) > 10_000
    assert data.info["dropped"]["gender"]["other_label"] == 24  # the "2" labels
    assert set(data.test.attributes["group"].tolist()) == {0, 1, 2, 3, 4}
    assert set(data.train.labels.tolist()) == {0, 1}
    assert 0.3 < data.train.labels.float().mean() < 0.7


def test_text_model_cuts_layers_and_loads_offline(tmp_path):
    paths = write_tiny_models(tmp_path)
    full, cut = text_model(2, str(paths["bert"])), text_model(2, str(paths["bert"]), num_layers=1)
    assert len(cut.encoder.encoder.layer) == 1 < len(full.encoder.encoder.layer)
    tokens = torch.stack([torch.randint(5, 20, (3, 8)), torch.ones(3, 8, dtype=torch.long)], 1)
    assert cut(tokens).shape == (3, 2) and cut.features(tokens).shape == (3, 32)
    with pytest.raises(KdfairError, match="downloads nothing"):
        text_model(2, str(tmp_path / "no-such-model"))
    with pytest.raises(KdfairError, match="cannot cut"):
        text_model(2, str(paths["distilbert"]), num_layers=5)


def test_minilm_ships_with_its_package():
    model = text_model(2, "minilm", num_layers=2)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(15.6e6, rel=0.01)
    assert np.isfinite(model(torch.ones(1, 2, 8, dtype=torch.long)).detach().numpy()).all()


def test_a_hugging_face_copy_gives_the_same_data_as_the_original_release(tmp_path, tokenizer):
    write_hatexplain_hf(tmp_path)
    common = {"tokenizer": tokenizer, "max_length": 16}
    original = load_hatexplain(
        DataIO(str(tmp_path / "original"), cache_dir=str(tmp_path / "c1")), **common
    )
    copy = load_hatexplain(DataIO(str(tmp_path), cache_dir=str(tmp_path / "c2")), **common)
    for split in ("train", "val", "test"):
        a, b = getattr(original, split), getattr(copy, split)
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
        for attribute in ("gender", "race"):
            assert torch.equal(a.attributes[attribute], b.attributes[attribute])
