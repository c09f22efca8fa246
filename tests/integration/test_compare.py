"""`kdfair compare`: sweeps side by side, on folders whose answers are planted."""

from __future__ import annotations

import pandas as pd
import pytest

from kdfair.analysis.compare import compare
from kdfair.errors import KdfairError
from kdfair.results import read_results

from .cli_helpers import kdfair_in_process
from .sweep_fixture import write_fairness_sweep

FALL = ("fairness_improves_with_T", "eod_color")


@pytest.fixture(scope="module")
def two_folders(tmp_path_factory):
    """Sweep a (lr 0.05): EOD (colour) falls with T; sweep b (lr 0.1): it does not."""
    outputs = tmp_path_factory.mktemp("outputs")
    a = write_fairness_sweep(outputs, experiment="a", student_lr=0.05)
    b = write_fairness_sweep(outputs, experiment="b", student_lr=0.1, colour_trend=False)
    return a, b


def test_the_settings_that_differ_are_read_from_the_stored_recipes(two_folders, tmp_path):
    a, b = two_folders
    compare([str(a), str(b)], tmp_path / "cmp", resamples=200)
    settings = pd.read_csv(tmp_path / "cmp" / "settings.csv").set_index("setting").astype(str)
    # Only the student's learning rate tells the two recipes apart; everything shared is left out.
    assert list(settings.index) == ["student_optim.optimizer.lr"]
    assert settings.loc["student_optim.optimizer.lr"].tolist() == ["0.05", "0.1"]
    text = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| student_optim.optimizer.lr | 0.05 | 0.1 |" in text


def test_claims_line_up_one_column_per_sweep(two_folders, tmp_path):
    a, b = two_folders
    compare([str(a), str(b)], tmp_path / "cmp", resamples=200)
    claims = pd.read_csv(tmp_path / "cmp" / "claims.csv")
    verdicts = claims.set_index(["sweep", "claim", "metric"])["verdict"]
    assert verdicts[("a", *FALL)] == "held"
    assert verdicts[("b", *FALL)] == "not held"
    row = next(
        line
        for line in (tmp_path / "cmp" / "compare.md").read_text().splitlines()
        if line.startswith(f"| {FALL[0]} | {FALL[1]} |")
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("held (") and cells[3].startswith("not held (")


def test_metrics_against_T_carry_intervals_per_sweep(two_folders, tmp_path):
    a, b = two_folders
    compare([str(a), str(b)], tmp_path / "cmp", resamples=200)
    metrics = pd.read_csv(tmp_path / "cmp" / "metrics.csv")
    eod = metrics[(metrics.metric == "eod_color") & (metrics.role == "distilled")]
    assert set(eod.sweep) == {"a", "b"} and set(eod.temperature) == {1.0, 4.0, 7.0, 10.0}
    assert (eod.ci_low <= eod["mean"]).all() and (eod["mean"] <= eod.ci_high).all()
    falling = eod[eod.sweep == "a"].sort_values("temperature")["mean"].to_numpy()
    assert falling[0] > falling[-1] + 0.05  # the planted fall, seen through compare
    assert (tmp_path / "cmp" / "compare_eod_color.png").stat().st_size > 1000


def test_two_recipes_of_one_folder_are_compared_by_hash(tmp_path, capsys):
    write_fairness_sweep(tmp_path, seeds=[0, 1, 2], student_lr=0.05)
    folder = write_fairness_sweep(tmp_path, seeds=[0, 1, 2], student_lr=0.1)
    results = read_results(folder / "results.csv")
    ds = results[results.role == "distilled"].drop_duplicates("lr").set_index("lr")["recipe"]
    sweeps = [f"{folder}@{ds[0.05]}", f"{folder}@{ds[0.1]}"]
    done = kdfair_in_process(
        capsys, "compare", *sweeps, "--out", str(tmp_path / "cmp"), "--resamples", "200"
    )
    assert done.returncode == 0, done.stderr
    settings = pd.read_csv(tmp_path / "cmp" / "settings.csv").set_index("setting").astype(str)
    assert settings.loc["student_optim.optimizer.lr"].tolist() == ["0.05", "0.1"]
    assert f"demo@{ds[0.05]}" in settings.columns


def test_one_sweep_or_an_unknown_recipe_is_refused_with_what_to_pass(two_folders, tmp_path):
    a, _ = two_folders
    with pytest.raises(KdfairError, match="at least two sweeps"):
        compare([str(a)], tmp_path / "cmp")
    with pytest.raises(KdfairError, match="is not in"):
        compare([str(a), f"{a}@deadbeef"], tmp_path / "cmp")
