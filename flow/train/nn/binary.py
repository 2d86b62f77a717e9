"""Binary and low-bit layers on Brevitas quantizers (exportable with `brevitas.export.export_qonnx`).

The quantizers follow brevitas_examples.bnn_pynq (constant scale, narrow signed range, no
zero point), so a 1-bit weight or activation exports as a QONNX ``BipolarQuant`` node with
scale 1 and a wider one as a ``Quant`` node (signed=1, narrow=1, rounding_mode ROUND, zero
point 0) whose scale is a power of two:

* 1 bit: values -1, +1 (scale 1.0, BipolarQuant)
* 2 bits: values -1, 0, +1 (scale 1.0), exactly BNN-PYNQ's w2/a2
* n >= 3 bits: values k * 2^-(n-1) for |k| <= 2^(n-1) - 1 (scale 2^-(n-1), inside (-1, 1))

Gradient estimators (checked in tests/test_nn.py):

* ``SignAct`` (1 bit) with ``estimator="ste"`` uses Brevitas' ClampedBinaryQuant: forward
  ``sign(x)`` with ``sign(0) = +1``; backward passes the gradient unchanged where
  ``-1 <= x <= 1`` and zero elsewhere.
* Binary weights with ``estimator="ste"`` use Brevitas' BinaryQuant: forward ``sign(w)``,
  backward the identity everywhere. Training keeps the latent weights in [-1, 1] with
  ``clip_weights`` after each optimizer step, as BNN-PYNQ does.
* ``estimator="reste"`` (ReSTE, Wu et al., ICCV 2023) keeps the same forward value and
  replaces the backward by the derivative of the power function ``sign(x)|x|^(1/o)``:
  ``(1/o)|x|^(1/o - 1)`` for ``interval < |x| <= t``, the secant slope
  ``interval^(1/o) / interval`` for ``|x| <= interval`` and 0 for ``|x| > t``
  (defaults o=3, t=1.5, interval=0.1). It acts in training mode only; evaluation and export
  run the Brevitas quantizer, whose forward value is identical.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

with warnings.catch_warnings():  # brevitas notes a missing optional fast_hadamard_transform
    warnings.simplefilter("ignore")
    import brevitas.nn  # noqa: F401

from brevitas.core.bit_width import BitWidthImplType
from brevitas.core.quant import QuantType
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.inject import ExtendedInjector
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from dependencies import value

__all__ = ["WeightQuant", "ActQuant", "BinaryLinear", "QuantLinearLayer", "BinaryConv2d",
           "QuantConv2dLayer", "SignAct", "InputQuant", "QuantAct", "TensorNorm", "clip_weights", "reste_sign",
           "quant_range", "ESTIMATORS"]

ESTIMATORS = ("ste", "reste")


def quant_range(bits: int) -> float:
    """Largest magnitude of the `bits`-bit weight/activation grid (1.0 for 1 and 2 bits)."""
    if bits <= 2:
        return 1.0
    return (2 ** (bits - 1) - 1) / 2 ** (bits - 1)


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
    """Weight quantizer: scale 1.0 at 1 and 2 bits, 2^-(n-1) at n >= 3 bits."""

    @value
    def scaling_const(bit_width):
        return quant_range(bit_width)


class ActQuant(_ConstQuant, ActQuantSolver):
    """Activation quantizer: sign at 1 bit, {-1, 0, 1} at 2 bits, k * 2^-(n-1) at n >= 3."""

    @value
    def max_val(bit_width):
        return quant_range(bit_width)

    @value
    def min_val(bit_width):
        return -quant_range(bit_width)


class _ReSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, o, t, interval):
        ctx.save_for_backward(x)
        ctx.params = (o, t, interval)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        o, t, interval = ctx.params
        a = x.abs()
        power = (1.0 / o) * a.clamp_min(interval).pow((1.0 - o) / o)
        secant = interval ** (1.0 / o) / interval
        g = torch.where(a <= interval, torch.full_like(x, secant), power)
        g = torch.where(a <= t, g, torch.zeros_like(x))
        return grad * g, None, None, None


def reste_sign(x: torch.Tensor, o: float = 3.0, t: float = 1.5, interval: float = 0.1) -> torch.Tensor:
    """sign(x) (sign(0) = +1) with the ReSTE power-function gradient (see module docstring)."""
    return _ReSTE.apply(x, float(o), float(t), float(interval))


def _check_estimator(estimator: str, bits: int) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    if estimator == "reste" and bits != 1:
        raise ValueError("the ReSTE estimator applies to 1-bit quantizers only")
    return estimator


class _ReSTEWeightMixin:
    """In training with estimator 'reste', binary weights come from reste_sign (same values)."""

    def _reste_weight(self):
        if self.estimator == "reste" and self.training:
            return reste_sign(self.weight, *self.reste_params)
        return None


class QuantLinearLayer(_ReSTEWeightMixin, QuantLinear):
    """Linear layer with `weight_bits`-bit weights of constant scale, no bias."""

    def __init__(self, in_features: int, out_features: int, weight_bits: int = 1,
                 estimator: str = "ste", reste_params=(3.0, 1.5, 0.1)):
        super().__init__(in_features, out_features, bias=False, weight_quant=WeightQuant,
                         weight_bit_width=weight_bits)
        self.weight_bits = weight_bits
        self.estimator = _check_estimator(estimator, weight_bits)
        self.reste_params = tuple(reste_params)
        nn.init.uniform_(self.weight.data, -1.0, 1.0)

    def forward(self, x):
        w = self._reste_weight()
        return super().forward(x) if w is None else F.linear(x, w)


class BinaryLinear(QuantLinearLayer):
    """Linear layer with bipolar (+1/-1) weights, scale 1.0, no bias."""

    def __init__(self, in_features: int, out_features: int, estimator: str = "ste"):
        super().__init__(in_features, out_features, weight_bits=1, estimator=estimator)


class QuantConv2dLayer(_ReSTEWeightMixin, QuantConv2d):
    """2-D convolution with `weight_bits`-bit weights of constant scale, no bias.

    No implicit zero padding (``padding=0``): pad explicitly (e.g. ``F.pad(x, ..., value=-1)``
    on bipolar inputs) so the padded value stays on the input's grid."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 weight_bits: int = 1, estimator: str = "ste", reste_params=(3.0, 1.5, 0.1)):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=False,
                         weight_quant=WeightQuant, weight_bit_width=weight_bits)
        self.weight_bits = weight_bits
        self.estimator = _check_estimator(estimator, weight_bits)
        self.reste_params = tuple(reste_params)
        nn.init.uniform_(self.weight.data, -1.0, 1.0)

    def forward(self, x):
        w = self._reste_weight()
        if w is None:
            return super().forward(x)
        return F.conv2d(x, w, None, self.stride, 0, self.dilation, self.groups)


class BinaryConv2d(QuantConv2dLayer):
    """2-D convolution with bipolar weights, scale 1.0, no bias, no padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 estimator: str = "ste"):
        super().__init__(in_channels, out_channels, kernel_size, stride, weight_bits=1, estimator=estimator)


class QuantAct(QuantIdentity):
    """Activation quantizer with `bits` bits (1 bit: sign with scale 1.0; grid in the module doc)."""

    def __init__(self, bits: int = 1, estimator: str = "ste", reste_params=(3.0, 1.5, 0.1)):
        super().__init__(act_quant=ActQuant, bit_width=bits, return_quant_tensor=False)
        self.bits = bits
        self.estimator = _check_estimator(estimator, bits)
        self.reste_params = tuple(reste_params)

    def forward(self, x):
        if self.estimator == "reste" and self.training:
            return reste_sign(x, *self.reste_params)
        return super().forward(x)


class InputQuant(QuantIdentity):
    """Signed Q1.(bits-1) input quantizer over [-1, 1 - 2^-(bits-1)] (BNN-PYNQ CNV's input):
    scale 2^-(bits-1), full (not narrow) range, round half to even."""

    def __init__(self, bits: int = 8):
        super().__init__(act_quant=ActQuant, bit_width=bits, min_val=-1.0, max_val=1.0 - 2.0 ** -(bits - 1),
                         narrow_range=False, restrict_scaling_type=RestrictValueType.POWER_OF_TWO,
                         return_quant_tensor=False)
        self.bits = bits


class SignAct(QuantAct):
    """Binary sign activation: +1 where x >= 0, else -1 (gradient: see `estimator`)."""

    def __init__(self, estimator: str = "ste"):
        super().__init__(bits=1, estimator=estimator)


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
    """Clamp the latent float weights of every Brevitas-quantized linear/conv layer to [lo, hi]."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (QuantLinear, QuantConv2d)):
                m.weight.clamp_(lo, hi)
