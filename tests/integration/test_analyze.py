"""`kdfair analyze` on sweeps whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdfair.analysis import analyze
from kdfair.errors import KdfairError
from kdfair.results import read_results

from .cli_helpers import run_kdfair
from .sweep_fixture import write_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    experiment = write_sweep(tmp_path_factory.mktemp("outputs"))
    report = analyze(experiment)
    return experiment, report


def test_the_planted_class_shift_is_found_at_its_temperature_only(analysed):
    experiment, _ = analysed
    counts = pd.read_csv(experiment / "analysis" / "significant_classes.csv")
    tests = pd.read_csv(experiment / "analysis" / "classwise_tests.csv")
    at_4 = tests[(tests.temperature == 4.0) & (tests.comparison == "student_vs_distilled")]
    assert at_4.set_index("class").loc[3, "significant"]
    assert counts.set_index("temperature").loc[4.0, "n_sc"] >= 1
    # Same distributions at T=1: (almost) nothing is significant.
    assert counts.set_index("temperature").loc[1.0, "n_sc"] <= 1
    assert set(tests["comparison"]) == {"student_vs_distilled", "teacher_vs_distilled"}


def test_summary_equals_a_pandas_groupby_over_results_csv(analysed):
    experiment, _ = analysed
    results = read_results(experiment / "results.csv")
    summary = pd.read_csv(experiment / "analysis" / "summary.csv")
    distilled = results[results.role == "distilled"].groupby("temperature")
    for metric in ("accuracy", "dpd_color", "eod_color", "individual_fairness", "consistency"):
        rows = summary[summary.role == "distilled"].set_index("temperature")
        np.testing.assert_allclose(rows[f"{metric}_mean"], distilled[metric].mean())
        np.testing.assert_allclose(rows[f"{metric}_std"], distilled[metric].std())
    teacher = summary[summary.role == "teacher"].iloc[0]
    assert teacher["n"] == 5
    assert teacher["accuracy_mean"] == pytest.approx(
        results[results.role == "teacher"]["accuracy"].mean()
    )


def test_report_tables_show_mean_and_std_of_results(analysed):
    experiment, report = analysed
    text = report.read_text()
    results = read_results(experiment / "results.csv")
    nds = results[results.role == "student"]["accuracy"] * 100
    assert f"| NDS | {nds.mean():.2f} ± {nds.std():.2f} [" in text
    for heading in (
        "(Table 1)",
        "(Table 2)",
        "(Table 4)",
        "#SC",
        "#TC",
        "EOD (color)",
        "DPD (color)",
    ):
        assert heading in text
    assert "collapsed" not in text.lower()


def test_every_figure_is_written_and_referenced(analysed):
    experiment, report = analysed
    text = report.read_text()
    pngs = sorted((experiment / "analysis").glob("*.png"))
    names = {p.name for p in pngs}
    assert {
        "accuracy_vs_temperature.png",
        "group_fairness_color.png",
        "individual_fairness.png",
        "significant_classes.png",
        "per_class_accuracy.png",
    } <= names
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
        assert f"]({png.name})" in text


def test_disagreement_matrices_sum_the_seeds(analysed):
    experiment, _ = analysed
    matrix = pd.read_csv(
        experiment / "analysis" / "disagreement_student_vs_distilled_T4.csv", index_col=0
    )
    assert matrix.shape == (10, 10) and np.all(np.diag(matrix.to_numpy()) == 0)
    assert list(matrix.columns) == [f"shape{c}" for c in range(10)]
    results = read_results(experiment / "results.csv")
    expected = 0
    for seed in range(5):
        nds = results[(results.role == "student") & (results.seed == seed)].iloc[0]
        ds = results[
            (results.role == "distilled") & (results.seed == seed) & (results.temperature == 4)
        ].iloc[0]
        with (
            np.load(experiment.parent / nds.predictions) as a,
            np.load(experiment.parent / ds.predictions) as b,
        ):
            expected += int((a["y_pred"] != b["y_pred"]).sum())
    assert matrix.to_numpy().sum() == expected


def test_one_seed_is_reported_instead_of_tested(tmp_path):
    experiment = write_sweep(tmp_path, seeds=[0])
    text = analyze(experiment).read_text()
    assert "not tested" in text and "at least 2" in text
    counts = pd.read_csv(experiment / "analysis" / "significant_classes.csv")
    assert counts["n_sc"].isna().all()


def test_collapsed_models_are_marked(tmp_path):
    experiment = write_sweep(tmp_path, collapsed=[("distilled", 4.0)])
    text = analyze(experiment).read_text()
    assert "Collapsed models" in text and "DS T=4 † (5/5 collapsed)" in text
    summary = pd.read_csv(experiment / "analysis" / "summary.csv")
    assert summary.set_index(["role", "temperature"]).loc[("distilled", 4.0), "n_collapsed"] == 5


def test_analyze_cli_and_its_errors(tmp_path):
    experiment = write_sweep(tmp_path / "outputs", seeds=[0, 1])
    result = run_kdfair(tmp_path, tmp_path, "analyze", str(experiment), "--correction", "holm")
    assert result.returncode == 0, result.stderr
    assert "correction: holm" in result.stdout
    assert "Correction: Holm over the" in result.stdout  # the claims table's, by default
    uncorrected = run_kdfair(
        tmp_path, tmp_path, "analyze", str(experiment), "--claims-correction", "none"
    )
    assert uncorrected.returncode == 0, uncorrected.stderr
    claims = pd.read_csv(experiment / "analysis" / "claims.csv")
    assert claims["p_adjusted"].equals(claims["p_value"])
    wrong = run_kdfair(tmp_path, tmp_path, "analyze", str(experiment), "--claims-correction", "x")
    assert wrong.returncode == 2 and "--claims-correction" in wrong.stderr
    missing = run_kdfair(tmp_path, tmp_path, "analyze", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "No results.csv" in missing.stderr
    assert "Traceback" not in missing.stderr
    with pytest.raises(KdfairError, match="predictions files"):
        (tmp_path / "outputs" / "models" / "teacher0000000" / "predictions.npz").unlink()
        analyze(experiment)
