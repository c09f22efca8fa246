"""The GPU a command asks for is checked before anything is built (on a CPU machine, with torch's
view of the GPUs patched): cuda:N beyond the visible GPUs, and a torchrun LOCAL_RANK without a
GPU of its own, are one clear error; host memory is pinned only for batches bound for a GPU."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
import torch

from kdfair.data import FolderSplit
from kdfair.errors import KdfairError
from kdfair.validate import validate

from ..integration.cli_helpers import KDFAIR, kdfair_env


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for name in ("WORLD_SIZE", "LOCAL_RANK", "RANK"):
        monkeypatch.delenv(name, raising=False)


def test_a_gpu_beyond_the_visible_ones_is_refused_with_the_choices(smoke_cfg, two_gpus):
    validate(smoke_cfg("device=cuda:1"))  # exists
    validate(smoke_cfg("device=cuda"))
    with pytest.raises(KdfairError, match=r"device='cuda:2'.*2 GPU\(s\) \(cuda:0..cuda:1"):
        validate(smoke_cfg("device=cuda:2"))


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_a_torchrun_local_rank_without_its_gpu_is_refused(smoke_cfg, two_gpus, monkeypatch, device):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    validate(smoke_cfg(f"device={device}"))
    monkeypatch.setenv("LOCAL_RANK", "3")
    with pytest.raises(KdfairError, match=r"LOCAL_RANK=3.*--nproc_per_node=2"):
        validate(smoke_cfg(f"device={device}"))
    validate(smoke_cfg("device=cpu"))  # gloo ranks on the CPU need no GPU


def test_the_cli_says_so_in_one_line_before_building_anything(tmp_path):
    patch = tmp_path / "patch"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import torch
            torch.cuda.is_available = lambda: True
            torch.cuda.device_count = lambda: 1
            """
        )
    )
    env = kdfair_env(tmp_path, tmp_path / "data")
    env["PYTHONPATH"] = f"{patch}:{env.get('PYTHONPATH', '')}"
    result = subprocess.run(
        [KDFAIR, "train", "+debug=smoke", "device=cuda:1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "kdfair: error:" in x]
    assert "device='cuda:1': this machine shows 1 GPU(s)" in line
    assert not (tmp_path / "data").exists() and not (tmp_path / "outputs" / "models").exists()


@pytest.mark.parametrize(("device", "pinned"), [("cpu", False), ("cuda", True)])
def test_memory_is_pinned_only_for_batches_bound_for_a_gpu(monkeypatch, device, pinned):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU exists either way
    split = FolderSplit(["a.png", "b.png"], torch.tensor([0, 1]), transform=None, num_workers=0)
    loader = split.loader(torch.arange(2), 2, seed=0, device=torch.device(device))
    assert loader.pin_memory is pinned
