"""More battery networks (tests/_battery.py has the first ones): Brevitas idioms that FINN's
export tests and end-to-end flows exercise and that a user writes without thinking of the
hardware. Each builder returns a `Battery` entry, random weights, randomised BatchNorm and
activation scales calibrated on random inputs (`_finish`)."""
from __future__ import annotations

import torch
from torch import nn

from _battery import CIFAR, MNIST, Battery, _conv_bn_relu, _finish


def mlp_per_channel(seed: int = 0, small: bool = False) -> Battery:
    """Per-output-channel float weight scales everywhere (the last layer's too), biases and no
    BatchNorm: the scales and biases alone set each neuron's thresholds and each class's step."""
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    hidden = (24,) if small else (64, 32)
    layers, width = [QuantIdentity(bit_width=8), nn.Flatten()], 28 * 28
    for h in hidden:
        layers += [QuantLinear(width, h, bias=True, weight_bit_width=4, weight_scaling_per_output_channel=True),
                   QuantReLU(bit_width=4)]
        width = h
    layers.append(QuantLinear(width, 10, bias=True, weight_bit_width=4, weight_scaling_per_output_channel=True))
    return _finish(nn.Sequential(*layers), MNIST, "uint8", seed)


def hardtanh_mlp(seed: int = 0, small: bool = False) -> Battery:
    """Signed activations: QuantHardTanh (FINN's export tests) and a signed 4-bit QuantIdentity
    between layers, 3-bit weights, BatchNorm1d, no ReLU anywhere."""
    from brevitas.nn import QuantHardTanh, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    h = 32 if small else 128
    layers = [QuantIdentity(bit_width=8), nn.Flatten(),
              QuantLinear(28 * 28, h, bias=False, weight_bit_width=3), nn.BatchNorm1d(h),
              QuantHardTanh(bit_width=3, min_val=-1.0, max_val=1.0),
              QuantLinear(h, h, bias=True, weight_bit_width=3), nn.BatchNorm1d(h), QuantIdentity(bit_width=4),
              QuantLinear(h, 10, bias=False, weight_bit_width=3)]
    return _finish(nn.Sequential(*layers), MNIST, "uint8", seed)


def cnn_pool_variants(seed: int = 0, small: bool = False) -> Battery:
    """Conv biases without BatchNorm, MaxPool before the activation quantizer (conv -> pool ->
    QuantReLU), a ReLU6-style QuantReLU(max_val=6), and the average pool as AdaptiveAvgPool2d."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8),
              QuantConv2d(3, c, 3, padding=1, bias=True, weight_bit_width=4), QuantReLU(bit_width=4, max_val=6.0),
              QuantConv2d(c, c, 3, padding=1, bias=True, weight_bit_width=4), nn.BatchNorm2d(c),
              nn.MaxPool2d(2), QuantReLU(bit_width=4),                                      # 32 -> 16
              QuantConv2d(c, 2 * c, 3, stride=2, padding=1, bias=False, weight_bit_width=4), nn.BatchNorm2d(2 * c),
              QuantReLU(bit_width=4),                                                       # 16 -> 8
              nn.AdaptiveAvgPool2d(1), nn.Flatten(), QuantIdentity(bit_width=8),
              QuantLinear(2 * c, 10, bias=True, weight_bit_width=8)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


def grouped_dw(seed: int = 0, small: bool = False) -> Battery:
    """A grouped conv (groups=2), a depthwise conv with a channel multiplier of 2 (groups = in
    channels, out = 2 x in) and a strided depthwise conv, each with BatchNorm and QuantReLU."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8)]
    layers += _conv_bn_relu(QuantConv2d, 3, c, 4, kernel_size=3, padding=1, stride=2)              # 32 -> 16
    layers += _conv_bn_relu(QuantConv2d, c, c, 4, kernel_size=3, padding=1, groups=2)
    layers += _conv_bn_relu(QuantConv2d, c, 2 * c, 4, kernel_size=3, padding=1, groups=c)          # multiplier 2
    layers += _conv_bn_relu(QuantConv2d, 2 * c, 2 * c, 4, kernel_size=3, padding=1, stride=2, groups=2 * c)  # 16 -> 8
    layers += _conv_bn_relu(QuantConv2d, 2 * c, 2 * c, 4, kernel_size=1)
    layers += [nn.MaxPool2d(2), nn.Flatten(), QuantLinear(2 * c * 16, 10, bias=True, weight_bit_width=4)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


def conv1d_dilated(seed: int = 0, small: bool = False) -> Battery:
    """1-D signals (RadioML-style, 2 x 128 int8 samples): dilated and strided Conv1d, kernel 5,
    padding, a global average pool over time (AdaptiveAvgPool1d) and a linear classifier."""
    from brevitas.nn import QuantConv1d, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    c = 8 if small else 32
    layers = [QuantIdentity(bit_width=8)]
    layers += _conv_bn_relu(QuantConv1d, 2, c, 4, kernel_size=5, padding=4, dilation=2)
    layers += _conv_bn_relu(QuantConv1d, c, c, 4, kernel_size=3, stride=2, padding=1)            # 128 -> 64
    layers += [nn.MaxPool1d(2)]                                                                  # 64 -> 32
    layers += _conv_bn_relu(QuantConv1d, c, 2 * c, 4, kernel_size=3, padding=1)
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), QuantIdentity(bit_width=8),
               QuantLinear(2 * c, 8, bias=True, weight_bit_width=4)]
    return _finish(nn.Sequential(*layers), (2, 128), "int8", seed, cli=["--input-type", "fixed<8,1>"])


class Inception(nn.Module):
    """Three branches from one quantized tensor (1x1, 3x3, 3x3 after 1x1) joined by torch.cat,
    every branch ending in one shared QuantReLU (Brevitas's QuantCat idiom), then a residual Add of
    two branches with quantizers of their own, requantized."""

    def __init__(self, c: int = 8, bits: int = 4):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

        def cbr(cin, cout, k, act):
            return nn.Sequential(QuantConv2d(cin, cout, k, padding=k // 2, bias=False, weight_bit_width=bits),
                                 nn.BatchNorm2d(cout), act)

        self.inp = QuantIdentity(bit_width=8)
        self.stem = nn.Sequential(*_conv_bn_relu(QuantConv2d, 3, c, bits, kernel_size=3, stride=2, padding=1))
        shared = QuantReLU(bit_width=bits)
        self.b1 = cbr(c, c, 1, shared)
        self.b2 = cbr(c, c, 3, shared)
        self.b3 = nn.Sequential(cbr(c, c, 1, QuantReLU(bit_width=bits)), cbr(c, c, 3, shared))
        self.p = cbr(3 * c, 2 * c, 1, QuantReLU(bit_width=bits))
        self.q = cbr(3 * c, 2 * c, 3, QuantReLU(bit_width=bits))
        self.requant = QuantReLU(bit_width=bits)
        self.head = nn.Sequential(nn.MaxPool2d(4), nn.Flatten(), QuantLinear(2 * c * 16, 10, bias=True,
                                                                             weight_bit_width=bits))

    def forward(self, x):
        t = self.stem(self.inp(x))
        t = torch.cat([self.b1(t), self.b2(t), self.b3(t)], dim=1)
        return self.head(self.requant(self.p(t) + self.q(t)))


def inception_mix(seed: int = 0, small: bool = False) -> Battery:
    torch.manual_seed(seed)
    return _finish(Inception(c=8 if small else 16), CIFAR, "uint8", seed)


def binary_cnn_float_scales(seed: int = 0, small: bool = False) -> Battery:
    """A CNV-like binary network in the XNOR-Net style: 1-bit weights with per-output-channel
    float scales from weight statistics (not BNN-PYNQ's constant 1), conv biases, BatchNorm,
    bipolar QuantIdentity activations, MaxPool, and an 8-bit input quantizer."""
    from brevitas.core.function_wrapper import TensorClamp
    from brevitas.core.scaling import ScalingImplType
    from brevitas.core.stats import StatsOp
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    class BinaryPerChannel(SignedBinaryWeightPerTensorConst):  # the mean |w| of each output channel
        tensor_clamp_impl = TensorClamp  # not the in-place clamp: it would move the statistics at every forward
        scaling_impl_type = ScalingImplType.STATS
        scaling_stats_op = StatsOp.AVE
        scaling_per_output_channel = True

    binary = dict(weight_quant=BinaryPerChannel)

    torch.manual_seed(seed)
    c = 16 if small else 64

    def block(cin, cout, **kw):
        return [QuantConv2d(cin, cout, 3, bias=True, **binary, **kw), nn.BatchNorm2d(cout),
                QuantIdentity(bit_width=1, quant_type="binary", scaling_impl_type="const", min_val=-1.0, max_val=1.0)]

    layers = [QuantIdentity(bit_width=8)]
    layers += block(3, c) + block(c, c) + [nn.MaxPool2d(2)]               # 32 -> 30 -> 28 -> 14
    layers += block(c, 2 * c) + block(2 * c, 2 * c) + [nn.MaxPool2d(2)]   # 14 -> 12 -> 10 -> 5
    layers += [nn.Flatten(), QuantLinear(2 * c * 25, 64, bias=True, **binary), nn.BatchNorm1d(64),
               QuantIdentity(bit_width=1, quant_type="binary", scaling_impl_type="const", min_val=-1.0, max_val=1.0),
               QuantLinear(64, 10, bias=True, **binary)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


def layer_input_quant(seed: int = 0, small: bool = False) -> Battery:
    """Quantizers attached to the layers (`input_quant=`, `output_quant=`, Int32 bias) rather than
    separate QuantIdentity modules, and an Add of a residual whose both sides share a quantizer."""
    from brevitas.nn import QuantLinear, QuantReLU
    from brevitas.quant import Int8ActPerTensorFloat, Int32Bias, Uint8ActPerTensorFloat

    torch.manual_seed(seed)
    h = 32 if small else 96

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = QuantLinear(28 * 28, h, bias=True, weight_bit_width=4, input_quant=Int8ActPerTensorFloat,
                                   bias_quant=Int32Bias)
            self.act1 = QuantReLU(bit_width=4, return_quant_tensor=True)
            self.fc2 = QuantLinear(h, h, bias=True, weight_bit_width=4, bias_quant=Int32Bias)
            self.bn2 = nn.BatchNorm1d(h)
            self.act2 = self.act1
            self.fc3 = QuantLinear(h, 10, bias=True, weight_bit_width=4, bias_quant=Int32Bias,
                                   output_quant=None, input_quant=Uint8ActPerTensorFloat)

        def forward(self, x):
            a = self.act1(self.fc1(torch.flatten(x, 1)))
            b = self.act2(self.bn2(self.fc2(a)))
            return self.fc3(a + b)

    return _finish(Net(), MNIST, "uint8", seed, exporter="torchscript")


def batch4_export(seed: int = 0, small: bool = False) -> Battery:
    """A small MLP whose QONNX file was exported with a batch of 4 (a static batch dimension)."""
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    h = 32 if small else 64
    layers = [QuantIdentity(bit_width=8), nn.Flatten(),
              QuantLinear(28 * 28, h, bias=True, weight_bit_width=2), nn.BatchNorm1d(h), QuantReLU(bit_width=2),
              QuantLinear(h, 10, bias=True, weight_bit_width=2)]
    return _finish(nn.Sequential(*layers), MNIST, "uint8", seed, export_batch=4)


MORE = {f.__name__: f for f in (mlp_per_channel, hardtanh_mlp, cnn_pool_variants, grouped_dw, conv1d_dilated,
                                inception_mix, binary_cnn_float_scales, layer_input_quant, batch4_export)}


# --- round two ------------------------------------------------------------------------------

def avgpool_mid(seed: int = 0, small: bool = False) -> Battery:
    """A 2x2 average pool in the middle of the network (nn.AvgPool2d, not global) followed by
    an activation quantizer, a 5x5 stride-2 conv with padding 2, BatchNorm2d(affine=False),
    Dropout2d, and a mean over the spatial axes written as x.mean((2, 3))."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    c = 8 if small else 16

    class Mean(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    layers = [QuantIdentity(bit_width=8),
              QuantConv2d(3, c, 5, stride=2, padding=2, bias=False, weight_bit_width=4),   # 32 -> 16
              nn.BatchNorm2d(c, affine=False), QuantReLU(bit_width=4), nn.Dropout2d(0.2),
              nn.AvgPool2d(2), QuantReLU(bit_width=4),                                      # 16 -> 8
              QuantConv2d(c, 2 * c, 3, padding=1, bias=False, weight_bit_width=4), nn.BatchNorm2d(2 * c),
              QuantReLU(bit_width=4), Mean(), QuantIdentity(bit_width=8),
              QuantLinear(2 * c, 10, bias=True, weight_bit_width=4)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


class InvertedResidual(nn.Module):
    """MobileNet-v2's block: 1x1 expand + QuantReLU, 3x3 depthwise + QuantReLU, 1x1 project with
    a signed linear bottleneck (QuantIdentity, no ReLU), added to the block's input; the two sides
    of the Add have quantizers of their own (different scales) and the sum is requantized."""

    def __init__(self, c: int, expand: int = 4, bits: int = 4):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

        e = c * expand
        self.body = nn.Sequential(QuantConv2d(c, e, 1, bias=False, weight_bit_width=bits), nn.BatchNorm2d(e),
                                  QuantReLU(bit_width=bits),
                                  QuantConv2d(e, e, 3, padding=1, groups=e, bias=False, weight_bit_width=bits),
                                  nn.BatchNorm2d(e), QuantReLU(bit_width=bits),
                                  QuantConv2d(e, c, 1, bias=False, weight_bit_width=bits), nn.BatchNorm2d(c),
                                  QuantIdentity(bit_width=bits))
        self.out = QuantIdentity(bit_width=bits)

    def forward(self, x):
        return self.out(x + self.body(x))


def mobilenet_v2_block(seed: int = 0, small: bool = False) -> Battery:
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8),
              QuantConv2d(3, c, 3, stride=2, padding=1, bias=False, weight_bit_width=4), nn.BatchNorm2d(c),
              QuantIdentity(bit_width=4),                                                      # signed stem output
              InvertedResidual(c), InvertedResidual(c),
              nn.MaxPool2d(4), nn.Flatten(), QuantLinear(c * 16, 10, bias=True, weight_bit_width=4)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


class NhwcFlatten(nn.Module):
    """A classifier that flattens its feature map channels-last (x.permute(0, 2, 3, 1)), as a
    network ported from TensorFlow does."""

    def __init__(self, c: int):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

        self.features = nn.Sequential(QuantIdentity(bit_width=8),
                                      *_conv_bn_relu(QuantConv2d, 1, c, 4, kernel_size=3, stride=2),   # 28 -> 13
                                      *_conv_bn_relu(QuantConv2d, c, c, 4, kernel_size=3, stride=2))   # 13 -> 6
        self.fc = QuantLinear(c * 36, 10, bias=True, weight_bit_width=4)

    def forward(self, x):
        f = self.features(x)
        return self.fc(f.permute(0, 2, 3, 1).reshape(x.shape[0], -1))


def nhwc_flatten(seed: int = 0, small: bool = False) -> Battery:
    torch.manual_seed(seed)
    return _finish(NhwcFlatten(8 if small else 16), MNIST, "uint8", seed)


def cnn_torchscript(seed: int = 0, small: bool = False) -> Battery:
    """A small CNN exported with the TorchScript exporter (export_qonnx(..., dynamo=False)):
    MatMul/Add and Conv as that exporter writes them, a Flatten node, 8-bit weights."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8)]
    layers += _conv_bn_relu(QuantConv2d, 1, c, 8, kernel_size=3, padding=1)
    layers += [nn.MaxPool2d(2)]                                                     # 28 -> 14
    layers += _conv_bn_relu(QuantConv2d, c, c, 8, kernel_size=3)                    # 14 -> 12
    layers += [nn.MaxPool2d(2), nn.Flatten(), QuantLinear(c * 36, 32, bias=True, weight_bit_width=8),
               nn.BatchNorm1d(32), QuantIdentity(bit_width=8), QuantLinear(32, 10, bias=False, weight_bit_width=8)]
    return _finish(nn.Sequential(*layers), MNIST, "uint8", seed, exporter="torchscript")


ROUND_TWO = {f.__name__: f for f in (avgpool_mid, mobilenet_v2_block, nhwc_flatten, cnn_torchscript)}
MORE.update(ROUND_TWO)


# --- round three ----------------------------------------------------------------------------

def fixed_point_cnn(seed: int = 0, small: bool = False) -> Battery:
    """Power-of-two scales everywhere (Brevitas's *FixedPoint quantizers, as hls4ml's ap_fixed
    layers), ternary 2-bit weights in the middle layer, 6-bit weights elsewhere, a Conv1d-free
    2-D CNN with conv biases quantized as Int16 and a stride-2 pool of 3."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias,
                                Uint8ActPerTensorFixedPoint)

    torch.manual_seed(seed)
    c = 8 if small else 16
    wq = dict(weight_quant=Int8WeightPerTensorFixedPoint)
    layers = [QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8, return_quant_tensor=True),
              QuantConv2d(3, c, 3, padding=1, bias=True, bias_quant=Int16Bias, weight_bit_width=6, **wq),
              nn.BatchNorm2d(c), QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4),
              nn.MaxPool2d(3, stride=2),                                                     # 32 -> 15
              QuantConv2d(c, c, 3, bias=False, weight_bit_width=2, **wq), nn.BatchNorm2d(c),  # 15 -> 13
              QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4),
              QuantConv2d(c, 2 * c, 3, stride=2, bias=False, weight_bit_width=6, **wq), nn.BatchNorm2d(2 * c),  # -> 6
              QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=6),
              nn.Flatten(), QuantLinear(2 * c * 36, 10, bias=True, weight_bit_width=6, **wq)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


def signed_input_mlp(seed: int = 0, small: bool = False) -> Battery:
    """Tabular int8 features read by the first layer directly (no input quantizer in the model:
    the input's datatype comes from --input-type), 2-bit ternary weights, QuantReLU(3 bits),
    a single-output decision at the end."""
    from brevitas.nn import QuantLinear, QuantReLU

    torch.manual_seed(seed)
    h = 16 if small else 64
    layers = [QuantLinear(40, h, bias=True, weight_bit_width=2), nn.BatchNorm1d(h), QuantReLU(bit_width=3),
              QuantLinear(h, h, bias=True, weight_bit_width=2), nn.BatchNorm1d(h), QuantReLU(bit_width=3),
              QuantLinear(h, 1, bias=True, weight_bit_width=2)]
    return _finish(nn.Sequential(*layers), (40,), "int8", seed, output="decision",
                   cli=["--input-type", "fixed<8,1>"])


ROUND_THREE = {f.__name__: f for f in (fixed_point_cnn, signed_input_mlp)}
MORE.update(ROUND_THREE)


# the fourth round (tests/_battery_four.py) builds on the helpers above
from _battery_four import ROUND_FOUR  # noqa: E402

MORE.update(ROUND_FOUR)
