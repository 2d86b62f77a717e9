"""Trainable quantized layers on Brevitas quantizers (exportable with `brevitas.export.export_qonnx`).

The layers follow brevitas_examples.bnn_pynq (constant scale 1.0, narrow signed range, no
zero point) so that a 1-bit weight or activation exports as a QONNX ``BipolarQuant`` node
with scale 1, and wider ones as ``Quant`` nodes with a constant scale.

Straight-through estimators (what Brevitas does, checked in tests/test_nn.py):

* ``SignAct`` (1 bit) uses Brevitas' ClampedBinaryQuant: forward ``sign(x)`` with
  ``sign(0) = +1``; backward passes the gradient unchanged where ``-1 <= x <= 1`` and zero
  elsewhere (the clamp to [-scale, scale] before the sign kills it outside).
* ``BinaryLinear`` weights use Brevitas' BinaryQuant: forward ``sign(w)`` (``sign(0) = +1``),
  backward passes the gradient unchanged everywhere (no clamp). Training keeps the float
  latent weights in [-1, 1] with ``clip_weights`` after each optimizer step, as BNN-PYNQ does.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

with warnings.catch_warnings():  # brevitas notes a missing optional fast_hadamard_transform
    warnings.simplefilter("ignore")
    import brevitas.nn  # noqa: F401

from brevitas.core.bit_width import BitWidthImplType
from brevitas.core.quant import QuantType
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.inject import ExtendedInjector
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from dependencies import value

__all__ = ["WeightQuant", "ActQuant", "BinaryLinear", "QuantLinearLayer", "SignAct", "QuantAct",
           "TensorNorm", "clip_weights"]


class _ConstQuant(ExtendedInjector):
    """Signed, narrow-range, constant scale, zero zero-point; 1 bit means bipolar."""

    bit_width_impl_type = BitWidthImplType.CONST
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    zero_point_impl = ZeroZeroPoint
    float_to_int_impl_type = FloatToIntImplType.ROUND
    scaling_per_output_channel = False
    narrow_range = True
    signed = True

    @value
    def quant_type(bit_width):
        if bit_width is None:
            return QuantType.FP
        if bit_width == 1:
            return QuantType.BINARY
        return QuantType.INT


class WeightQuant(_ConstQuant, WeightQuantSolver):
    """Weight quantizer: scale 1.0 (bipolar weights at 1 bit)."""

    scaling_const = 1.0


class ActQuant(_ConstQuant, ActQuantSolver):
    """Activation quantizer over [-1, 1]: scale 1.0 at 1 bit (sign)."""

    min_val = -1.0
    max_val = 1.0


class QuantLinearLayer(QuantLinear):
    """Linear layer with `weight_bits`-bit weights of constant scale, no bias."""

    def __init__(self, in_features: int, out_features: int, weight_bits: int = 1):
        super().__init__(in_features, out_features, bias=False, weight_quant=WeightQuant,
                         weight_bit_width=weight_bits)
        self.weight_bits = weight_bits
        nn.init.uniform_(self.weight.data, -1.0, 1.0)


class BinaryLinear(QuantLinearLayer):
    """Linear layer with bipolar (+1/-1) weights, scale 1.0, no bias."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, weight_bits=1)


class QuantAct(QuantIdentity):
    """Activation quantizer with `bits` bits over [-1, 1] (1 bit: sign with scale 1.0)."""

    def __init__(self, bits: int = 1):
        super().__init__(act_quant=ActQuant, bit_width=bits, return_quant_tensor=False)
        self.bits = bits


class SignAct(QuantAct):
    """Binary sign activation: +1 where x >= 0, else -1; straight-through where |x| <= 1."""

    def __init__(self):
        super().__init__(bits=1)


class TensorNorm(nn.Module):
    """Scalar affine normalisation with running statistics (BNN-PYNQ's TensorNorm).

    Training: y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias over the whole tensor;
    eval: the same with the running mean/variance (unbiased variance is tracked).
    """

    def __init__(self, eps: float = 1e-4, momentum: float = 0.1):
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean()
            biased_var = x.var(unbiased=False)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * x.var(unbiased=True).detach())
            return (x - mean) / (biased_var + self.eps).sqrt() * self.weight + self.bias
        return (x - self.running_mean) / (self.running_var + self.eps).sqrt() * self.weight + self.bias


def clip_weights(model: nn.Module, lo: float = -1.0, hi: float = 1.0) -> None:
    """Clamp the latent float weights of every quantized linear layer to [lo, hi]."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, QuantLinear):
                m.weight.clamp_(lo, hi)
