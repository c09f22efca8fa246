from functools import partial

import pytest
import torch

from kdfair.data.trifeature import load_trifeature
from kdfair.errors import KdfairError
from kdfair.models.lenet import lenet5
from kdfair.schedule import Schedule, lr_factor, scaled_milestones
from kdfair.settings import resolve_device
from kdfair.speed import Speed
from kdfair.training import fit


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [(100, (30, 60, 90)), (10, (3, 6, 9)), (20, (6, 12, 18)), (3, (1, 2)), (1, ())],
)
def test_milestones_scale_with_the_epoch_count(epochs, expected):
    assert scaled_milestones([30, 60, 90], epochs, 100) == expected


def test_resolve_device_on_a_cpu_machine():
    if torch.cuda.is_available():
        pytest.skip("CPU-only expectation")
    assert resolve_device("auto", "auto") == (torch.device("cpu"), False)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return load_trifeature(
        str(tmp_path_factory.mktemp("data")), image_size=16, n_train=96, n_test=32
    )


def _train(data, epochs, checkpoint=None, speed: Speed | None = None, lr=0.05):
    torch.manual_seed(0)
    model = lenet5(10, image_size=16)
    optimizer = partial(torch.optim.SGD, lr=lr, momentum=0.9)
    history = fit(
        model,
        data,
        optimizer,
        Schedule(epochs, 32, (2,)),
        seed=1,
        device=torch.device("cpu"),
        checkpoint=checkpoint,
        speed=speed or Speed(),
    )
    return model, history


def test_channels_last_trains_the_same_model(tiny_data):
    plain, _ = _train(tiny_data, 2)
    nhwc, _ = _train(tiny_data, 2, speed=Speed(channels_last=True))
    kernels = [p for p in nhwc.parameters() if p.dim() == 4]
    assert kernels and all(
        k.is_contiguous(memory_format=torch.channels_last) and not k.is_contiguous()
        for k in kernels
    )  # the setting took effect
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(nhwc.state_dict()[key], value, rtol=1e-4, atol=1e-5)


def test_a_compiled_model_trains_alike_and_checkpoints_plain_weights(tiny_data, tmp_path):
    from kdfair.training import Run, fit_many

    plain, _ = _train(tiny_data, 2)
    torch.manual_seed(0)
    run = Run(lenet5(10, image_size=16), checkpoint=tmp_path / "train.ckpt")
    fit_many(
        [run],
        tiny_data,
        partial(torch.optim.SGD, lr=0.05, momentum=0.9),
        Schedule(2, 32, (2,)),
        seed=1,
        device=torch.device("cpu"),
        speed=Speed(compile=True),
    )
    assert run.forward._orig_mod is run.model  # batches ran through the compiled module
    saved = torch.load(tmp_path / "train.ckpt", weights_only=True)["model"]
    assert saved.keys() == plain.state_dict().keys()  # no "_orig_mod." prefixes
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(run.model.state_dict()[key], value, rtol=1e-3, atol=1e-4)


def test_a_diverging_run_stops_with_advice_instead_of_saving_nan_weights(tiny_data, tmp_path):
    ckpt = tmp_path / "train.ckpt"
    with pytest.raises(KdfairError, match="Training diverged; lower the learning rate"):
        _train(tiny_data, 2, checkpoint=ckpt, lr=1e12)
    assert not ckpt.exists()  # no checkpoint of the diverged epoch


def test_resuming_from_a_checkpoint_equals_an_uninterrupted_run(tiny_data, tmp_path):
    straight, straight_history = _train(tiny_data, 3)
    ckpt = tmp_path / "train.ckpt"
    _train(tiny_data, 1, checkpoint=ckpt)  # "killed" after epoch 1: its checkpoint remains
    resumed, resumed_history = _train(tiny_data, 3, checkpoint=ckpt)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert [h["train_loss"] for h in resumed_history] == [h["train_loss"] for h in straight_history]


def test_history_has_one_row_per_epoch_with_the_lr_schedule(tiny_data):
    _, history = _train(tiny_data, 3)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["lr"] for h in history] == pytest.approx([0.05, 0.05, 0.005])
    assert all(0.0 <= h["test_accuracy"] <= 1.0 for h in history)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fast_path_trains_with_data_on_the_gpu_bf16_and_channels_last(tiny_data):
    device, amp = resolve_device("auto", "auto")
    assert device.type == "cuda" and amp
    torch.manual_seed(0)
    model = lenet5(10, image_size=16)
    optimizer = partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    on_gpu = tiny_data.train_on(device)
    assert on_gpu.train.inputs.device.type == "cuda"
    history = fit(
        model,
        on_gpu,
        optimizer,
        Schedule(2, 32, ()),
        seed=0,
        device=device,
        speed=Speed(amp=amp, channels_last=True),
    )
    assert next(model.parameters()).device.type == "cuda"
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)


def test_lr_factors_of_the_step_cosine_and_warmup_schedules():
    step = Schedule(100, 128, (30, 60, 90))
    assert [lr_factor(step, e) for e in (0, 29, 30, 60, 99)] == pytest.approx(
        [1, 1, 0.1, 0.01, 0.001]
    )
    cosine = Schedule(10, 128, (), kind="cosine", warmup_epochs=2)
    factors = [lr_factor(cosine, e) for e in range(10)]
    assert factors[0] == pytest.approx(0.01) and factors[1] == pytest.approx(0.505)
    assert factors[2] == pytest.approx(1.0) and factors[-1] < 0.05
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))


@pytest.mark.parametrize("augment", [True, False])
def test_fused_students_end_exactly_as_if_trained_alone(tiny_data, augment):
    from dataclasses import replace

    from kdfair.data.transforms import Augmentation
    from kdfair.models.resnet_cifar import resnet20
    from kdfair.training import Distillation, Run, fit_many

    augmentation = Augmentation(4 if augment else 0, augment)
    data = replace(tiny_data, input_kind=replace(tiny_data.input_kind, augmentation=augmentation))
    torch.manual_seed(5)
    teacher = resnet20(10)
    optimizer = partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    schedule = Schedule(2, 32, (1,))

    def students():
        runs = []
        for temperature in (1.0, 4.0, 10.0):
            torch.manual_seed(0)
            runs.append(Run(lenet5(10, image_size=16), Distillation(teacher, temperature, 0.8)))
        return runs

    fused = students()
    fit_many(fused, data, optimizer, schedule, seed=3, device=torch.device("cpu"))
    for run in students():
        fit_many([run], data, optimizer, schedule, seed=3, device=torch.device("cpu"))
        twin = fused[[1.0, 4.0, 10.0].index(run.distillation.temperature)]
        for key, value in run.model.state_dict().items():
            assert torch.equal(value, twin.model.state_dict()[key]), key
        assert [h["train_loss"] for h in run.history] == [h["train_loss"] for h in twin.history]


@pytest.fixture(scope="module")
def data_with_val(tiny_data):
    return tiny_data.hold_out(0.25, seed=0)


def test_with_a_validation_split_per_epoch_accuracy_is_validation_accuracy(data_with_val):
    _, history = _train(data_with_val, 2)
    assert all("test_accuracy" not in h for h in history)  # test is predicted after training
    assert all(0.0 <= h["val_accuracy"] <= 1.0 for h in history)


def _jumpy_run(data, keep, epochs=6, checkpoint=None):
    """Epochs at a constant lr 0.3, where validation accuracy jumps around (seeded)."""
    from kdfair.training import Run, fit_many

    torch.manual_seed(0)
    run = Run(lenet5(10, image_size=16), checkpoint=checkpoint)
    fit_many(
        [run],
        data,
        partial(torch.optim.SGD, lr=0.3, momentum=0.9),
        Schedule(epochs, 32, ()),
        seed=1,
        device=torch.device("cpu"),
        keep=keep,
    )
    return run


def test_checkpoint_best_keeps_the_epoch_with_the_best_validation_accuracy(data_with_val):
    from kdfair.predict import evaluate_accuracy

    run = _jumpy_run(data_with_val, "best")
    scores = [h["val_accuracy"] for h in run.history]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))  # ties: the earlier epoch
    assert best + 1 < len(scores), scores  # this run peaks before its end
    assert run.best.epoch == best + 1
    kept = evaluate_accuracy(
        run.model, data_with_val, device=torch.device("cpu"), amp=False, split="val"
    )
    assert kept == pytest.approx(scores[best])
    last = _jumpy_run(data_with_val, "last").model.state_dict()  # the same run, kept at its end
    assert any(not torch.equal(v, last[k]) for k, v in run.model.state_dict().items())


def test_a_resumed_checkpoint_best_run_remembers_its_best_epoch(data_with_val, tmp_path):
    straight = _jumpy_run(data_with_val, "best")
    ckpt = tmp_path / "train.ckpt"
    _jumpy_run(data_with_val, "best", epochs=3, checkpoint=ckpt)  # "killed" after epoch 3
    resumed = _jumpy_run(data_with_val, "best", checkpoint=ckpt)
    assert straight.best.epoch <= 3  # the best weights come from before the "kill"
    assert resumed.best.epoch == straight.best.epoch
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_checkpoint_best_without_a_validation_split_says_how_to_get_one(tiny_data):
    with pytest.raises(KdfairError, match="dataset.val_fraction"):
        fit(
            lenet5(10, image_size=16),
            tiny_data,
            partial(torch.optim.SGD, lr=0.05),
            Schedule(1, 32, ()),
            seed=0,
            device=torch.device("cpu"),
            keep="best",
        )
