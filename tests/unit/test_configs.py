"""The config tree is the registry: every file composes and builds what it names."""

import pytest
import torch
from omegaconf import OmegaConf

from kdfair.pipeline import build_model, dataset_spec
from kdfair.validate import temperatures, validate

from ..conftest import CONFIG_DIR, compose_train

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
DATASETS = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))


def test_the_registry_is_not_empty():
    assert "trifeature_resnet20_lenet5" in EXPERIMENTS and "demo" in EXPERIMENTS
    assert {"lenet5", "resnet20", "resnet56"} <= set(MODELS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment, tmp_path):
    cfg = compose_train([f"+experiment={experiment}", f"dataset.root={tmp_path}"])
    text = (CONFIG_DIR / "experiment" / f"{experiment}.yaml").read_text()
    assert cfg.experiment == experiment or "Alias of" in text
    validate(cfg)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert temperatures(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_files_are_short_deltas_with_a_purpose_comment(experiment):
    text = (CONFIG_DIR / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert text.splitlines()[1].startswith("# ")  # says what it reproduces
    assert len(text.splitlines()) <= 30


@pytest.mark.parametrize("model", MODELS)
def test_model_name_is_its_file_name(model):
    assert OmegaConf.load(CONFIG_DIR / "model" / f"{model}.yaml").name == model


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_name_is_its_file_name(dataset):
    assert OmegaConf.load(CONFIG_DIR / "dataset" / f"{dataset}.yaml").name == dataset


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("slot", ["teacher", "student"])
def test_every_model_builds_and_trains_in_either_slot(model, slot):
    cfg = compose_train([f"model@{slot}={model}"])
    net = build_model(cfg[slot])
    out = net(torch.randn(2, 3, cfg.dataset.image_size, cfg.dataset.image_size))
    assert out.shape == (2, cfg.dataset.num_classes)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_builds_teacher_and_student_for_its_dataset(experiment):
    cfg = compose_train([f"+experiment={experiment}"])
    size = cfg.dataset.get("image_size", 64 if cfg.dataset.name == "tinyimagenet" else 32)
    for slot in ("teacher", "student"):
        net = build_model(cfg[slot])
        with torch.no_grad():
            assert net.eval()(torch.randn(1, 3, size, size)).shape == (1, cfg.dataset.num_classes)


def test_the_paper_schedule_is_the_default():
    cfg = compose_train([])
    for slot in ("teacher_optim", "student_optim"):
        optim = cfg[slot]
        assert optim.optimizer.lr == 0.1 and optim.optimizer.weight_decay == 0.001
        assert optim.epochs == 100 and list(optim.milestones) == [30, 60, 90]
    assert cfg.distill.alpha == 0.8 and cfg.distill.t_squared is False


def test_model_keys_ignore_where_the_data_lives():
    a = dataset_spec(compose_train(["dataset.root=/a"]).dataset)
    b = dataset_spec(compose_train(["dataset.root=/b"]).dataset)
    assert a == b and "root" not in a


@pytest.mark.parametrize(
    ("sweep", "temperatures"),
    [
        ("classwise", [2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40]),
        ("fairness", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40]),
    ],
)
def test_the_paper_grids(sweep, temperatures):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"+sweep={sweep}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert [float(t) for t in params["distill.temperature"].split(",")] == temperatures
    assert params.seed == "0,1,2,3,4"
