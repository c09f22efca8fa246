"""Optional dependencies, installed by need: `pip install 'kdfair[<extra>]'`.

Every image study needs only the core install. The extras (pyproject.toml) add what a few
studies need: `vit` (timm: ViT-Base, TinyViT), `launchers` (Hydra's joblib and submitit
launchers: hydra/launcher=parallel|slurm|slurm_local), `minilm` (the packaged all-MiniLM-L6-v2
weights of the RedditBias experiment), `mlflow` and `tensorboard` (the trackers of logger=...),
`dev` (the test and lint tools) and `all`. A missing one is named in a one-line error with the
command that installs it.
"""

from __future__ import annotations

import importlib

from kdfair.errors import KdfairError

# The Hydra launcher configs of kdfair and of Hydra's plugins, by the extra that provides them.
LAUNCHERS = {
    "parallel": "hydra_plugins.hydra_joblib_launcher",
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "slurm": "hydra_plugins.hydra_submitit_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher",
    "slurm_local": "hydra_plugins.hydra_submitit_launcher",
}


def missing_extra(extra: str, module: str, needed_for: str) -> KdfairError:
    return KdfairError(
        f"{needed_for} needs the {module.split('.')[-1]} package, which is not installed: "
        f"pip install 'kdfair[{extra}]'"
    )


def require(extra: str, module: str, needed_for: str):
    """Import `module` (from the optional `extra`), or fail naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing_extra(extra, module, needed_for) from None


def require_launcher(overrides: list[str]) -> None:
    """A `hydra/launcher=<name>` whose plugin is not installed: the launchers extra."""
    for override in overrides:
        key, _, name = override.lstrip("+").partition("=")
        module = LAUNCHERS.get(name) if key == "hydra/launcher" else None
        if module:
            require("launchers", module, repr(override))
