"""Library image classifiers: torchvision's ResNet-18/50 and DenseNet-121/169, timm's ViT-Base/16
and TinyViT, each wrapped to expose `features(x)` and `classifier` like kdfair's own models.

Small-image stems (`small_input=True`, for 32 px CIFAR and 64 px Tiny ImageNet) replace the 7x7
stride-2 convolution and the max-pool of the ImageNet stem by a 3x3 stride-1 convolution, the
usual CIFAR adaptation; the standard stem serves ImageNet and CelebA.

Pretrained weights (`pretrained=`): a local file (a kdfair model.pt, or a torchvision/timm state
dict), or `torchvision` / `timm` for the library's ImageNet weights when they are already in its
cache (nothing is downloaded). A classifier head of another size is replaced by a fresh one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torchvision
from torch import nn

from kdfair.errors import KdfairError
from kdfair.extras import require

log = logging.getLogger(__name__)

HEAD_PREFIXES = ("fc.", "classifier.", "head.fc.", "head.")  # torchvision/timm names of the head


class LibraryClassifier(nn.Module):
    """A library network with its head split off: forward(x) = classifier(features(x))."""

    def __init__(self, net: nn.Module, classifier: nn.Linear):
        super().__init__()
        self.net, self.classifier = net, classifier

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _split_head(net: nn.Module, attribute: str, num_classes: int) -> LibraryClassifier:
    head = getattr(net, attribute)
    setattr(net, attribute, nn.Identity())
    return LibraryClassifier(net, nn.Linear(head.in_features, num_classes))


def _small_stem(conv: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=1, padding=1, bias=False)


def _torchvision_resnet(name: str, num_classes: int, small_input: bool, pretrained: str | None):
    net = getattr(torchvision.models, name)(weights=None)
    if small_input:
        net.conv1, net.maxpool = _small_stem(net.conv1), nn.Identity()
    model = _split_head(net, "fc", num_classes)
    return _load_pretrained(model, pretrained, name, library="torchvision")


def _torchvision_densenet(name: str, num_classes: int, small_input: bool, pretrained: str | None):
    net = getattr(torchvision.models, name)(weights=None)
    if small_input:
        net.features.conv0, net.features.pool0 = _small_stem(net.features.conv0), nn.Identity()
    model = _split_head(net, "classifier", num_classes)
    return _load_pretrained(model, pretrained, name, library="torchvision")


def _timm_model(name: str, num_classes: int, pretrained: str | None, **kwargs):
    timm = require("vit", "timm", f"the {name} model")

    net = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    model = LibraryClassifier(net, nn.Linear(net.num_features, num_classes))
    return _load_pretrained(model, pretrained, name, library="timm")


def resnet18(num_classes: int, small_input: bool = False, pretrained: str | None = None):
    """ResNet-18 (He et al. 2016): 11.7M parameters at 1000 classes."""
    return _torchvision_resnet("resnet18", num_classes, small_input, pretrained)


def resnet50(num_classes: int, small_input: bool = False, pretrained: str | None = None):
    """ResNet-50 (He et al. 2016): 25.6M parameters at 1000 classes."""
    return _torchvision_resnet("resnet50", num_classes, small_input, pretrained)


def densenet121(num_classes: int, small_input: bool = False, pretrained: str | None = None):
    """DenseNet-121 (Huang et al. 2017): 8.0M parameters at 1000 classes."""
    return _torchvision_densenet("densenet121", num_classes, small_input, pretrained)


def densenet169(num_classes: int, small_input: bool = False, pretrained: str | None = None):
    """DenseNet-169 (Huang et al. 2017): 14.1M parameters at 1000 classes."""
    return _torchvision_densenet("densenet169", num_classes, small_input, pretrained)


def vit_base(num_classes: int, image_size: int = 224, pretrained: str | None = None):
    """ViT-Base/16 (Dosovitskiy et al. 2021), timm's vit_base_patch16_224: 86.6M parameters."""
    return _timm_model("vit_base_patch16_224", num_classes, pretrained, img_size=image_size)


def tiny_vit(num_classes: int, variant: str = "tiny_vit_5m_224", pretrained: str | None = None):
    """TinyViT (Wu et al. 2022), timm's `variant`: 5M (default), 11M or 21M parameters.

    Its windowed attention pads any input size, so it takes no image size.
    """
    return _timm_model(variant, num_classes, pretrained)


# ---------------------------------------------------------------------------------------------
# Pretrained weights


def _library_state_dict(name: str, library: str) -> dict[str, torch.Tensor]:
    """The library's ImageNet weights for `name`, from its local cache only."""
    if library == "torchvision":
        weights = torchvision.models.get_model_weights(name).DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.is_file():
            raise KdfairError(
                f"pretrained=torchvision: the {name} weights are not in torch's cache ({cached}) "
                "and kdfair downloads nothing. Copy the file there, or pass a local checkpoint "
                "as pretrained=/path/to/weights.pth."
            )
        return torch.load(cached, map_location="cpu", weights_only=True)
    timm = require("vit", "timm", f"pretrained=timm ({name})")

    try:
        net = timm.create_model(name, pretrained=True)
    except Exception as e:  # noqa: BLE001 - hub errors vary; none is recoverable offline
        raise KdfairError(
            f"pretrained=timm: the {name} weights are not in the Hugging Face cache and kdfair "
            f"downloads nothing ({type(e).__name__}). Copy them into the cache, or pass a local "
            "checkpoint as pretrained=/path/to/weights.pth."
        ) from e
    return net.state_dict()


def _read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise KdfairError(
            f"pretrained={path!r} does not exist; give the path of a checkpoint file."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickles, zips and garbage fail differently
        raise KdfairError(
            f"pretrained={path!r} is not a weights-only torch checkpoint ({e})."
        ) from e
    if isinstance(state, dict) and "state_dict" in state:  # a kdfair model.pt
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise KdfairError(f"pretrained={path!r} holds no state dict.")
    return state


def _as_wrapped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Library key names (conv1.weight, fc.weight) -> the wrapper's (net.conv1.weight,
    classifier.weight); keys already in the wrapper's form pass unchanged."""
    if any(k.startswith(("net.", "classifier.")) for k in state):
        return dict(state)
    out = {}
    for key, value in state.items():
        head = next((p for p in HEAD_PREFIXES if key.startswith(p)), None)
        out[f"classifier.{key[len(head) :]}" if head else f"net.{key}"] = value
    return out


def _load_pretrained(model: LibraryClassifier, pretrained: str | None, name: str, *, library: str):
    if not pretrained:
        return model
    if pretrained in ("torchvision", "timm"):
        if pretrained != library:
            raise KdfairError(f"pretrained={pretrained} does not provide {name}; use {library}.")
        state = _library_state_dict(name, library)
    else:
        state = _read_checkpoint(pretrained)
    state = _as_wrapped(state)
    own = model.state_dict()
    head_keys = [k for k in state if k.startswith("classifier.")]
    if any(k in own and state[k].shape != own[k].shape for k in head_keys):
        log.info("pretrained %s: replacing the %s-class head", name, len(state[head_keys[0]]))
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    _check_shapes(model, state, name)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("classifier.")]
    if missing or unexpected:
        raise KdfairError(
            f"pretrained={pretrained} does not fit {name}: missing keys {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}. Is it a checkpoint of this architecture "
            "(and stem: small_input)?"
        )
    return model


def _check_shapes(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    own = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if wrong:
        raise KdfairError(
            f"the pretrained weights do not fit {name}: shape mismatch in {wrong[:3]}. Is it a "
            "checkpoint of this architecture (and stem: small_input)?"
        )
