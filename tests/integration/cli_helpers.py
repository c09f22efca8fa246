"""Run the real `kdfair` console script in a subprocess, in a scratch folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KDFAIR = str(Path(sys.executable).with_name("kdfair"))


def kdfair_env(workdir: Path, data: Path) -> dict:
    env = dict(os.environ)
    env.update(KDFAIR_DATA=str(data), KDFAIR_OUTPUTS=str(workdir / "outputs"), HF_HUB_OFFLINE="1")
    env.pop("PYTHONWARNINGS", None)
    return env


def run_kdfair(
    workdir: Path, data: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KDFAIR, *args],
        cwd=workdir,
        env=kdfair_env(workdir, data),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_kdfair_torchrun(
    workdir: Path, data: Path, nproc: int, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=<nproc> -m kdfair <args>` (gloo on CPU)."""
    env = kdfair_env(workdir, data)
    env["OMP_NUM_THREADS"] = "1"  # torchrun's own default, set here to silence its warning
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "kdfair",
            *args,
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kdfair_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """`kdfair <args>` through kdfair.cli.main in this process (no interpreter start-up): for
    commands that train nothing, such as analyze. Returns what run_kdfair returns."""
    from kdfair.cli import main

    capsys.readouterr()  # drop what came before
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(["kdfair", *args], code, out.out, out.err)
