"""Configs -> objects: datasets, models and stored models from their config nodes.

The only module that calls hydra's `instantiate` (config files are the registry: a `_target_`
names the factory). A KdfairError the factory raises comes through as itself, and a setting the
factory does not take is explained in plain words, so bad configs end in one clear message.
"""

from __future__ import annotations

import re

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from kdfair import distributed
from kdfair.data import DataBundle
from kdfair.errors import KdfairError
from kdfair.store import StoredModel, corrupt_entry

# Dataset keys that say where or how data is read or cached, not what it is: kept out of model
# keys (tests/unit/test_configs.py checks every dataset config against this list).
DATASET_RUNTIME_KEYS = ("root", "cache_dir", "download", "verify_checksums", "num_workers")
# Dataset keys that describe the dataset to kdfair rather than configure its factory.
DATASET_META_KEYS = ("name", "num_classes", "batch_size", "max_train", "max_test")


def build_dataset(dataset_cfg: DictConfig) -> DataBundle:
    """Instantiate the dataset config; `max_train`/`max_test` cut it to a fixed random subset
    (a generated dataset, which has `n_train`/`n_test`, is generated that small instead)."""
    factory_cfg = {k: v for k, v in dataset_cfg.items() if k not in DATASET_META_KEYS}
    limits = {"n_train": dataset_cfg.get("max_train"), "n_test": dataset_cfg.get("max_test")}
    for key, limit in limits.items():
        if limit is not None and key in factory_cfg:
            factory_cfg[key] = min(factory_cfg[key], limit)
    data = _instantiate(factory_cfg, f"dataset {dataset_cfg.name}", "dataset")
    data = data.subset(limits["n_train"], limits["n_test"])
    if data.num_classes != dataset_cfg.num_classes:
        raise KdfairError(
            f"dataset.num_classes={dataset_cfg.num_classes} but the {dataset_cfg.name} data has "
            f"{data.num_classes} classes; fix dataset.num_classes."
        )
    return data


def dataset_spec(dataset_cfg: DictConfig) -> dict:
    resolved = OmegaConf.to_container(dataset_cfg, resolve=True)
    return {k: v for k, v in resolved.items() if k not in DATASET_RUNTIME_KEYS}


def build_model(arch: DictConfig | dict) -> torch.nn.Module:
    """Instantiate a model config (its `name` key is a label, not a factory argument)."""
    arch = OmegaConf.to_container(arch, resolve=True) if isinstance(arch, DictConfig) else arch
    return _instantiate(
        {k: v for k, v in arch.items() if k != "name"}, f"model {arch['name']}", "model"
    )


def _instantiate(node: dict, what: str, group: str):
    """hydra's instantiate; a KdfairError the factory raised comes through as itself (not
    wrapped in Hydra's exception), a key the factory does not take is explained in plain words."""
    try:
        return instantiate(node)
    except InstantiationException as e:
        if isinstance(e.__cause__, KdfairError):
            raise e.__cause__ from None
        match = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if match is None:
            raise
        raise KdfairError(
            f"{what} has no setting {match.group(1)!r} (set in its config, an experiment or an "
            "override). "
            f"Remove it; a bare `kdfair train` adds the demo experiment's Trifeature settings, so "
            f"select an experiment (+experiment=<name>) when changing {group}."
        ) from e


def load_model(entry: StoredModel, arch: dict) -> torch.nn.Module:
    """A stored model, rebuilt from its architecture and weights. Under DDP rank 0 reads the file
    and sends the weights (a file just written may not yet be visible on other nodes)."""

    def read() -> dict:
        try:
            return entry.load_checkpoint()["state_dict"]
        except Exception as e:
            raise corrupt_entry(entry.folder, f"model.pt: {e}") from e

    state = distributed.from_main(read)
    model = build_model(arch)
    try:
        model.load_state_dict(state)
    except Exception as e:
        raise corrupt_entry(entry.folder, f"model.pt: {e}") from e
    return model


def build_optimizer(optimizer: DictConfig | dict):
    """The optimiser factory of an optim config (`_partial_: true`: called with the parameters)."""
    node = (
        OmegaConf.to_container(optimizer, resolve=True)
        if isinstance(optimizer, DictConfig)
        else optimizer
    )
    return _instantiate(node, f"optimizer {node.get('_target_', '?')}", "optim")
