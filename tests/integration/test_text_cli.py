"""The text experiments through the same CLI, store, results.csv and analyze as the images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ..conftest import REAL_REDDITBIAS
from ..fixtures.text import tiny_hatexplain_experiment, write_hatexplain
from .cli_helpers import run_kdfair
from .independent import check_results

SHARED_REDDITBIAS = REAL_REDDITBIAS


def test_hatexplain_bert_distilbert_end_to_end(tmp_path):
    common = tiny_hatexplain_experiment(tmp_path)
    result = run_kdfair(
        tmp_path, tmp_path / "data", "train", "-m", *common, "distill.temperature=1,4", "seed=0,1"
    )
    assert result.returncode == 0, result.stderr
    experiment = tmp_path / "outputs" / "hatexplain_bert_distilbert"
    table = check_results(experiment, num_classes=2, ties_allowed=True)  # every metric, again
    assert len(table) == 8  # 2 teachers, 2 NDS, 4 DS
    for column in ("dpd_gender", "eod_gender", "dpd_race", "eod_race"):
        assert table[column].dropna().between(0, 1).all(), column  # empty only when undefined
    assert table["dpd_gender"].notna().all() and table["individual_fairness"].notna().all()
    # every prediction carries its own post's label and target groups (the fixture is
    # deterministic: written again, it says what each test post is)
    written = write_hatexplain(tmp_path / "again", n=90)
    posts = [p for p in written["divisions"]["test"] if p in written["expected"]]
    for row in table.itertuples():
        with np.load(tmp_path / "outputs" / row.predictions) as p:
            expected = [written["expected"][posts[i]] for i in p["index"]]
            assert p["y_true"].tolist() == [e["label"] for e in expected]
            gender = p["attr_gender_labels"][p["attr_gender"]].tolist()
            assert gender == [
                "women" if "Women" in e["targets"] else "men" if "Men" in e["targets"] else "none"
                for e in expected
            ]
    analysis = run_kdfair(tmp_path, tmp_path / "data", "analyze", str(experiment))
    assert analysis.returncode == 0, analysis.stderr
    assert "DPD (gender)" in analysis.stdout and "DPD (race)" in analysis.stdout


@pytest.mark.skipif(
    not SHARED_REDDITBIAS.is_dir(), reason="KDFAIR_REDDITBIAS (the real RedditBias CSVs) not set"
)
def test_redditbias_minilm_runs_on_the_real_comments(tmp_path):
    result = run_kdfair(
        tmp_path,
        tmp_path,
        "train",
        "+experiment=redditbias_minilm",
        "+debug=smoke",
        f"dataset.io.root={SHARED_REDDITBIAS}",
        "dataset.max_length=32",
        "distill.temperature=2",
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "outputs" / "redditbias_minilm" / "results.csv")
    assert table["arch"].tolist() == ["minilm", "minilm_l2", "minilm_l2"]
    assert {"dpd_group", "eod_group"} <= set(table.columns)


def test_input_space_individual_fairness_is_refused_for_text(tmp_path):
    """Token ids are not pixels: distances between them mean nothing, so the job stops at once."""
    common = tiny_hatexplain_experiment(tmp_path)
    result = run_kdfair(
        tmp_path, tmp_path / "data", "train", *common, "eval.individual.space=input"
    )
    assert result.returncode == 2, result.stderr
    assert "eval.individual.space=input" in result.stderr and "space=teacher" in result.stderr
    assert not (tmp_path / "outputs" / "models").exists()  # nothing was trained
