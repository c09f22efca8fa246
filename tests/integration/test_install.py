"""kdfair as a library: a built wheel, installed into a fresh virtual environment outside the
source tree, runs a job and plans one from any working directory (its configs ship inside it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pandas as pd

from ..conftest import REPO


def _site_packages(env: Path) -> Path:
    (path,) = (env / "lib").glob("python*/site-packages")
    return path


def _copy_of_the_source(to: Path) -> Path:
    """What a source distribution holds: setuptools writes build/ and *.egg-info next to the
    sources it builds, so the wheel is built from a copy and the checkout stays clean."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        to.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, to / name)
    shutil.copytree(
        REPO / "src", to / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    return to


def test_a_wheel_installed_outside_the_source_tree_trains_and_plans(tmp_path):
    source = _copy_of_the_source(tmp_path / "source")
    wheels = tmp_path / "wheels"
    subprocess.run(  # --no-build-isolation: build with this venv's setuptools, offline
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("kdfair-*.whl")
    fresh = tmp_path / "fresh-venv"
    venv.create(fresh, with_pip=True)
    python = fresh / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    # The dependencies (torch & co.) come from the test's own environment, after the fresh
    # site-packages on sys.path, so `import kdfair` finds the wheel's copy, not the checkout.
    ours = sysconfig.get_paths()["purelib"]
    (_site_packages(fresh) / "dependencies.pth").write_text(ours + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KDFAIR_CONFIG_DIR")}
    env.update(KDFAIR_OUTPUTS=str(elsewhere / "outputs"), KDFAIR_DATA=str(elsewhere / "data"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600
        )

    where = run(str(python), "-c", "import kdfair.compose as c; print(c.packaged_config_dir())")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(fresh), where.stdout  # not src/ of the repo

    kdfair = str(fresh / "bin" / "kdfair")
    trained = run(kdfair, "train", "+experiment=demo", "+debug=smoke")
    assert trained.returncode == 0, trained.stderr[-3000:]
    rows = pd.read_csv(elsewhere / "outputs" / "demo" / "results.csv")
    assert sorted(rows["role"]) == ["distilled"] * 3 + ["student", "teacher"]

    planned = run(kdfair, "plan", "+experiment=demo", "+debug=smoke")
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "5 models for 1 job(s): 5 stored, 0 in progress, 0 missing; 0 epochs" in planned.stdout
