"""What a run keeps is portable and complete: model.pt and train.ckpt load with a plain
`torch.load(weights_only=True)` on the CPU, in the standard layout, and a resumed run with dropout
ends with bitwise the weights of an uninterrupted one (the random streams are in the checkpoint)."""

from __future__ import annotations

import os
import random
from functools import partial

import numpy as np
import pytest
import torch

from kdfair.atomic import torch_save
from kdfair.checkpoints import rng_state, set_rng_state
from kdfair.data import DataBundle, Split, TokenInputs
from kdfair.data.trifeature import load_trifeature
from kdfair.models.lenet import lenet5
from kdfair.predict import predict
from kdfair.schedule import Schedule
from kdfair.speed import Speed, use_deterministic
from kdfair.store import Entry, ModelStore
from kdfair.training import fit

CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    ],
)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_saved_models_and_checkpoints_load_on_the_cpu_contiguous(tmp_path, device):
    data = load_trifeature(str(tmp_path / "data"), image_size=16, n_train=64, n_test=32)
    device = torch.device(device)
    torch.manual_seed(0)
    model = lenet5(10, image_size=16)
    speed = Speed(amp=device.type == "cuda", channels_last=True)  # NHWC weights on any device
    folder = tmp_path / "models" / "abc"
    folder.mkdir(parents=True)
    optimizer = partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    fit(model, data, optimizer, Schedule(1, 32, ()), seed=0, device=device, speed=speed,
        checkpoint=folder / "train.ckpt")  # fmt: skip
    assert any(not p.is_contiguous() for p in model.state_dict().values())  # channels_last
    checkpoint = torch.load(folder / "train.ckpt", weights_only=True)
    predictions = predict(model, data, device=device)
    entry = Entry({"seed": 0}, "teacher", model.state_dict(), predictions, {"accuracy": 0.5}, [])
    ModelStore(tmp_path / "models").write(folder, entry)
    stored = torch.load(folder / "model.pt", weights_only=True)  # the README's plain load
    for saved in (checkpoint, stored):
        tensors = list(_tensors(saved))
        assert len(tensors) >= len(model.state_dict())
        assert all(t.device.type == "cpu" and t.is_contiguous() for t in tensors)
    for key, value in model.state_dict().items():
        assert torch.equal(stored["state_dict"][key], value.cpu()), key


def test_the_random_streams_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # a cached Gaussian in NumPy's state
    torch_save({"rng": rng_state(torch.device("cpu"))}, tmp_path / "rng.pt")
    draws = random.random(), np.random.normal(), np.random.rand(), torch.rand(3)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = random.random(), np.random.normal(), np.random.rand(), torch.rand(3)
    assert draws[:3] == again[:3] and torch.equal(draws[3], again[3])


def _text_data() -> DataBundle:
    from tests.fixtures.text import WORDS

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, len(WORDS) + 5, (40, 1, 12), generator=generator)  # the tiny vocab
    tokens = torch.cat([ids, torch.ones_like(ids)], dim=1)  # token ids, attention mask
    split = Split(tokens, torch.arange(40) % 2)
    return DataBundle("toy-text", split, split, 2, ["a", "b"], {}, TokenInputs())


def _train_text(source, data, epochs, device, checkpoint=None):
    from kdfair.models.text import text_model

    torch.manual_seed(0)
    model = text_model(2, str(source), dropout=0.3)
    optimizer = partial(torch.optim.AdamW, lr=1e-3)
    speed = Speed(deterministic=device.type == "cuda")
    fit(model, data, optimizer, Schedule(epochs, 8, ()), seed=2, device=device, speed=speed,
        checkpoint=checkpoint, eval_every_epoch=False)  # fmt: skip
    return {k: v.cpu() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_a_text_model_with_dropout_resumes_bitwise(tmp_path, device, monkeypatch):
    from tests.fixtures.text import write_tiny_models

    device = torch.device(device)
    if device.type == "cuda":
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        use_deterministic(True)
    try:
        source = write_tiny_models(tmp_path)["bert"]
        data = _text_data().train_on(device)
        straight = _train_text(source, data, 3, device)
        ckpt = tmp_path / "train.ckpt"
        _train_text(source, data, 1, device, ckpt)  # "killed" after epoch 1
        resumed = _train_text(source, data, 3, device, ckpt)
    finally:
        use_deterministic(False)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 3
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key


def test_deterministic_mode_switches_torch_and_cudnn_on_and_back_off(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        use_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        use_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_deterministic_cuda_training_repeats_bitwise(tmp_path, monkeypatch):
    data = load_trifeature(str(tmp_path / "data"), image_size=16, n_train=96, n_test=32)
    device = torch.device("cuda")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    runs = []
    use_deterministic(True)
    try:
        for _ in range(2):
            torch.manual_seed(0)
            model = lenet5(10, image_size=16)
            fit(model, data.train_on(device), partial(torch.optim.SGD, lr=0.05, momentum=0.9),
                Schedule(2, 32, ()), seed=0, device=device,
                speed=Speed(amp=True, channels_last=True, deterministic=True))  # fmt: skip
            runs.append({k: v.cpu() for k, v in model.state_dict().items()})
    finally:
        use_deterministic(False)
    for key, value in runs[0].items():
        assert torch.equal(runs[1][key], value), key
