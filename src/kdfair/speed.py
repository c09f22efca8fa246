"""How models run, not what they learn: the CUDA fast path's switches (docs/design.md section 6).

`Speed` (amp, channels_last, compile, deterministic; kept out of model keys), the bf16 `autocast`
that training and prediction share, image batches in the models' memory format, the global
switches of `speed.deterministic`, and `numerics`: the settings that change a model's numbers
(device kind, autocast dtype, deterministic algorithms), recorded in every store entry's
metrics.json and shown by `kdfair plan` (docs/design.md section 4 says why they are not in the
key).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch

# cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2); set before its first use.
CUBLAS_DETERMINISTIC = ":4096:8"


@dataclass(frozen=True)
class Speed:
    """How the models run, not what they learn (kept out of model keys).

    amp: bf16 autocast (CUDA only); channels_last: NHWC memory format for image models and their
    batches (faster convolutions: tensor cores on CUDA, oneDNN on CPU, where ResNet-20 trains
    about 25% faster); compile: torch.compile each trained model; deterministic: deterministic
    algorithms (`use_deterministic`; CPU training is bitwise reproducible without it).
    """

    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp`; a no-op elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def formatted(x: torch.Tensor, speed: Speed) -> torch.Tensor:
    """An image batch in the models' memory format (NHWC under channels_last)."""
    if speed.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def use_deterministic(on: bool) -> None:
    """`speed.deterministic`: torch's deterministic algorithms (warn_only: an op without a
    deterministic CUDA kernel, such as adaptive_avg_pool2d's backward in the ResNets, warns once
    with its name instead of stopping the run), cuDNN's deterministic convolutions without
    benchmarking, and the cuBLAS workspace that deterministic matrix products need. Off: torch's
    defaults (cuDNN may pick nondeterministic kernels, so CUDA runs differ in the last bits)."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on


def numerics(device: torch.device, speed: Speed) -> dict:
    """The settings that change a model's numbers beyond its key: device kind, the autocast
    dtype (None: float32) and deterministic algorithms; on CUDA also whether cuDNN may use TF32
    (torch's default: yes) and the GPU's name."""
    on_cuda = device.type == "cuda"
    out = {
        "device": device.type,
        "amp": "bfloat16" if speed.amp and on_cuda else None,
        "deterministic": bool(speed.deterministic),
    }
    if on_cuda:
        out["cudnn_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        out["matmul_precision"] = torch.get_float32_matmul_precision()
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def describe_numerics(recorded: dict | None) -> str:
    """One short phrase for a `numerics` record: "cpu fp32", "cuda bf16 deterministic";
    "unrecorded" for entries stored before it was recorded."""
    if not recorded:
        return "unrecorded"
    precision = "bf16" if recorded.get("amp") == "bfloat16" else "fp32"
    words = [recorded.get("device", "?"), precision]
    if recorded.get("deterministic"):
        words.append("deterministic")
    return " ".join(words)
