"""MobileNet-style Brevitas block stacks for the depthwise tests: random weights and
randomised BatchNorm (both signs of gamma), as brevitas_examples' MobileNet-v1 builds its
blocks: QuantConv2d -> BatchNorm -> QuantReLU, depthwise (groups = channels) and pointwise."""
from __future__ import annotations

import torch
from torch import nn

from _models import randomize_norms


def _relu(bits: int, channels: int, per_channel: bool) -> nn.Module:
    import brevitas.nn as qnn

    if not per_channel:
        return qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
    return qnn.QuantReLU(bit_width=bits, return_quant_tensor=True, scaling_per_output_channel=True,
                         per_channel_broadcastable_shape=(1, channels, 1, 1), scaling_stats_permute_dims=(1, 0, 2, 3))


def _weight_quant():
    """Per-output-channel power-of-two weight scales (integer weights are exact multiples)."""
    from brevitas.quant import Int8WeightPerTensorFixedPoint

    class PerChannelFixedPoint(Int8WeightPerTensorFixedPoint):
        scaling_per_output_channel = True

    return PerChannelFixedPoint


def _block(cin: int, cout: int, k: int, stride: int, groups: int, bits: int, per_channel: bool) -> list[nn.Module]:
    import brevitas.nn as qnn

    return [qnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False,
                            weight_quant=_weight_quant(), weight_bit_width=bits),
            nn.BatchNorm2d(cout), _relu(bits, cout, per_channel)]


class MobileNetStack(nn.Module):
    """8-bit QuantIdentity input -> conv 3x3 -> BN -> QuantReLU, then depthwise-separable
    blocks (depthwise 3x3 with `strides[i]`, pointwise 1x1), then QuantLinear."""

    def __init__(self, in_ch: int = 3, size: int = 8, width: int = 8, strides=(1, 2), bits: int = 4,
                 per_channel: bool = False, classes: int = 10):
        super().__init__()
        import brevitas.nn as qnn

        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        # per-channel activation scales sit where MobileNet-v1 has them: before a depthwise conv
        layers = _block(in_ch, width, 3, 1, 1, bits, per_channel)
        c = width
        for i, s in enumerate(strides):
            last = i == len(strides) - 1
            layers += _block(c, c, 3, s, c, bits, False)
            layers += _block(c, 2 * c, 1, 1, 1, bits, per_channel and not last)
            c, size = 2 * c, (size - 1) // s + 1
        self.features = nn.Sequential(*layers)
        self.fc = qnn.QuantLinear(c * size * size, classes, bias=False, weight_quant=_weight_quant(),
                                  weight_bit_width=bits)

    def forward(self, x):
        x = self.features(self.inp(x))
        return self.fc(x.flatten(1))


def mobilenet_stack(seed: int, **kw) -> nn.Module:
    torch.manual_seed(seed)
    model = MobileNetStack(**kw)
    return calibrate(model, (kw.get("in_ch", 3), kw.get("size", 8), kw.get("size", 8)), seed)


def grouped_net(seed: int, groups: int = 2, cin: int = 4, cout: int = 6, size: int = 5) -> nn.Module:
    """8-bit input -> grouped QuantConv2d 3x3 (not depthwise) -> BN -> QuantReLU -> QuantLinear."""
    import brevitas.nn as qnn

    torch.manual_seed(seed)
    model = nn.Sequential(qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
                          *_block(cin, cout, 3, 1, groups, 4, False), nn.Flatten(),
                          qnn.QuantLinear(cout * size * size, 5, bias=False, weight_quant=_weight_quant(),
                                          weight_bit_width=4))
    return calibrate(model, (cin, size, size), seed)


def pooled_net(seed: int, c: int = 4, size: int = 6) -> nn.Module:
    """conv -> BN -> per-channel QuantReLU -> MaxPool 2 -> depthwise conv -> BN -> QuantReLU -> QuantLinear:
    per-channel codes through a max-pool into a depthwise convolution."""
    import brevitas.nn as qnn

    torch.manual_seed(seed)
    model = nn.Sequential(qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
                          *_block(2, c, 3, 1, 1, 4, True), nn.MaxPool2d(2), *_block(c, c, 3, 1, c, 4, False),
                          nn.Flatten(), qnn.QuantLinear(c * (size // 2) ** 2, 5, bias=False,
                                                        weight_quant=_weight_quant(), weight_bit_width=4))
    return calibrate(model, (2, size, size), seed)


def calibrate(model: nn.Module, shape, seed: int) -> nn.Module:
    """Random BatchNorms that see statistics of their own inputs (random images): means and
    variances near the measured ones, gamma of both signs, small betas; activation quantizer
    ranges of 1..3 (the 8-bit input's: 1), so every layer's codes vary."""
    model = randomize_norms(model, seed + 1)
    g = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        first = True
        for name, prm in model.named_parameters():
            if name.endswith("scaling_impl.value") and "act_quant" in name:
                prm.copy_(torch.ones_like(prm) if first else 1 + 2 * torch.rand(prm.shape, generator=g))
                first = False
        x = torch.rand(64, *shape, generator=g)
        for bn in [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]:
            seen = []
            hook = bn.register_forward_hook(lambda _m, inp, _o, seen=seen: seen.append(inp[0]))
            model(x)
            hook.remove()
            v = seen[0]
            mean, var = v.mean(dim=(0, 2, 3)), v.var(dim=(0, 2, 3)) + 1e-3
            n = bn.num_features
            bn.running_mean.copy_(mean + 0.3 * var.sqrt() * torch.randn(n, generator=g))
            bn.running_var.copy_(var * (0.5 + 1.5 * torch.rand(n, generator=g)))
            bn.weight.copy_(torch.randn(n, generator=g))
            bn.bias.copy_(0.5 * torch.randn(n, generator=g))
    return model.eval()
