"""The config tree is the registry: every file composes and builds what it names."""

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from kdfair.data import DataIO
from kdfair.factories import build_model
from kdfair.settings import dataset_spec
from kdfair.validate import temperatures, validate

from ..conftest import CONFIG_DIR, compose_train
from ..fixtures.text import write_tiny_models

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
TEXT_MODELS = sorted(
    m for m in MODELS if "models.text" in (CONFIG_DIR / "model" / f"{m}.yaml").read_text()
)
IMAGE_MODELS = [m for m in MODELS if m not in TEXT_MODELS]
DATASETS = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))


def test_the_registry_is_not_empty():
    assert "trifeature_resnet20_lenet5" in EXPERIMENTS and "demo" in EXPERIMENTS
    assert {"lenet5", "resnet20", "resnet56"} <= set(MODELS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment, tmp_path):
    cfg = compose_train([f"+experiment={experiment}", f"dataset.io.root={tmp_path}"])
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
    """A dataset's name is its file's; a variant (trifeature_demo) keeps its parent's."""
    node = OmegaConf.load(CONFIG_DIR / "dataset" / f"{dataset}.yaml")
    parent = node.get("defaults", [dataset])[0]
    assert compose_train([f"dataset={dataset}"]).dataset.name == parent


def test_a_bare_kdfair_train_composes_the_demo():
    assert compose_train([]) == compose_train(["+experiment=demo"])
    assert compose_train([]).experiment == "demo"


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e != "demo"])
def test_no_demo_setting_leaks_into_an_experiment(experiment):
    """Every experiment drops the default demo: its config is what its file says, whether or
    not the demo is in the defaults list."""
    chosen = compose_train([f"+experiment={experiment}"])
    assert chosen == compose_train(["~default_experiment", f"+experiment={experiment}"])


def test_groups_chosen_without_the_demo_compose_the_papers_defaults():
    """`~default_experiment dataset=cifar10 ...` is the paper's protocol on that dataset: none
    of the demo's Trifeature sizes, epochs or temperatures."""
    cfg = compose_train(
        [
            "~default_experiment",
            "dataset=cifar10",
            "model@teacher=resnet56",
            "model@student=resnet20",
        ]
    )
    assert cfg.experiment == "custom" and "n_train" not in cfg.dataset
    assert cfg.teacher_optim.epochs == cfg.student_optim.epochs == 100
    assert cfg.student_optim.optimizer.lr == 0.1


@pytest.fixture(scope="module")
def tiny_text_models(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("text-models"))


def _text_overrides(cfg_or_models, tiny) -> list[str]:
    """Point the hub-named text models at the tiny fixture models (nothing is downloaded)."""
    sources = {"bert_base": tiny["bert"], "distilbert": tiny["distilbert"]}
    return [f"{slot}.source={sources[name]}" for slot, name in cfg_or_models if name in sources]


@pytest.mark.parametrize("model", TEXT_MODELS)
@pytest.mark.parametrize("slot", ["teacher", "student"])
def test_every_text_model_builds_and_trains_in_either_slot(model, slot, tiny_text_models):
    overrides = [f"model@{slot}={model}", *_text_overrides([(slot, model)], tiny_text_models)]
    net = build_model(compose_train(overrides)[slot])
    tokens = torch.stack([torch.randint(5, 20, (2, 12)), torch.ones(2, 12, dtype=torch.long)], 1)
    out = net(tokens)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("model", IMAGE_MODELS)
@pytest.mark.parametrize("slot", ["teacher", "student"])
def test_every_model_builds_and_trains_in_either_slot(model, slot):
    cfg = compose_train([f"model@{slot}={model}", "dataset.image_size=32"])  # not the demo's 24 px
    net = build_model(cfg[slot])
    out = net(torch.randn(2, 3, cfg.dataset.image_size, cfg.dataset.image_size))
    assert out.shape == (2, cfg.dataset.num_classes)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_builds_teacher_and_student_for_its_dataset(experiment, tiny_text_models):
    cfg = compose_train([f"+experiment={experiment}"])
    if "tokenizer" in cfg.dataset:
        slots = [(slot, cfg[slot].name) for slot in ("teacher", "student")]
        cfg = compose_train(
            [f"+experiment={experiment}", *_text_overrides(slots, tiny_text_models)]
        )
        x = torch.stack([torch.randint(5, 20, (1, 12)), torch.ones(1, 12, dtype=torch.long)], 1)
    else:
        size = cfg.dataset.get("image_size", 64 if cfg.dataset.name == "tinyimagenet" else 32)
        x = torch.randn(1, 3, size, size)
    for slot in ("teacher", "student"):
        net = build_model(cfg[slot])
        with torch.no_grad():
            assert net.eval()(x).shape == (1, cfg.dataset.num_classes)


def test_the_paper_schedule_is_the_default():
    cfg = compose_train(["~default_experiment"])  # train.yaml alone: the paper
    for slot in ("teacher_optim", "student_optim"):
        optim = cfg[slot]
        assert optim.optimizer.lr == 0.1 and optim.optimizer.weight_decay == 0.001
        assert optim.epochs == 100 and list(optim.milestones) == [30, 60, 90]
    assert cfg.distill.alpha == 0.8 and cfg.distill.t_squared is False


DATASETS = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))


def _changed(value):
    """Another value of the same kind, for any dataset setting."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "_other"
    if isinstance(value, list):
        return [*value, value[0] if value else 1]
    if isinstance(value, dict):
        return {**value, "other": 1}
    return 1  # None


@pytest.mark.parametrize("dataset", DATASETS)
def test_model_keys_ignore_where_data_and_outputs_live_and_nothing_else(dataset, monkeypatch):
    """Moving the data (dataset.io.root, KDFAIR_DATA), the outputs (paths.outputs, which text
    caches follow) or any other `dataset.io` setting leaves the key; any other dataset setting
    changes it (val_seed only with a hold-out)."""
    composed = compose_train([f"dataset={dataset}"]).dataset
    base = dataset_spec(composed)
    io = OmegaConf.to_container(composed.io, resolve=True)
    assert io.get("root"), "every dataset says where its data is in dataset.io.root"
    moved = [
        "paths.outputs=/somewhere/else",
        *[f"dataset.io.{k}={_changed(v)}" for k, v in io.items()],
    ]
    for override in moved:
        cfg = compose_train([f"dataset={dataset}", override])
        assert dataset_spec(cfg.dataset) == base, override
    monkeypatch.setenv("KDFAIR_DATA", "/data/from/env")
    monkeypatch.setenv("KDFAIR_OUTPUTS", "/outputs/from/env")
    assert dataset_spec(compose_train([f"dataset={dataset}"]).dataset) == base
    monkeypatch.undo()
    for key, value in OmegaConf.to_container(composed).items():
        if key in ("io", "_target_") or (key == "val_seed" and not composed.val_fraction):
            continue  # val_seed draws the hold-out: without one it changes nothing
        changed = composed.copy()
        with open_dict(changed):
            changed[key] = _changed(value)
        assert dataset_spec(changed) != base, key
    if "val_seed" in composed:
        held = composed.copy()
        held.val_fraction = 0.1
        reseeded = held.copy()
        reseeded.val_seed = 1
        assert dataset_spec(held) != dataset_spec(reseeded)


def test_every_io_setting_is_one_every_factory_understands():
    """dataset.io holds only DataIO's fields, so moving a setting into it cannot go unnoticed."""
    fields = {f.name for f in dataclasses.fields(DataIO)}
    for dataset in DATASETS:
        io = compose_train([f"dataset={dataset}"]).dataset.io
        assert set(io) <= fields, dataset


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
