"""What a command-line tool is expected to do: --version, a --help that names the tool and its
experiments, shell completion that completes, one-line errors for a missing optional extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kdfair
from kdfair.compose import available, compose_train
from kdfair.errors import KdfairError

from .cli_helpers import KDFAIR, run_kdfair


def test_version_is_the_packages():
    result = subprocess.run([KDFAIR, "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"kdfair {kdfair.__version__}"


def test_the_version_is_pyprojects():
    """kdfair.version is the one place the package reads its version; the packaging metadata
    (pyproject.toml) must say the same."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == kdfair.__version__


def test_train_help_names_kdfair_and_lists_the_experiments(tmp_path):
    result = run_kdfair(tmp_path, tmp_path / "data", "train", "--help")
    assert result.returncode == 0, result.stderr
    assert "kdfair train" in result.stdout and "powered by Hydra" not in result.stdout
    experiments = next(
        line for line in result.stdout.splitlines() if line.startswith("experiment:")
    )
    for name in available("experiment"):
        assert name in experiments


def _complete(script: Path, line: str) -> list[str]:
    """Call the installed completion function exactly as bash does on <TAB> at the line's end."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    probe = (
        f"source {script}\n"
        f"COMP_LINE={line!r}; COMP_POINT={len(line)}; COMP_WORDS=({' '.join(map(repr, words))})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "hydra_bash_completion\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{Path(KDFAIR).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture(scope="module")
def completion_script(tmp_path_factory) -> Path:
    result = subprocess.run(
        [KDFAIR, "train", "-sc", "install=bash"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "complete -o nospace -o default -F hydra_bash_completion kdfair" in result.stdout
    path = tmp_path_factory.mktemp("completion") / "kdfair.bash"
    path.write_text(result.stdout)
    return path


def test_bash_completion_completes_commands_and_overrides(completion_script):
    assert _complete(completion_script, "kdfair ") == [
        "train",
        "plan",
        "tune",
        "analyze",
        "compare",
    ]
    assert _complete(completion_script, "kdfair pl") == ["plan"]
    assert _complete(completion_script, "kdfair train +experiment=cifar10") == [
        "+experiment=cifar100_densenet169_densenet121",
        "+experiment=cifar100_resnet56_resnet20",
        "+experiment=cifar10_resnet56_resnet20",
    ]
    assert _complete(completion_script, "kdfair plan seed=0 dataset.n_tr") == ["dataset.n_train="]


def test_zsh_completion_loads_bash_completion_first():
    result = subprocess.run([KDFAIR, "train", "-sc", "install=zsh"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first == "autoload -U +X bashcompinit && bashcompinit"
    assert any("hydra_bash_completion kdfair" in line for line in rest)


def test_a_users_config_folder_adds_experiments_next_to_the_packaged_ones(tmp_path, monkeypatch):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /default_experiment: null\n"
        "experiment: mine\nseed: 7\n"
    )
    monkeypatch.setenv("KDFAIR_CONFIG_DIR", str(tmp_path))
    assert {"mine", "demo", "cifar10_resnet56_resnet20"} <= set(available("experiment"))
    cfg = compose_train(["+experiment=mine"])
    assert (cfg.experiment, cfg.seed, cfg.dataset.name) == ("mine", 7, "trifeature")


def test_a_config_folder_that_does_not_exist_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("KDFAIR_CONFIG_DIR", str(tmp_path / "nope"))
    with pytest.raises(KdfairError, match="does not exist"):
        available("experiment")


def test_a_missing_extra_names_the_install_command(monkeypatch):
    from kdfair.extras import require_launcher
    from kdfair.models.vision import tiny_vit

    monkeypatch.setitem(sys.modules, "timm", None)  # as if kdfair[vit] were not installed
    with pytest.raises(KdfairError, match=r"pip install 'kdfair\[vit\]'"):
        tiny_vit(num_classes=10)
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_joblib_launcher", None)
    with pytest.raises(KdfairError, match=r"pip install 'kdfair\[launchers\]'"):
        require_launcher(["seed=0,1", "hydra/launcher=parallel"])
    require_launcher(["hydra/launcher=basic"])  # Hydra's own: nothing to install


def test_a_missing_launcher_extra_is_one_line_on_the_command_line(tmp_path, monkeypatch):
    """The console script itself, with the joblib plugin hidden from the interpreter."""
    block = tmp_path / "block"
    (block / "hydra_plugins" / "hydra_joblib_launcher").mkdir(parents=True)
    # A regular package shadowing the namespace package of the plugin, failing on import.
    (block / "hydra_plugins" / "__init__.py").write_text("")
    (block / "hydra_plugins" / "hydra_joblib_launcher" / "__init__.py").write_text(
        "raise ImportError('hidden by the test')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(block))
    result = run_kdfair(tmp_path, tmp_path / "data", "train", "-m", "hydra/launcher=parallel")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kdfair: error: 'hydra/launcher=parallel' needs the hydra_joblib_launcher package, "
        "which is not installed: pip install 'kdfair[launchers]'"
    ]
