"""The study's CNN (Namozov & Cho): six 3x3 convolutions, three max-pools, two 2048-wide dense layers.

conv(32) conv(32) pool | conv(64) conv(64) pool | conv(128) conv(128) pool |
fc 2048 (dropout) | fc 2048 (dropout) | fc 2 (softmax, folded into the loss).
At a 64 x 64 input the flattened features are 128 x 8 x 8 = 8192.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NamozovCNN", "count_parameters"]


def _pair(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    ]


class NamozovCNN(nn.Module):
    """The classifier; ``forward`` returns logits (softmax is applied by the loss / at evaluation).

    Parameters
    ----------
    size : int
        Input height and width (divisible by 8).
    in_channels, classes : int
        Input channels and output classes.
    hidden : int
        Width of the two dense layers (2048 in the study).
    dropout : float
        Dropout probability before each dense layer's output.
    """

    def __init__(self, size: int = 64, in_channels: int = 1, classes: int = 2, hidden: int = 2048,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if size % 8:
            raise ValueError(f"input size must be divisible by 8, got {size}")
        self.features = nn.Sequential(*_pair(in_channels, 32), *_pair(32, 64), *_pair(64, 128))
        flat = 128 * (size // 8) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, classes),
        )
        # He initialisation: with PyTorch's default init this deep ReLU stack without
        # normalisation starts with a near-constant output and stalls at chance for many epochs
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
