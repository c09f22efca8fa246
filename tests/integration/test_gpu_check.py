"""scripts/gpu_check.sh --dry: the first GPU visit's script, every step run on this CPU machine at
tiny sizes (the CUDA tests skip), everything it writes under its folder."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_helpers import kdfair_env

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"
STEPS = ("env", "install", "gpu-tests", "smoke", "probe", "demo", "trifeature")


def _files(root: Path) -> set[str]:
    skip = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".venv", "outputs"}
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        found.update(os.path.join(folder, f) for f in files)
    return found


def _run(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = kdfair_env(out.parent, out.parent / "unused-data")
    env["PYTHON"] = sys.executable  # the machine's Python: this one, with its packages
    return subprocess.run(
        ["bash", str(SCRIPT), *args, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow  # ~100 s: `make test-all` runs it
def test_the_dry_run_exercises_every_step_and_writes_only_under_its_folder(tmp_path):
    out = tmp_path / "check"
    before = _files(REPO)
    result = _run(out, "--dry")
    summary = (out / "summary.txt").read_text()
    assert result.returncode == 0, result.stdout + result.stderr + summary
    for step in STEPS:
        assert f"\n{step}: ok (" in summary, summary
    assert _files(REPO) == before  # nothing written in the checkout
    assert not (tmp_path / "unused-data").exists()

    env = (out / "env.txt").read_text()
    assert "torch " in env and "cuda available False" in env
    assert "torch" in (out / "constraints.txt").read_text()  # the machine's torch, pinned
    assert "kept" in (out / "install.log").read_text()
    assert "skipped" in (out / "gpu-tests.log").read_text()  # no CUDA here: said, not hidden
    smoke = (out / "smoke.log").read_text()
    assert "first run trained 5 models; second run reused 5 and trained 0" in smoke
    assert "numerics" in smoke and "cpu fp32" in smoke  # kdfair plan's column
    with open(out / "bench" / "PROBE_cpu-dry.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["setting"].split(" ")[0] for r in rows] == ["eager", "+", "+", "+", "all"]
    assert "no-op here" in rows[1]["note"]  # amp on a CPU
    assert (out / "outputs" / "demo" / "analysis" / "report.md").is_file()
    assert (out / "trifeature" / "trifeature_resnet20_lenet5" / "results.csv").is_file()
    assert "total " in summary


def test_bad_arguments_get_the_usage_and_exit_2(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage: scripts/gpu_check.sh" in result.stderr
