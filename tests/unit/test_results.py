import pandas as pd

from kdfair.results import LEADING, TRAILING, append_results, read_results


def _row(key, role="teacher", **metrics):
    return {
        "experiment": "e",
        "dataset": "d",
        "role": role,
        "arch": "a",
        "teacher_arch": None,
        "temperature": None,
        "alpha": None,
        "seed": 0,
        "model_key": key,
        "teacher_key": None,
        "accuracy": 0.123456789012345678,
        **metrics,
        "predictions": f"models/{key}/p.npz",
        "finished_at": "2026-01-01T00:00:00+00:00",
    }


def test_columns_follow_the_contract_order(tmp_path):
    path = tmp_path / "results.csv"
    table = append_results(path, [_row("a", dpd_color=0.1, eod_color=0.2)])
    assert list(table.columns) == LEADING + ["dpd_color", "eod_color"] + TRAILING
    assert list(pd.read_csv(path).columns) == list(table.columns)


def test_a_model_already_present_is_not_appended_again(tmp_path):
    path = tmp_path / "results.csv"
    append_results(path, [_row("a"), _row("b")])
    append_results(path, [_row("b"), _row("c")])
    assert read_results(path)["model_key"].tolist() == ["a", "b", "c"]


def test_accuracy_keeps_full_precision(tmp_path):
    path = tmp_path / "results.csv"
    append_results(path, [_row("a")])
    assert read_results(path)["accuracy"].iloc[0] == 0.123456789012345678


def test_keys_that_look_numeric_stay_strings(tmp_path):
    path = tmp_path / "results.csv"
    append_results(path, [_row("000123456789")])
    append_results(path, [_row("000123456789")])
    assert read_results(path)["model_key"].tolist() == ["000123456789"]
