"""The experiment's networks: the study's CNN (classification) and a small 2D U-Net (segmentation).

:class:`NamozovCNN` (Namozov & Cho): conv(32) conv(32) pool | conv(64)
conv(64) pool | conv(128) conv(128) pool | fc 2048 (dropout) | fc 2048
(dropout) | fc 2 (softmax, folded into the loss).  At a 64 x 64 input the
flattened features are 128 x 8 x 8 = 8192.

:class:`UNet2D`: a U-Net (Ronneberger et al.) with ``depth`` poolings, two
3x3 convolutions with batch normalisation and ReLU per level, transposed
convolutions up, skip connections, and one logit per pixel.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NamozovCNN", "UNet2D", "count_parameters"]


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


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet2D(nn.Module):
    """A small 2D U-Net; ``forward`` returns one logit per pixel, shape ``(n, classes, h, w)``.

    Parameters
    ----------
    in_channels, classes : int
        Input channels and output channels (1: a foreground logit).
    width : int
        Channels of the first level; each level down doubles them.
    depth : int
        Number of 2x2 poolings (the input size must be divisible by ``2**depth``).

    Examples
    --------
    >>> net = UNet2D(width=4, depth=2)
    >>> tuple(net(torch.zeros(1, 1, 16, 16)).shape)
    (1, 1, 16, 16)
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, chans[0])] + [_block(chans[i], chans[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth))])
        self.merge = nn.ModuleList([_block(2 * chans[i], chans[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], classes, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
