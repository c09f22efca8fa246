"""The paper's numbers shipped with kdfair: complete, well formed, and the protocol's own."""

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kdfair.analysis.load import Sweep
from kdfair.analysis.markdown import paper_section
from kdfair.analysis.paper import COMPARISON_COLUMNS, comparison, paper_reference
from kdfair.data.trifeature import generate

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "src" / "kdfair" / "configs"
PROTOCOL = REPO / "docs" / "protocol.md"
KEYS = ["dataset", "teacher_arch", "student_arch", "model", "metric"]
TABLES = {"table1", "table2", "table4"}
FIGURES = {"fig4", "fig5", "fig8"}

# The columns of the paper's tables as docs/protocol.md prints them: per teacher/student pair,
# the results.csv columns of its cells, left to right after the Model and T columns.
CIFAR_R = ("cifar100", "resnet56", "resnet20")
CIFAR_D = ("cifar100", "densenet169", "densenet121")
IMAGENET_R = ("imagenet", "resnet50", "resnet18")
IMAGENET_V = ("imagenet", "vit_base", "tiny_vit")
TRIFEATURE = ("trifeature", "resnet20", "lenet5")
CELEBA = ("celeba", "resnet50", "resnet18")
HATEXPLAIN = ("hatexplain", "bert_base", "distilbert")
LAYOUT = {
    "table1": (
        "Reference (Table 1:",
        [
            (pair, m)
            for pair in (CIFAR_R, CIFAR_D, IMAGENET_R, IMAGENET_V)
            for m in ("accuracy", "n_sc", "n_tc")
        ],
    ),
    "table2": (
        "### Reference (Table 2:",
        [(TRIFEATURE, m) for m in ("accuracy", "eod_color", "dpd_color")]
        + [(CELEBA, m) for m in ("accuracy", "eod_Young", "dpd_Young")],
    ),
    "table4": (
        "Reference (Table 4:",
        [(pair, "individual_fairness") for pair in (CELEBA, TRIFEATURE, HATEXPLAIN)],
    ),
}


def _raw() -> pd.DataFrame:
    """paper_reference.csv as written (strings, empty std as '')."""
    with (REPO / "src" / "kdfair" / "analysis" / "paper_reference.csv").open() as f:
        return pd.read_csv(f, dtype=str, keep_default_na=False)


def _markdown_rows(text: str, caption: str) -> list[list[str]]:
    """The body cells of the first markdown table after `caption`."""
    lines = text[text.index(caption) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[2:]  # after the header and the rule


def _protocol_tables() -> dict[tuple, tuple[str, str]]:
    """(source, dataset, teacher, student, model, metric) -> (value, std) as printed."""
    text = PROTOCOL.read_text()
    values = {}
    for source, (caption, columns) in LAYOUT.items():
        for row in _markdown_rows(text, caption):
            model = {"Teacher": "teacher", "NDS": "NDS"}.get(row[0], f"DS T={row[1]}")
            assert len(row) == 2 + len(columns), row
            for (pair, metric), cell in zip(columns, row[2:], strict=True):
                if cell:
                    value, _, std = cell.partition("±")
                    values[(source, *pair, model, metric)] = (value, std)
    return values


@cache
def _attributes(dataset: str) -> set[str]:
    """The protected attributes a sweep's results.csv has dpd_/eod_ columns for."""
    if dataset == "trifeature":  # generated: every drawn feature but the label is protected
        return set(generate(1, image_size=8, seed=0, supersample=1)) - {"images", "shape"}
    config = yaml.safe_load((CONFIGS / "dataset" / f"{dataset}.yaml").read_text())
    return set(config.get("protected") or config.get("attributes") or ())


def test_every_reference_row_names_real_configs_and_results_columns():
    reference = paper_reference()
    assert set(reference["source"]) == TABLES | FIGURES
    for row in reference.itertuples():
        assert (CONFIGS / "dataset" / f"{row.dataset}.yaml").is_file(), row
        for arch in (row.teacher_arch, row.student_arch):
            assert (CONFIGS / "model" / f"{arch}.yaml").is_file(), row
        assert row.model in {"teacher", "NDS"} or row.model.startswith("DS T="), row
        if row.metric[:4] in {"dpd_", "eod_"}:
            assert row.metric[4:] in _attributes(row.dataset), row
        else:
            assert row.metric in {"accuracy", "n_sc", "n_tc", "individual_fairness"}, row
    assert not reference.duplicated(KEYS).any()


def test_every_value_of_tables_1_2_and_4_is_in_the_csv_as_printed_in_the_protocol():
    """Cell by cell: value and the paper's ± (std) of each table cell of docs/protocol.md."""
    raw = _raw()
    tables = raw[raw["source"].isin(TABLES)]
    ours = {
        (r.source, r.dataset, r.teacher_arch, r.student_arch, r.model, r.metric): (r.value, r.std)
        for r in tables.itertuples()
    }
    printed = _protocol_tables()
    assert ours == printed
    # 4 pairs x (11 accuracies + 9 x 2 counts) + 2 datasets x 3 metrics x 12 + 3 x 12
    assert len(printed) == 224
    assert tables.groupby("source").size().to_dict() == {"table1": 116, "table2": 72, "table4": 36}


def test_figure_readings_carry_their_figure_and_no_std():
    raw = _raw()
    figures = raw[raw["source"].isin(FIGURES)]
    assert figures.groupby("source").size().to_dict() == {"fig4": 72, "fig5": 60, "fig8": 18}
    assert (figures["std"] == "").all()
    # Fig. 8: T = 20, 30, 40 of CIFAR-100 R56/R20 and ImageNet R50/R18 (accuracy, #SC, #TC)
    fig8 = figures[figures.source == "fig8"]
    assert set(fig8["model"]) == {"DS T=20", "DS T=30", "DS T=40"}
    assert set(fig8["metric"]) == {"accuracy", "n_sc", "n_tc"}
    # Fig. 4: CelebA Male and Trifeature texture whole, Young and colour above T = 10 only
    fig4 = figures[figures.source == "fig4"]
    assert set(fig4["dataset"]) == {"celeba", "trifeature"}
    for metric in ("eod_Young", "dpd_Young", "eod_color", "dpd_color"):
        assert set(fig4.loc[fig4.metric == metric, "model"]) == {"DS T=20", "DS T=30", "DS T=40"}
    for metric in ("eod_Male", "dpd_Male", "eod_texture", "dpd_texture"):
        models = set(fig4.loc[fig4.metric == metric, "model"])
        assert models == {"teacher", "NDS", *(f"DS T={t}" for t in (*range(1, 11), 20, 30, 40))}
    assert set(figures.loc[figures.source == "fig5", "dataset"]) == {"hatexplain"}
    # a value printed in a table is never also a figure reading of the same key
    assert not raw.duplicated(KEYS).any()


def test_every_reference_value_is_written_in_the_protocol():
    """Each number is copied from docs/protocol.md as it is printed there (no invented value)."""
    protocol = PROTOCOL.read_text()
    missing = [v for v in _raw()["value"] if v not in protocol]
    assert not missing
    assert "../shared" not in protocol


def test_spot_checked_values():
    reference = paper_reference().set_index(KEYS)
    assert reference.loc[(*IMAGENET_V, "DS T=7", "n_sc"), "value"] == 329
    row = reference.loc[(*CELEBA, "DS T=3", "accuracy")]
    assert (row["value"], row["std"], row["source"]) == (92.53, 0.13, "table2")
    assert reference.loc[(*HATEXPLAIN, "DS T=6", "individual_fairness"), "value"] == 0.0768
    row = reference.loc[(*IMAGENET_R, "DS T=40", "n_tc")]
    assert (row["value"], row["source"]) == (238, "fig8")
    row = reference.loc[(*CELEBA, "DS T=10", "eod_Male")]  # the figure's own inconsistency
    assert row["value"] == 2.90 and row["source"] == "fig4" and "3.29" in row["note"]
    row = reference.loc[(*HATEXPLAIN, "teacher", "dpd_race")]
    assert (row["value"], row["source"]) == (1.64, "fig5")


def test_the_demo_setting_finds_the_papers_trifeature_rows():
    reference = paper_reference()
    rows = reference[
        (reference.dataset == "trifeature")
        & (reference.teacher_arch == "resnet20")
        & (reference.student_arch == "lenet5")
    ]
    table = rows.set_index(["model", "metric"])["value"]
    assert table["DS T=10", "dpd_color"] == 3.10 and table["teacher", "dpd_color"] == 3.64
    assert table["NDS", "individual_fairness"] == 0.0462


def _sweep(pair, temperatures) -> Sweep:
    dataset, teacher, student = pair
    roles = [("teacher", teacher, np.nan), ("student", student, np.nan)]
    roles += [("distilled", student, t) for t in temperatures]
    results = pd.DataFrame(roles, columns=["role", "arch", "temperature"]).assign(dataset=dataset)
    return Sweep(Path("outputs/x"), results, num_classes=10, class_names=[])


def _summary(sweep: Sweep, metrics: dict[str, float]) -> pd.DataFrame:
    """One summary.csv row per population, every metric at `value` (a fraction) +- 0.01."""
    rows = sweep.results[["role", "temperature"]].copy()
    for metric, value in metrics.items():
        rows[f"{metric}_mean"] = value
        rows[f"{metric}_ci_low"], rows[f"{metric}_ci_high"] = value - 0.01, value + 0.01
    return rows.reset_index(drop=True)


NO_COUNTS = pd.DataFrame(columns=["temperature", "n_sc", "n_tc"])


def test_a_sweep_at_T2_and_T20_is_compared_with_the_table_and_the_figure():
    sweep = _sweep(TRIFEATURE, [2.0, 20.0])
    metrics = {"accuracy": 0.9, "eod_color": 0.02, "dpd_color": 0.04, "eod_texture": 0.03}
    compared = comparison(sweep, _summary(sweep, metrics), NO_COUNTS)
    assert list(compared.columns) == COMPARISON_COLUMNS and COMPARISON_COLUMNS[-1] == "source"
    rows = compared.set_index(["model", "metric"])
    t2 = rows.loc[("DS T=2", "accuracy")]
    assert (t2["paper"], t2["source"]) == (92.41, "table2")
    assert t2["ours"] == pytest.approx(90.0) and t2["difference"] == pytest.approx(90.0 - 92.41)
    assert t2["ours_ci_low"] == pytest.approx(89.0)
    assert rows.loc[("DS T=20", "eod_color"), "source"] == "fig4"
    assert rows.loc[("DS T=20", "eod_color"), "paper"] == 1.06
    assert rows.loc[("DS T=2", "eod_texture"), "source"] == "fig4"
    # every reference value of the populations and metrics this sweep has, and nothing else
    assert len(compared) == 3 * 4 + 3  # teacher, NDS, DS T=2 x 4 metrics; DS T=20 x 3 (no acc)
    assert "individual_fairness" not in set(compared["metric"])  # not in this summary
    # one block per metric (table rows and figure readings together), models in the paper's order
    assert list(compared["metric"].drop_duplicates()) == [
        "accuracy",
        "eod_color",
        "dpd_color",
        "eod_texture",
    ]
    assert compared["metric"].ne(compared["metric"].shift()).sum() == 4
    eod = compared.loc[compared.metric == "eod_color", "model"]
    assert list(eod) == ["teacher", "NDS", "DS T=2", "DS T=20"]


def test_class_counts_are_compared_at_every_T_the_paper_has():
    sweep = _sweep(CIFAR_R, [3.0, 5.0, 30.0])
    counts = pd.DataFrame(
        {"temperature": [3.0, 5.0, 30.0], "n_sc": [6, 9, 13], "n_tc": [12, 8, 15]}
    )
    compared = comparison(sweep, _summary(sweep, {"accuracy": 0.69}), counts)
    rows = compared.set_index(["model", "metric"])
    assert rows.loc[("DS T=3", "n_sc"), "paper"] == 7
    assert rows.loc[("DS T=3", "n_sc"), "difference"] == -1
    assert rows.loc[("DS T=5", "n_tc"), "source"] == "table1"
    assert rows.loc[("DS T=30", "n_tc"), "source"] == "fig8"
    assert np.isnan(rows.loc[("DS T=30", "n_sc"), "ours_ci_low"])
    accuracy = compared[compared.metric == "accuracy"]
    assert list(accuracy["model"]) == ["teacher", "NDS", "DS T=3", "DS T=5", "DS T=30"]


def test_the_report_marks_figure_readings():
    sweep = _sweep(TRIFEATURE, [4.0, 20.0])
    metrics = {"accuracy": 0.9, "eod_color": 0.02, "dpd_color": 0.04}
    text = "\n".join(paper_section(comparison(sweep, _summary(sweep, metrics), NO_COUNTS)))
    assert "| DS T=20 | eod_color | 2.00 [1.00, 3.00] | ≈1.06 | +0.94 | Fig. 4 (read off) |" in text
    assert "| DS T=4 | eod_color | 2.00 [1.00, 3.00] | 1.32 | +0.68 | Table 2 |" in text
    assert "read off its figures" in text
    tables_only = _sweep(TRIFEATURE, [4.0])
    only_tables = comparison(tables_only, _summary(tables_only, metrics), NO_COUNTS)
    assert "read off" not in "\n".join(paper_section(only_tables))
    cifar = _sweep(CIFAR_R, [30.0])
    counts = pd.DataFrame({"temperature": [30.0], "n_sc": [13], "n_tc": [15]})
    text = "\n".join(paper_section(comparison(cifar, _summary(cifar, {}), counts)))
    assert "| DS T=30 | n_sc | 13 | ≈14 | -1.00 | Fig. 8 (read off) |" in text
