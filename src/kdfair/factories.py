"""Configs -> objects: datasets, models and stored models from their config nodes.

The only module that calls hydra's `instantiate` (config files are the registry: a `_target_`
names the factory). A KdfairError the factory raises comes through as itself, and a setting the
factory does not take is explained in plain words, so bad configs end in one clear message.
"""

from __future__ import annotations

import functools
import inspect
import re

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from kdfair import distributed
from kdfair.data import DataBundle
from kdfair.data.layout import DataIO
from kdfair.errors import KdfairError
from kdfair.settings import DATASET_IO_NODE, DATASET_META_KEYS
from kdfair.store import StoredModel, corrupt_entry


def build_dataset(dataset: dict | DictConfig) -> DataBundle:
    """The dataset of a (resolved) dataset config: its factory is called with the `io` node as one
    `DataIO` and every other setting but the meta keys. `val_fraction` > 0 holds out a seeded,
    stratified validation split of the training split (`DataBundle.hold_out`, seed `val_seed`);
    then `max_train`/`max_test`/`max_val` cut it to a fixed random subset (a generated dataset,
    which has `n_train`/`n_test`, is generated that small)."""
    if isinstance(dataset, DictConfig):
        dataset = OmegaConf.to_container(dataset, resolve=True)
    factory_cfg = {
        k: v for k, v in dataset.items() if k not in (*DATASET_META_KEYS, DATASET_IO_NODE)
    }
    limits = {"n_train": dataset.get("max_train"), "n_test": dataset.get("max_test")}
    fraction = dataset.get("val_fraction") or 0
    for key, limit in limits.items():
        if limit is not None and key in factory_cfg:
            factory_cfg[key] = min(factory_cfg[key], limit)
    what = f"dataset {dataset['name']}"
    factory = _instantiate({**factory_cfg, "_partial_": True}, what)
    data = _call_factory(factory, DataIO(**dataset.get(DATASET_IO_NODE, {})), what)
    if fraction:
        if data.val is not None:
            raise KdfairError(
                f"dataset.val_fraction={fraction} but {dataset['name']} has an official "
                "validation partition, which kdfair uses; remove dataset.val_fraction."
            )
        data = data.hold_out(float(fraction), seed=int(dataset.get("val_seed") or 0))
    data = data.subset(limits["n_train"], limits["n_test"], max_val=dataset.get("max_val"))
    if data.num_classes != dataset["num_classes"]:
        raise KdfairError(
            f"dataset.num_classes={dataset['num_classes']} but the {dataset['name']} data has "
            f"{data.num_classes} classes; fix dataset.num_classes."
        )
    return data


def build_model(arch: DictConfig | dict) -> torch.nn.Module:
    """Instantiate a model config (its `name` key is a label, not a factory argument)."""
    arch = OmegaConf.to_container(arch, resolve=True) if isinstance(arch, DictConfig) else arch
    return _instantiate({k: v for k, v in arch.items() if k != "name"}, f"model {arch['name']}")


def _instantiate(node: dict, what: str):
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
        raise _no_such_setting(what, match.group(1), None) from e


def _call_factory(factory: functools.partial, io: DataIO, what: str):
    """`factory(io)`, after checking it takes every configured setting (so a stray key is named,
    not a TypeError from wherever it surfaces)."""
    try:
        inspect.signature(factory.func).bind(io, **factory.keywords)
    except TypeError as e:
        accepted = [n for n in inspect.signature(factory.func).parameters if n != "io"]
        unknown = sorted(set(factory.keywords) - set(accepted)) or ["?"]
        raise _no_such_setting(what, unknown[0], accepted) from e
    return factory(io)


def _no_such_setting(what: str, key: str, accepted: list[str] | None) -> KdfairError:
    takes = f"; it takes {', '.join(accepted)}" if accepted else ""
    return KdfairError(
        f"{what} has no setting {key!r} (set in its config, an experiment or an override)"
        f"{takes}. Remove it, or choose a config that has it."
    )


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
    return _instantiate(node, f"optimizer {node.get('_target_', '?')}")
