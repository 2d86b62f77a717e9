"""QFX-style residual CNN on MNIST: binary convolutions, fixed-point element-wise layers.

    x = 2x - 1 -> ap_fixed<8,1> input
    stem:  pad(-1) -> 3x3 binary conv 1->16 -> fixed BatchNorm -> ap_fixed<8,I> -> maxpool 2
    2 residual blocks (14x14x16), each:
           sign -> pad(-1) -> 3x3 binary conv 16->16 -> fixed BatchNorm -> ap_fixed<8,I>
           -> add shortcut -> ap_fixed<8,I>
    maxpool 2 -> sign -> flatten (784) -> binary linear 784->10 -> TensorNorm

Binary convolutions see bipolar (or, in the stem, fixed-point) inputs padded with -1, so
the padded value stays on the input grid. Every binary point I (activations, BatchNorm
multipliers and offsets, residual adds) is learned; word lengths are fixed at 8 bits.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from flow.train.nn import BinaryConv2d, BinaryLinear, FixedAct, FixedAdd, FixedBatchNorm, SignAct, TensorNorm

WIDTH = 8


class ConvBN(nn.Module):
    """pad(-1) -> binary 3x3 conv -> fixed-point BatchNorm -> fixed-point activation."""

    def __init__(self, cin: int, cout: int, width: int = WIDTH):
        super().__init__()
        self.conv = BinaryConv2d(cin, cout, 3)
        self.bn = FixedBatchNorm(cout, width)
        self.act = FixedAct(width, int_bits=4.0)

    def forward(self, x):
        return self.act(self.bn(self.conv(F.pad(x, (1, 1, 1, 1), value=-1.0))))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int, width: int = WIDTH):
        super().__init__()
        self.sign = SignAct()
        self.body = ConvBN(ch, ch, width)
        self.add = FixedAdd(width, int_bits=4.0)

    def forward(self, x):
        return self.add(self.body(self.sign(x)), x)


class QFXResNet(nn.Module):
    def __init__(self, channels: int = 16, blocks: int = 2, num_classes: int = 10, width: int = WIDTH):
        super().__init__()
        self.input_quant = FixedAct(8, int_bits=1.0, learn=False)
        self.stem = ConvBN(1, channels, width)
        self.pool1 = nn.MaxPool2d(2)
        self.blocks = nn.Sequential(*[ResidualBlock(channels, width) for _ in range(blocks)])
        self.pool2 = nn.MaxPool2d(2)
        self.sign = SignAct()
        self.fc = BinaryLinear(channels * 7 * 7, num_classes)
        self.norm = TensorNorm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(2.0 * x - 1.0)
        x = self.pool1(self.stem(x))
        x = self.pool2(self.blocks(x))
        x = self.sign(x)
        return self.norm(self.fc(x.reshape(x.shape[0], -1)))


MODELS = {
    "qfx-resnet": {
        "build": lambda: QFXResNet(),
        "input_shape": (1, 28, 28),
        "dataset": "mnist",
        "num_classes": 10,
        "precision": {"input": "fx8", "weights": 1, "activations": "1+fx8"},
        "defaults": {"epochs": 15, "lr": 0.01, "batch_size": 100, "weight_decay": 0.0, "shift": 1},
        "description": "MNIST residual CNN: binary 3x3 convs, ap_fixed<8,I> BatchNorm, activations and "
                       "shortcut adds with learned binary points",
    },
}
