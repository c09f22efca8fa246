"""torchvision/timm models: sizes, stems, and pretrained weights from local checkpoints."""

from __future__ import annotations

import pytest
import torch
import torchvision

from kdfair.errors import KdfairError
from kdfair.models.vision import densenet121, densenet169, resnet18, resnet50, tiny_vit, vit_base


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("factory", "millions"),
    [
        (resnet18, 11.69),
        (resnet50, 25.56),
        (densenet121, 7.98),
        (densenet169, 14.15),
        (vit_base, 86.57),
        (tiny_vit, 5.39),
    ],
)
def test_parameter_counts_at_1000_classes(factory, millions):
    assert n_params(factory(1000)) / 1e6 == pytest.approx(millions, abs=0.01)


@pytest.mark.parametrize("factory", [resnet18, densenet121])
def test_the_small_input_stem_keeps_resolution_for_32_px_images(factory):
    standard, small = factory(10), factory(10, small_input=True)
    x = torch.randn(2, 3, 32, 32)
    assert standard(x).shape == small(x).shape == (2, 10)
    # The small stem has a 3x3 first convolution and no max-pool.
    first = next(m for m in small.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    assert n_params(small) < n_params(standard)


def test_a_kdfair_checkpoint_loads_back_as_pretrained(tmp_path):
    torch.manual_seed(0)
    trained = resnet18(10, small_input=True)
    torch.save({"state_dict": trained.state_dict(), "role": "teacher"}, tmp_path / "model.pt")
    loaded = resnet18(10, small_input=True, pretrained=str(tmp_path / "model.pt"))
    for key, value in trained.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_a_torchvision_state_dict_loads_with_a_new_head(tmp_path):
    torch.manual_seed(0)
    library = torchvision.models.resnet18(weights=None)  # 1000-class ImageNet layout
    torch.save(library.state_dict(), tmp_path / "resnet18.pth")
    model = resnet18(7, pretrained=str(tmp_path / "resnet18.pth"))
    assert torch.equal(model.net.conv1.weight, library.conv1.weight)
    assert model.classifier.out_features == 7
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def test_a_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pth")
    with pytest.raises(KdfairError, match="do not fit resnet18: shape mismatch"):
        resnet18(10, pretrained=str(tmp_path / "r50.pth"))
    torch.save(
        {"conv1.weight": torch.zeros(64, 3, 7, 7), "extra.weight": torch.zeros(1)},
        tmp_path / "partial.pth",
    )
    with pytest.raises(KdfairError, match=r"missing keys .*unexpected keys \['net.extra.weight'\]"):
        resnet18(10, pretrained=str(tmp_path / "partial.pth"))


def test_missing_or_uncached_weights_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(KdfairError, match="does not exist"):
        resnet18(10, pretrained=str(tmp_path / "nope.pth"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(KdfairError, match="not in torch's cache"):
        resnet18(10, pretrained="torchvision")
    with pytest.raises(KdfairError, match="use torchvision"):
        resnet18(10, pretrained="timm")
