import pandas as pd
import pytest

from kdfair.errors import KdfairError
from kdfair.results import (
    LEADING,
    RECIPE_COLUMNS,
    TRAILING,
    UNRECORDED,
    append_results,
    read_recipes,
    read_results,
    recipes_path,
)


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


def test_a_model_measured_under_new_eval_settings_gets_a_row_of_its_own(tmp_path):
    path = tmp_path / "results.csv"
    append_results(path, [_row("a", eval="e1", individual_fairness=0.1)])
    append_results(path, [_row("a", eval="e1", individual_fairness=0.9)])  # same eval: kept
    append_results(path, [_row("a", eval="e2", individual_fairness=0.2)])
    table = read_results(path)
    assert table["eval"].tolist() == ["e1", "e2"]
    assert table["individual_fairness"].tolist() == [0.1, 0.2]


def test_recipes_json_explains_every_hash_written(tmp_path):
    path = tmp_path / "results.csv"
    first = {"recipes": {"r1": {"role": "teacher", "settings": {"a": 1}}}, "evals": {"e1": {}}}
    second = {"recipes": {"r2": {"role": "student", "settings": {"a": 2}}}, "evals": {"e1": {}}}
    append_results(path, [_row("a", recipe="r1", eval="e1")], first)
    append_results(path, [_row("b", recipe="r2", eval="e1")], second)
    recipes = read_recipes(recipes_path(path))
    assert set(recipes["recipes"]) == {"r1", "r2"}
    assert recipes["recipes"]["r2"]["settings"] == {"a": 2}


def test_a_results_csv_written_before_recipes_is_read_as_one_recipe(tmp_path):
    path = tmp_path / "results.csv"
    old = pd.DataFrame([_row("a"), _row("b")]).drop(columns=RECIPE_COLUMNS, errors="ignore")
    old.to_csv(path, index=False)
    table = read_results(path)
    assert list(table.columns) == LEADING + TRAILING
    assert set(table["recipe"]) == {UNRECORDED} and set(table["eval"]) == {UNRECORDED}
    append_results(path, [_row("b")])  # the old rows keep their identity: nothing appended
    assert read_results(path)["model_key"].tolist() == ["a", "b"]


def test_a_model_in_another_role_gets_a_row_for_that_role(tmp_path):
    path = tmp_path / "results.csv"
    append_results(path, [_row("a", role="student", eval="e")])
    append_results(path, [_row("a", role="teacher", eval="e"), _row("a", role="student", eval="e")])
    assert read_results(path)["role"].tolist() == ["student", "teacher"]


def test_a_cut_short_file_is_refused_before_a_row_is_appended_to_it(tmp_path):
    """A rewrite would keep the cut row as if it were whole: the job stops and says which line."""
    path = tmp_path / "results.csv"
    append_results(path, [_row("k1"), _row("k2")])
    text = path.read_text()
    path.write_text(text[: len(text) - 30])  # the copy or the disk stopped mid-row
    with pytest.raises(KdfairError, match=r"line 3 \(model_key k2\) is cut short"):
        append_results(path, [_row("k3")])
    assert path.read_text() == text[: len(text) - 30]
    path.write_text(text.rstrip("\n"))  # a whole last row without a line end is whole
    assert read_results(path)["model_key"].tolist() == ["k1", "k2"]
