import pytest
import torch

from kdfair.models.lenet import lenet5
from kdfair.models.resnet_cifar import CifarResNet, resnet20, resnet56


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("factory", "expected"),
    [(resnet20, 0.27e6), (resnet56, 0.85e6), (lenet5, 62_006)],
)
def test_parameter_counts_match_the_papers(factory, expected):
    # He et al. 2016, Table 6: ResNet-20 0.27M, ResNet-56 0.85M (10 classes).
    assert n_params(factory(10)) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("factory", [resnet20, resnet56, lenet5])
@pytest.mark.parametrize("num_classes", [2, 10, 100])
def test_forward_backward_and_features(factory, num_classes):
    model = factory(num_classes)
    x = torch.randn(3, 3, 32, 32)
    out = model(x)
    assert out.shape == (3, num_classes)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.classifier(model.features(x)), model(x))


def test_resnet_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(21)


def test_lenet_rejects_images_too_small_for_its_convolutions():
    with pytest.raises(ValueError, match="image_size"):
        lenet5(10, image_size=8)
