"""LeNet-5 (LeCun et al. 1998) in its common modern form: ReLU and max-pooling.

conv(6, 5x5) -> pool -> conv(16, 5x5) -> pool -> fc 120 -> fc 84 -> fc num_classes.
At 32x32 RGB input and 10 classes it has 62,006 parameters.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        side = ((image_size - 4) // 2 - 4) // 2  # two valid 5x5 convs, each followed by a 2x pool
        if side < 1:
            raise ValueError(
                f"LeNet-5 needs images of at least 12x12 pixels, got image_size={image_size}; "
                "raise dataset.image_size."
            )
        self.fc = nn.Sequential(
            nn.Linear(16 * side * side, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet5(num_classes: int, in_channels: int = 3, image_size: int = 32) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
