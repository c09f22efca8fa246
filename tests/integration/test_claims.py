"""Claims, intervals, label disparity, recipes and eval settings on sweeps whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdfair.analysis import analyze
from kdfair.metrics.columns import metric_columns
from kdfair.metrics.individual import Neighbourhood
from kdfair.predictions import Predictions
from kdfair.results import RECIPE_COLUMNS, read_results

from .cli_helpers import kdfair_in_process
from .sweep_fixture import write_fairness_sweep


def _claims(experiment) -> pd.DataFrame:
    return pd.read_csv(experiment / "analysis" / "claims.csv").set_index(["claim", "metric"])


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    experiment = write_fairness_sweep(tmp_path_factory.mktemp("outputs"))
    analyze(experiment, resamples=300)
    return experiment


def test_a_planted_fall_of_eod_with_T_is_held_and_a_flat_attribute_is_not(planted):
    claims = _claims(planted)
    held = claims.loc[("fairness_improves_with_T", "eod_color")]
    # The estimate is the mean per-seed slope on ln T; the verdict reads the Holm-adjusted p.
    assert held["verdict"] == "held" and held["estimate"] < -0.02 and held["p_adjusted"] <= 0.05
    assert held["n_models"] == 20 and held["n_seeds"] == 5
    assert claims.loc[("fairness_improves_with_T", "eod_texture"), "verdict"] == "not held"
    # Temperatures above 10 were not run: the reversal cannot be tested, and says why.
    reversal = claims.loc[("reversal_above_T10", "eod_color")]
    assert reversal["verdict"] == "not testable" and "above 10" in reversal["statistic"]
    assert set(claims.reset_index().columns) == {
        "claim",
        "metric",
        "verdict",
        "statistic",
        "estimate",
        "p_value",
        "p_adjusted",
        "n_seeds",
        "n_models",
    }


def test_the_report_opens_with_the_claims_and_shows_intervals_and_the_label_line(planted):
    text = (planted / "analysis" / "report.md").read_text()
    assert text.index("## Claims") < text.index("(Table 1)") < text.index("(Table 2)")
    assert "test labels (a perfect classifier)" in text
    summary = pd.read_csv(planted / "analysis" / "summary.csv")
    nds = summary[summary.role == "student"].iloc[0]
    assert nds["accuracy_ci_low"] < nds["accuracy_mean"] < nds["accuracy_ci_high"]
    assert f"[{nds['accuracy_ci_low'] * 100:.2f}, {nds['accuracy_ci_high'] * 100:.2f}]" in text


def test_label_disparity_equals_the_dpd_of_the_test_labels(planted):
    labels = pd.read_csv(planted / "analysis" / "label_disparity.csv").set_index("metric")["value"]
    teacher = read_results(planted / "results.csv").query("role == 'teacher'").iloc[0]
    p = Predictions.load(planted.parent / teacher["predictions"])
    for attr in ("color", "texture"):
        codes = p.attributes[attr]
        # by hand: per class, max - min over groups of P(y = c | group), averaged over classes
        share = np.array(
            [[np.mean(p.y_true[codes == g] == c) for c in range(10)] for g in np.unique(codes)]
        )
        expected = np.mean(share.max(axis=0) - share.min(axis=0))
        assert labels[f"dpd_{attr}"] == pytest.approx(expected, abs=1e-6)
        assert labels[f"dpd_{attr}_ci_low"] <= expected <= labels[f"dpd_{attr}_ci_high"]


def test_the_demo_shaped_sweep_is_compared_with_the_papers_trifeature_rows(planted):
    compared = pd.read_csv(planted / "analysis" / "paper_comparison.csv")
    assert list(compared.columns) == [
        "model",
        "metric",
        "ours",
        "ours_ci_low",
        "ours_ci_high",
        "paper",
        "difference",
        "source",
    ]
    row = compared.set_index(["model", "metric"]).loc[("DS T=10", "dpd_color")]
    summary = pd.read_csv(planted / "analysis" / "summary.csv")
    ds10 = summary[(summary.role == "distilled") & (summary.temperature == 10)].iloc[0]
    assert row["paper"] == 3.10 and row["source"] == "table2"
    assert row["ours"] == pytest.approx(ds10["dpd_color_mean"] * 100)
    assert row["difference"] == pytest.approx(row["ours"] - 3.10)
    assert {"teacher", "NDS", "DS T=1", "DS T=4", "DS T=7"} <= set(compared["model"])
    text = (planted / "analysis" / "report.md").read_text()
    assert "## Compared with the paper" in text and "relative to its own teacher" in text


def test_fewer_than_three_seeds_are_not_testable(tmp_path):
    experiment = write_fairness_sweep(tmp_path, seeds=[0, 1])
    analyze(experiment, resamples=100)
    claims = _claims(experiment)
    assert (claims["verdict"] == "not testable").all()
    assert claims["statistic"].str.contains(r"2 seeds with .* \(needs 3\)").any()


def test_two_recipes_in_one_folder_stop_with_the_setting_that_differs(tmp_path, capsys):
    write_fairness_sweep(tmp_path, seeds=[0, 1, 2], student_lr=0.05)
    experiment = write_fairness_sweep(tmp_path, seeds=[0, 1, 2], student_lr=0.1)
    result = kdfair_in_process(capsys, "analyze", str(experiment), "--resamples", "100")
    assert result.returncode == 2, result.stderr
    assert "student_optim.optimizer.lr: 0.05 vs 0.1" in result.stderr
    assert "Traceback" not in result.stderr
    results = read_results(experiment / "results.csv")
    fast = results[(results.role == "distilled") & (results.lr == 0.1)]["recipe"].iloc[0]
    picked = kdfair_in_process(
        capsys, "analyze", str(experiment), "--recipe", fast, "--resamples", "100"
    )
    assert picked.returncode == 0, picked.stderr
    summary = pd.read_csv(experiment / "analysis" / "summary.csv")
    assert summary["n"].tolist() == [3] * 6  # teacher, NDS, DS at four T: 3 seeds, one recipe
    # the teachers are the same models in both runs, the NDS and DS are not
    assert results.groupby("role")["recipe"].nunique().to_dict() == {
        "distilled": 2,
        "student": 2,
        "teacher": 1,
    }


def test_a_results_csv_without_recipe_columns_still_analyses(tmp_path):
    experiment = write_fairness_sweep(tmp_path, seeds=[0, 1, 2])
    path = experiment / "results.csv"
    read_results(path).drop(columns=RECIPE_COLUMNS).to_csv(path, index=False)
    (experiment / "recipes.json").unlink()
    report = analyze(experiment, resamples=100)
    assert "## Claims" in report.read_text()


def test_remeasure_writes_rows_for_the_new_eval_and_analyze_reads_one_eval(tmp_path, capsys):
    experiment = write_fairness_sweep(tmp_path, seeds=[0, 1, 2], k=5)
    before = read_results(experiment / "results.csv")
    result = kdfair_in_process(
        capsys,
        "analyze",
        str(experiment),
        "--remeasure",
        "eval.individual.k=3",
        "--resamples",
        "100",
    )
    assert result.returncode == 0, result.stderr
    after = read_results(experiment / "results.csv")
    assert len(after) == 2 * len(before) and after["eval"].nunique() == 2
    new = after[after["eval"] != before["eval"].iloc[0]]
    teacher = new[(new.role == "teacher") & (new.seed == 0)].iloc[0]
    embedding = Predictions.load(experiment.parent / teacher["predictions"]).embedding
    pairs = Neighbourhood.knn(embedding, k=3)
    for _, row in new.iterrows():  # every remeasured value from the predictions, independently
        expected = metric_columns(
            Predictions.load(experiment.parent / row["predictions"]),
            num_classes=10,
            neighbourhood=pairs,
        )
        for column, value in expected.items():
            assert row[column] == pytest.approx(value), column
    assert not np.allclose(new["individual_fairness"], before["individual_fairness"])
    summary = pd.read_csv(experiment / "analysis" / "summary.csv")
    assert summary["n"].tolist() == [3] * 6  # one eval setting, never both
    old = kdfair_in_process(
        capsys,
        "analyze",
        str(experiment),
        "--eval",
        before["eval"].iloc[0],
        "--resamples",
        "100",
    )
    assert old.returncode == 0, old.stderr
    summary = pd.read_csv(experiment / "analysis" / "summary.csv").set_index("role")
    nds = before[before.role == "student"]["individual_fairness"].mean()
    assert summary.loc["student", "individual_fairness_mean"] == pytest.approx(nds)


def test_the_fairness_figure_plots_the_summary_and_the_label_line(planted, monkeypatch):
    """The plotted points are summary.csv's (the data the figure is drawn from), in %."""
    from kdfair.analysis import figures

    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path)
    summary = pd.read_csv(planted / "analysis" / "summary.csv")
    labels = pd.read_csv(planted / "analysis" / "label_disparity.csv").set_index("metric")["value"]
    line = (labels["dpd_color"], labels["dpd_color_ci_low"], labels["dpd_color_ci_high"])
    figures.metric_vs_temperature(
        summary, ["dpd_color"], ["DPD"], planted / "x.png", label_lines={"dpd_color": line}
    )
    (ax,) = drawn[0].axes
    lines = {artist.get_label().split(" (")[0]: artist for artist in ax.get_lines()}
    ds = summary[summary.role == "distilled"]
    np.testing.assert_allclose(lines["DS"].get_xdata(), ds["temperature"])
    np.testing.assert_allclose(lines["DS"].get_ydata(), ds["dpd_color_mean"] * 100)
    teacher = summary[summary.role == "teacher"]["dpd_color_mean"].iloc[0] * 100
    assert lines["teacher"].get_ydata()[0] == pytest.approx(teacher)
    assert lines["test labels"].get_ydata()[0] == pytest.approx(labels["dpd_color"] * 100)


def test_classwise_claims_need_three_seeds_and_three_temperatures(tmp_path):
    """#SC/#TC trends are claims of class-wise experiments (no protected attributes)."""
    from .sweep_fixture import write_sweep

    two_seeds = write_sweep(tmp_path / "a", seeds=[0, 1], temperatures=(2.0, 4.0, 6.0))
    results = read_results(two_seeds / "results.csv").drop(columns=["dpd_color", "eod_color"])
    results.to_csv(two_seeds / "results.csv", index=False)
    analyze(two_seeds, resamples=100)
    claims = _claims(two_seeds)
    row = claims.loc[("sc_rises_with_T", "n_sc")]
    assert row["verdict"] == "not testable" and "fewer than 3 seeds" in row["statistic"]
    assert ("fairness_improves_with_T", "dpd_color") not in claims.index
