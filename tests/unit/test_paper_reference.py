"""The paper's numbers shipped with kdfair: well formed, findable, and the protocol's own."""

from pathlib import Path

import pandas as pd

from kdfair.analysis.paper import paper_reference

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "src" / "kdfair" / "configs"


def test_every_reference_row_names_real_configs_and_results_columns():
    reference = paper_reference()
    assert set(reference["table"]) == {1, 2, 4}
    for row in reference.itertuples():
        assert (CONFIGS / "dataset" / f"{row.dataset}.yaml").is_file(), row
        for arch in (row.teacher_arch, row.student_arch):
            assert (CONFIGS / "model" / f"{arch}.yaml").is_file(), row
        assert row.model in {"teacher", "NDS"} or row.model.startswith("DS T="), row
        assert row.metric in {"accuracy", "n_sc", "n_tc", "individual_fairness"} or (
            row.metric[:4] in {"dpd_", "eod_"}
        ), row
    keys = ["dataset", "teacher_arch", "student_arch", "model", "metric"]
    assert not reference.duplicated(keys).any()


def test_every_reference_value_is_written_in_the_protocol():
    """Each number is copied from docs/protocol.md as it is printed there (no invented value)."""
    protocol = (REPO / "docs" / "protocol.md").read_text()
    with (REPO / "src" / "kdfair" / "analysis" / "paper_reference.csv").open() as f:
        raw = pd.read_csv(f, dtype=str)
    missing = [v for v in raw["value"] if v not in protocol]
    assert not missing


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
