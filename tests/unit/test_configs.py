"""The config tree is the registry: every file composes and builds what it names."""

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from kdfair.factories import DATASET_RUNTIME_KEYS, build_model, dataset_spec
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
    cfg = compose_train([f"model@{slot}={model}"])
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
    cfg = compose_train([])
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
    """Moving the data (dataset.root, KDFAIR_DATA), the outputs (paths.outputs, which text
    caches follow) or how files are read leaves the key; any other dataset setting changes it."""
    base = dataset_spec(compose_train([f"dataset={dataset}"]).dataset)
    moved = [
        "paths.outputs=/somewhere/else",
        "dataset.root=/other/data",
        *[f"dataset.{k}={_changed(v)}" for k, v in _runtime(dataset).items()],
    ]
    for override in moved:
        cfg = compose_train([f"dataset={dataset}", override])
        assert dataset_spec(cfg.dataset) == base, override
    monkeypatch.setenv("KDFAIR_DATA", "/data/from/env")
    monkeypatch.setenv("KDFAIR_OUTPUTS", "/outputs/from/env")
    assert dataset_spec(compose_train([f"dataset={dataset}"]).dataset) == base
    monkeypatch.undo()
    composed = compose_train([f"dataset={dataset}"]).dataset
    for key, value in OmegaConf.to_container(composed).items():
        if key in DATASET_RUNTIME_KEYS or key == "_target_":
            continue
        changed = composed.copy()
        with open_dict(changed):
            changed[key] = _changed(value)
        assert dataset_spec(changed) != base, key


def _runtime(dataset: str) -> dict:
    cfg = OmegaConf.to_container(compose_train([f"dataset={dataset}"]).dataset)
    return {k: v for k, v in cfg.items() if k in DATASET_RUNTIME_KEYS and k != "root"}


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
