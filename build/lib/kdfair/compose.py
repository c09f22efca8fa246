"""Where kdfair's configs live, and composing a train config outside `kdfair train`.

The config tree ships inside the package (`kdfair/configs/`, found with importlib.resources), so
an editable install, `pip install .` and a built wheel all find it from any working directory.
A user adds folders of their own, laid out like the packaged tree (`experiment/<name>.yaml`,
`model/<name>.yaml`, ...), with `$KDFAIR_CONFIG_DIR` (several joined by `:`) or Hydra's
`--config-dir DIR`; their configs sit next to the packaged ones in every config group.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from kdfair.errors import KdfairError

CONFIG_NAME = "train"  # the primary config: configs/train.yaml
ENV_VAR = "KDFAIR_CONFIG_DIR"
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")  # Hydra's own flag for one more config folder


def packaged_config_dir() -> Path:
    """The config tree installed with kdfair."""
    path = Path(str(files("kdfair") / "configs"))
    if not (path / f"{CONFIG_NAME}.yaml").is_file():
        raise KdfairError(
            f"kdfair's packaged configs are missing from {path}: the installation is "
            "incomplete. Reinstall kdfair (pip install --force-reinstall kdfair)."
        )
    return path


def user_config_dirs(argv: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """The user's config folders: `$KDFAIR_CONFIG_DIR`, then `--config-dir` of `argv`."""
    named = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    for i, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        if flag in CONFIG_DIR_FLAGS:
            named.append(value or (argv[i + 1] if i + 1 < len(argv) else ""))
    dirs = []
    for name in named:
        path = Path(name).expanduser().resolve()
        if not path.is_dir():
            raise KdfairError(
                f"the config folder {name!r} ({ENV_VAR} or --config-dir) does not exist. "
                "Point it at a folder laid out like kdfair's configs, e.g. one holding "
                "experiment/<name>.yaml."
            )
        dirs.append(path)
    return dirs


def search_path(dirs: list[Path]) -> list[str]:
    """The override that adds `dirs` to Hydra's config search path (none for no dirs)."""
    if not dirs:
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]"]


def available(group: str, argv: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The names a config group offers: packaged and the user's, sorted."""
    folders = [packaged_config_dir(), *user_config_dirs(argv)]
    return sorted({p.stem for folder in folders for p in (folder / group).glob("*.yaml")})


def find_config(group: str, name: str) -> Path | None:
    """The file of `group/name`, the user's folders first (as Hydra searches them)."""
    for folder in [*user_config_dirs(), packaged_config_dir()]:
        path = folder / group / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def compose_train(overrides: list[str], *, with_hydra: bool = False):
    """train.yaml composed with `overrides`, as `kdfair train` composes one job's config.

    `with_hydra` keeps the `hydra` node (sweeper params, run dirs); interpolations into
    `hydra:runtime` are only available inside a running job, so leave it off otherwise.
    """
    from hydra import compose, initialize_config_dir

    extra = search_path(user_config_dirs())
    with initialize_config_dir(config_dir=str(packaged_config_dir()), version_base="1.3"):
        return compose(CONFIG_NAME, overrides=[*overrides, *extra], return_hydra_config=with_hydra)
