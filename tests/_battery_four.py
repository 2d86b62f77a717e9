"""The battery's fourth round (tests/_battery.py, tests/_battery_more.py have the others):
a ResNet stage with a convolutional shortcut of its own scale, depthwise-separable Conv1d,
per-channel ReLU scales before pooling, binary weights with biases on int8 tabular inputs, a
fully convolutional head, Hardtanh/ReLU6 variants, and a binary CNN with zero padding."""
from __future__ import annotations

import torch
from torch import nn

from _battery import CIFAR, MNIST, Battery, _conv_bn_relu, _finish


# --- round four -----------------------------------------------------------------------------

class ConvShortcutStage(nn.Module):
    """A ResNet stage's first block: the body (3x3 stride-2 conv + BN + QuantReLU, 3x3 conv + BN +
    a signed QuantIdentity) and a projection shortcut (1x1 stride-2 QuantConv2d + BN + a signed
    QuantIdentity of its own, a different scale from the body's), joined by Add and requantized
    by a QuantReLU."""

    def __init__(self, cin: int, cout: int, bits: int = 4):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

        self.body = nn.Sequential(QuantConv2d(cin, cout, 3, stride=2, padding=1, bias=False, weight_bit_width=bits),
                                  nn.BatchNorm2d(cout), QuantReLU(bit_width=bits),
                                  QuantConv2d(cout, cout, 3, padding=1, bias=False, weight_bit_width=bits),
                                  nn.BatchNorm2d(cout), QuantIdentity(bit_width=bits))
        self.shortcut = nn.Sequential(QuantConv2d(cin, cout, 1, stride=2, bias=False, weight_bit_width=bits),
                                      nn.BatchNorm2d(cout), QuantIdentity(bit_width=bits + 2))
        self.out = QuantReLU(bit_width=bits)

    def forward(self, x):
        return self.out(self.body(x) + self.shortcut(x))


def resnet_conv_shortcut(seed: int = 0, small: bool = False) -> Battery:
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8), *_conv_bn_relu(QuantConv2d, 3, c, 4, kernel_size=3, stride=2, padding=1),
              ConvShortcutStage(c, 2 * c),                                    # 16 -> 8
              nn.AvgPool2d(2), QuantIdentity(bit_width=6),                    # 8 -> 4
              nn.Flatten(), QuantLinear(2 * c * 16, 10, bias=True, weight_bit_width=4)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


def dw_separable_conv1d(seed: int = 0, small: bool = False) -> Battery:
    """Depthwise-separable QuantConv1d blocks on a (C, L) sequence: a depthwise conv (groups=C,
    kernel 5, stride 2, padding 2) + BN + QuantReLU, then a pointwise conv + BN + QuantReLU."""
    from brevitas.nn import QuantConv1d, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8)]
    layers += _conv_bn_relu(QuantConv1d, 4, c, 4, kernel_size=3, padding=1)
    for cin, cout in ((c, c), (c, 2 * c)):
        layers += _conv_bn_relu(QuantConv1d, cin, cin, 4, kernel_size=5, stride=2, padding=2, groups=cin)
        layers += _conv_bn_relu(QuantConv1d, cin, cout, 4, kernel_size=1)
    layers += [nn.Flatten(), QuantLinear(2 * c * 16, 6, bias=True, weight_bit_width=4)]   # 64 -> 32 -> 16
    return _finish(nn.Sequential(*layers), (4, 64), "int8", seed, cli=["--input-type", "fixed<8,1>"])


def vgg_per_channel_relu(seed: int = 0, small: bool = False) -> Battery:
    """A small VGG: three MaxPools, each after a QuantReLU with per-output-channel scales (the
    MobileNet idiom: scaling_per_output_channel with a broadcastable shape and permuted statistics
    dims), and a 1x1 conv head before the classifier."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    c = 8 if small else 16

    def relu_pc(ch):
        return QuantReLU(bit_width=4, scaling_per_output_channel=True, per_channel_broadcastable_shape=(1, ch, 1, 1),
                         scaling_stats_permute_dims=(1, 0, 2, 3))

    def conv(cin, cout, k=3):
        return [QuantConv2d(cin, cout, k, padding=k // 2, bias=False, weight_bit_width=4), nn.BatchNorm2d(cout)]

    layers = [QuantIdentity(bit_width=8)]
    layers += conv(3, c) + [relu_pc(c), nn.MaxPool2d(2)]                                         # 32 -> 16
    layers += conv(c, c) + [QuantReLU(bit_width=4)] + conv(c, 2 * c) + [relu_pc(2 * c), nn.MaxPool2d(2)]   # -> 8
    layers += conv(2 * c, 2 * c) + [relu_pc(2 * c), nn.MaxPool2d(2)]                             # 8 -> 4
    layers += conv(2 * c, c, 1) + [QuantReLU(bit_width=4), nn.Flatten(), QuantLinear(c * 16, 10, bias=True,
                                                                                      weight_bit_width=4)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


def binary_weight_mlp(seed: int = 0, small: bool = False) -> Battery:
    """Binary weights (SignedBinaryWeightPerTensorConst, +-1) with float biases and BatchNorm,
    2-bit QuantReLU, on int8 tabular inputs read through a signed 8-bit input quantizer."""
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    torch.manual_seed(seed)
    h = 32 if small else 128
    wq = dict(weight_quant=SignedBinaryWeightPerTensorConst)
    layers = [QuantIdentity(bit_width=8),
              QuantLinear(48, h, bias=True, **wq), nn.BatchNorm1d(h), QuantReLU(bit_width=2),
              QuantLinear(h, h, bias=True, **wq), nn.BatchNorm1d(h), QuantReLU(bit_width=2),
              QuantLinear(h, 5, bias=True, **wq)]
    return _finish(nn.Sequential(*layers), (48,), "int8", seed, cli=["--input-type", "fixed<8,1>"])


def fully_conv_head(seed: int = 0, small: bool = False) -> Battery:
    """A fully convolutional classifier: the last layer is a 1x1 QuantConv2d (with bias) giving
    the class scores per position, averaged by AdaptiveAvgPool2d(1) and flattened."""
    from brevitas.nn import QuantConv2d, QuantIdentity

    from _battery import _fit

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8)]
    layers += _conv_bn_relu(QuantConv2d, 3, c, 4, kernel_size=3, stride=2, padding=1)           # 32 -> 16
    layers += _conv_bn_relu(QuantConv2d, c, 2 * c, 4, kernel_size=3, stride=2, padding=1)       # 16 -> 8
    head = QuantConv2d(2 * c, 10, 1, bias=True, weight_bit_width=4)
    layers += [head, nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    model = nn.Sequential(*layers)
    entry = Battery(model, CIFAR, "uint8")
    x = entry.to_float(entry.inputs(32, seed + 1))
    _fit(model, x, seed + 2)
    with torch.no_grad():  # centre the class scores (as _balance does for a last QuantLinear)
        head.bias -= model(x).mean(dim=0)
    return entry


def relu6_hardtanh_mlp(seed: int = 0, small: bool = False) -> Battery:
    """Ordinary float idioms around the quantizers: nn.Hardtanh before a QuantIdentity, a ReLU6-style
    QuantReLU(max_val=6, constant scale), Dropout, torch.flatten, and a last QuantLinear whose bias
    is quantized to 8 bits (Int8Bias)."""
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import Int8Bias

    torch.manual_seed(seed)
    h = 32 if small else 64

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.fc1 = QuantLinear(28 * 28, h, bias=True, weight_bit_width=4)
            self.bn1 = nn.BatchNorm1d(h)
            self.act1 = QuantReLU(bit_width=4, max_val=6.0, scaling_impl_type="const")
            self.drop = nn.Dropout(0.3)
            self.fc2 = QuantLinear(h, h, bias=True, weight_bit_width=4)
            self.bn2 = nn.BatchNorm1d(h)
            self.tanh = nn.Hardtanh()
            self.act2 = QuantIdentity(bit_width=4, return_quant_tensor=True)
            self.fc3 = QuantLinear(h, 10, bias=True, weight_bit_width=4, bias_quant=Int8Bias)

        def forward(self, x):
            t = self.drop(self.act1(self.bn1(self.fc1(torch.flatten(self.inp(x), 1)))))
            return self.fc3(self.act2(self.tanh(self.bn2(self.fc2(t)))))

    return _finish(Net(), MNIST, "uint8", seed)


def binary_cnn_padded(seed: int = 0, small: bool = False) -> Battery:
    """A binary CNN written the ordinary way: QuantConv2d(padding=1) reading bipolar activations
    (the float model pads with 0.0, which a 1-bit code cannot hold: the flow re-codes the tensor
    as -1/0/+1 and lowers the conv as an add/subtract IntMVU), binary weights, BatchNorm, bipolar
    QuantIdentity activations, MaxPool and a binary classifier."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    torch.manual_seed(seed)
    c, side = 8, 16
    binary = dict(weight_bit_width=1, weight_quant=SignedBinaryWeightPerTensorConst, bias=False)

    def act():
        return QuantIdentity(quant_type="binary", bit_width=1, scaling_impl_type="const", min_val=-1.0, max_val=1.0)

    layers = [QuantIdentity(bit_width=8),
              QuantConv2d(3, c, 3, padding=1, **binary), nn.BatchNorm2d(c), act(),
              QuantConv2d(c, c, 3, padding=1, **binary), nn.BatchNorm2d(c), act(),
              nn.MaxPool2d(2), nn.Flatten(), QuantLinear(c * (side // 2) ** 2, 10, **binary)]
    return _finish(nn.Sequential(*layers), (3, side, side), "uint8", seed)


ROUND_FOUR = {f.__name__: f for f in (resnet_conv_shortcut, dw_separable_conv1d, vgg_per_channel_relu,
                                      binary_weight_mlp, fully_conv_head, relu6_hardtanh_mlp, binary_cnn_padded)}
