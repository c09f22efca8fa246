"""Shared fixtures: the real config tree, composed the way `kdfair train` composes it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "src" / "kdfair" / "configs"
# The real RedditBias CSVs, where a machine has them: `make test` sets KDFAIR_REDDITBIAS (to
# ../shared/data/redditbias next to the checkout); tests that read them are skipped without it.
REAL_REDDITBIAS = Path(os.environ.get("KDFAIR_REDDITBIAS", "/nonexistent"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on a model hub


def compose_train(overrides: list[str]) -> DictConfig:
    """configs/train.yaml with `overrides`, as `kdfair train` composes it (minus hydra's node)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


@pytest.fixture
def smoke_cfg(tmp_path):
    """A composed smoke config writing under tmp_path: the demo (what a bare `kdfair train`
    runs), tiny data, one epoch."""

    def make(*overrides: str) -> DictConfig:
        cfg = compose_train(["+debug=smoke", *overrides])
        with open_dict(cfg):
            cfg.paths.outputs = str(tmp_path / "outputs")
            if not any(o.startswith("dataset.io.root=") for o in overrides):
                cfg.dataset.io.root = str(tmp_path / "data")
        return cfg

    return make
