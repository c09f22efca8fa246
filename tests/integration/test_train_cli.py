"""`kdfair train` end to end, as a user runs it: files, columns, sweeps and reuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kdfair.factories import build_dataset
from kdfair.results import LEADING, TRAILING
from kdfair.store import REQUIRED_FILES

from ..conftest import compose_train
from .cli_helpers import kdfair_in_process, run_kdfair
from .independent import check_results

SMOKE = ["+debug=smoke"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")  # the generated Trifeature cache, shared by tests


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_root):
    workdir = tmp_path_factory.mktemp("smoke")
    result = run_kdfair(workdir, data_root, "train", *SMOKE)
    assert result.returncode == 0, result.stderr
    return workdir, result


def test_smoke_run_writes_results_with_the_contract_columns(smoke_run):
    workdir, _ = smoke_run
    table = pd.read_csv(workdir / "outputs" / "demo" / "results.csv")
    metrics = [
        "dpd_color",
        "eod_color",
        "dpd_texture",
        "eod_texture",
        "individual_fairness",
        "consistency",
    ]
    assert list(table.columns) == LEADING + metrics + TRAILING
    assert table["individual_fairness"].notna().all() and table["consistency"].between(0, 1).all()
    assert table["role"].tolist() == ["teacher", "student", "distilled", "distilled", "distilled"]
    distilled = table[table.role == "distilled"]
    assert distilled["temperature"].tolist() == [1.0, 4.0, 10.0]
    assert (distilled["alpha"] == 0.8).all()
    assert (distilled["teacher_key"] == table.loc[0, "model_key"]).all()
    assert (distilled["teacher_arch"] == "resnet20").all() and (distilled["arch"] == "lenet5").all()
    assert table.loc[:1, ["temperature", "alpha", "teacher_key", "teacher_arch"]].isna().all().all()
    assert table["accuracy"].between(0, 1).all()


def test_every_model_folder_is_complete_and_self_describing(smoke_run):
    workdir, _ = smoke_run
    outputs = workdir / "outputs"
    table = pd.read_csv(outputs / "demo" / "results.csv", dtype={"model_key": str})
    for _, row in table.iterrows():
        folder = outputs / "models" / row.model_key
        assert sorted(p.name for p in folder.iterdir()) == sorted(REQUIRED_FILES)  # no train.ckpt
        checkpoint = torch.load(folder / "model.pt", weights_only=True)
        assert checkpoint["role"] == row.role and checkpoint["spec"]["seed"] == 0
        with np.load(outputs / row.predictions) as p:
            assert p["y_true"].dtype == np.int64 and p["y_pred"].dtype == np.int64
            assert p["logits"].dtype == np.float32 and p["logits"].shape == (100, 10)
            assert (p["index"] == np.arange(100)).all()
            for attr in ("color", "texture"):
                assert p[f"attr_{attr}"].shape == (100,) and len(p[f"attr_{attr}_labels"]) == 10
            assert np.mean(p["y_true"] == p["y_pred"]) == pytest.approx(row.accuracy)
        history = pd.read_csv(folder / "history.csv")
        assert history["epoch"].tolist() == [1]
        assert "git_sha" in (folder / "config.yaml").read_text()


def test_the_summary_table_is_printed(smoke_run):
    """One line per model of the job, with its role, key and whether it was trained now."""
    workdir, result = smoke_run
    summary = result.stderr.split("Results of this job", 1)[1].splitlines()
    table = pd.read_csv(workdir / "outputs" / "demo" / "results.csv", dtype={"model_key": str})
    for row in table.itertuples():
        (line,) = [line for line in summary if row.model_key in line]
        assert line.split()[0] == row.role and line.rstrip().endswith("trained")


def test_a_second_run_reuses_every_model_and_adds_no_rows(smoke_run, data_root):
    workdir, _ = smoke_run
    results = workdir / "outputs" / "demo" / "results.csv"
    before = results.read_text()
    again = run_kdfair(workdir, data_root, "train", *SMOKE)
    assert again.returncode == 0, again.stderr
    assert "training into" not in again.stderr and again.stderr.count("reusing") == 5
    assert results.read_text() == before


def test_a_sweep_trains_each_teacher_once(tmp_path, data_root):
    result = run_kdfair(
        tmp_path, data_root, "train", "-m", *SMOKE, "distill.temperature=1,4", "seed=0"
    )
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert log.count("teacher resnet20 seed=0 lr=0.1: training into") == 1
    assert log.count("student lenet5 seed=0 lr=0.02: training into") == 1
    assert log.count("teacher resnet20 seed=0 lr=0.1: reusing") == 1  # by the second job
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv")
    assert sorted(table["role"]) == ["distilled", "distilled", "student", "teacher"]
    assert table["model_key"].is_unique
    assert len(list((tmp_path / "outputs" / "models").glob("*/metrics.json"))) == 4
    sweeps = list((tmp_path / "outputs" / "demo" / "multirun").glob("*/[01]"))
    assert len(sweeps) == 2  # Hydra's job folders live under outputs/<experiment>/


def test_teacher_seed_pins_one_teacher_for_every_student_seed(tmp_path, data_root):
    result = run_kdfair(
        tmp_path,
        data_root,
        "train",
        "-m",
        *SMOKE,
        "distill.temperature=4",
        "seed=0,1",
        "distill.teacher_seed=0",
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv", dtype={"teacher_key": str})
    assert (table["role"] == "teacher").sum() == 1
    distilled = table[table.role == "distilled"]
    assert distilled["seed"].tolist() == [0, 1] and distilled["teacher_key"].nunique() == 1


def test_individual_fairness_of_a_seed_1_job_uses_the_seed_0_teachers_neighbourhoods(
    tmp_path, data_root
):
    # teacher_seed=null: the job's own teacher is seed 1 (the demo shares seed 0's), so the
    # seed-0 teacher is trained only as the neighbourhood reference
    result = run_kdfair(
        tmp_path,
        data_root,
        "train",
        *SMOKE,
        "distill.temperature=4",
        "seed=1",
        "distill.teacher_seed=null",
    )
    assert result.returncode == 0, result.stderr
    assert "teacher resnet20 seed=0 lr=0.1: training into" in result.stderr  # the reference teacher
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv")
    assert table["seed"].tolist() == [1, 1, 1]  # its rows are this job's models only
    assert table["individual_fairness"].notna().all()
    assert len(list((tmp_path / "outputs" / "models").glob("*/metrics.json"))) == 4


def test_fused_and_separate_distillation_store_the_same_models(tmp_path, data_root):
    runs = {}
    for fused in ("true", "false"):
        workdir = tmp_path / fused
        workdir.mkdir()
        result = run_kdfair(workdir, data_root, "train", *SMOKE, f"distill.fused={fused}")
        assert result.returncode == 0, result.stderr
        assert ("models fused" in result.stderr) == (fused == "true")
        runs[fused] = pd.read_csv(
            workdir / "outputs" / "demo" / "results.csv", dtype={"model_key": str}
        )
    assert runs["true"]["model_key"].tolist() == runs["false"]["model_key"].tolist()
    for row_true, row_false in zip(
        runs["true"].itertuples(), runs["false"].itertuples(), strict=True
    ):
        with (
            np.load(tmp_path / "true" / "outputs" / row_true.predictions) as a,
            np.load(tmp_path / "false" / "outputs" / row_false.predictions) as b,
        ):
            np.testing.assert_array_equal(a["logits"], b["logits"])


def test_recipes_and_eval_settings_keep_rows_apart(tmp_path, data_root, capsys):
    """Two student learning rates in one folder are two recipes, not extra seeds; a rerun with
    other eval settings measures its models again instead of keeping the old rows."""
    # every population at student_optim's lr (the demo's own per-population rates set aside)
    plain = (*SMOKE, "distill.lr=null", "nds_optim.optimizer.lr=null")
    assert run_kdfair(tmp_path, data_root, "train", *plain).returncode == 0
    faster = run_kdfair(tmp_path, data_root, "train", *plain, "student_optim.optimizer.lr=0.1")
    assert faster.returncode == 0, faster.stderr
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv", dtype=str)
    assert table.groupby("role")["recipe"].nunique().to_dict() == {
        "teacher": 1,  # the same teacher, reused
        "student": 2,
        "distilled": 2,
    }
    assert sorted(table[table.role == "student"]["lr"].astype(float)) == [0.02, 0.1]
    mixed = kdfair_in_process(
        capsys, "analyze", str(tmp_path / "outputs" / "demo"), "--resamples", "100"
    )
    assert mixed.returncode == 2
    assert "student_optim.optimizer.lr: 0.02 vs 0.1" in mixed.stderr, mixed.stderr

    rerun = run_kdfair(tmp_path, data_root, "train", *plain, "eval.individual.k=3")
    assert rerun.returncode == 0, rerun.stderr
    table = pd.read_csv(tmp_path / "outputs" / "demo" / "results.csv", dtype={"eval": str})
    assert len(table) == 5 + 4 + 5 and table["eval"].nunique() == 2  # the teacher row once
    newest = table[table["eval"] == table["eval"].iloc[-1]]
    assert len(newest) == 5 and newest["model_key"].isin(table["model_key"].iloc[:5]).all()
    slow = table[(table.role == "distilled") & (table.lr == 0.02)]["recipe"].iloc[0]
    picked = kdfair_in_process(
        capsys,
        "analyze",
        str(tmp_path / "outputs" / "demo"),
        "--recipe",
        slow,
        "--resamples",
        "100",
    )
    assert picked.returncode == 0, picked.stderr
    summary = pd.read_csv(tmp_path / "outputs" / "demo" / "analysis" / "summary.csv")
    assert summary["n"].tolist() == [1] * 5  # one recipe, one eval setting: never pooled
    assert sorted(summary["individual_fairness_mean"]) == pytest.approx(
        sorted(newest["individual_fairness"])
    )


def test_every_metric_in_results_csv_equals_its_recomputation(smoke_run, data_root):
    """From predictions.npz by the definitions (tests/integration/independent.py); the smoke
    test split (100 images, 10 shapes x 10 colours) leaves some TPRs undefined: EOD is empty
    for those models and the log says why."""
    workdir, result = smoke_run
    table = check_results(workdir / "outputs" / "demo", num_classes=10)
    assert table["eod_color"].isna().any() and "left empty" in result.stderr
    cfg = compose_train(["+experiment=demo", *SMOKE, f"dataset.io.root={data_root}"])
    test = build_dataset(cfg.dataset).test  # the attributes the data itself has, at `index`
    for row in table.itertuples():
        with np.load(workdir / "outputs" / row.predictions) as p:
            for attr in ("color", "texture"):
                expected = test.attributes[attr].numpy()[p["index"]]
                np.testing.assert_array_equal(p[f"attr_{attr}"], expected)
            np.testing.assert_array_equal(p["y_true"], test.labels.numpy()[p["index"]])


def test_a_model_trained_as_student_serves_later_as_the_reference_teacher(tmp_path, data_root):
    """Role is not part of a key: a ResNet-20 first trained as the non-distilled student (no
    embedding stored) is reused as the teacher; its features are computed then, and kept."""
    swapped = [*SMOKE, "distill.temperature=4", "model@teacher=lenet5", "model@student=resnet20"]
    first = run_kdfair(
        tmp_path, data_root, "train", "+experiment=trifeature_resnet20_lenet5", *swapped
    )
    assert first.returncode == 0, first.stderr
    again = run_kdfair(
        tmp_path,
        data_root,
        "train",
        "+experiment=trifeature_resnet20_lenet5",
        *SMOKE,
        "distill.temperature=4",
    )
    assert again.returncode == 0, again.stderr
    table = pd.read_csv(
        tmp_path / "outputs" / "trifeature_resnet20_lenet5" / "results.csv",
        dtype={"model_key": str},
    )
    resnet = table[(table.arch == "resnet20") & (table.role != "distilled")]["model_key"].unique()
    assert len(resnet) == 1  # one model, in two roles
    assert set(table[table.model_key == resnet[0]]["role"]) == {"student", "teacher"}
    assert table["individual_fairness"].notna().all()
    with np.load(tmp_path / "outputs" / "models" / resnet[0] / "predictions.npz") as p:
        assert p["embedding"].shape == (100, 64)  # computed when needed, kept in the store
