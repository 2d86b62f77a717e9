"""QFX-style fixed-point quantization: ap_fixed arithmetic in PyTorch, a trainable binary
point, K-hot (shift-add) weights and fixed-point layers that export to QONNX.

``quantize_fixed(x, width, int_bits, rounding, overflow, signed)`` returns exactly what
``ap_fixed<width, int_bits, AP_<rounding>, AP_<overflow>>`` (``ap_ufixed`` when unsigned)
stores when assigned the value x (checked against the ap_types headers in
tests/test_qfx_apfixed.py). The grid is ``m * 2^-(width - int_bits)`` with m a `width`-bit
integer; rounding acts first, then overflow:

========== ===================================  ========  =====================================
rounding   ties / direction                      overflow  out-of-range result
========== ===================================  ========  =====================================
TRN        toward -inf (floor)                   SAT       the nearest end of the range
TRN_ZERO   toward zero                           SAT_ZERO  0
RND        ties toward +inf                      SAT_SYM   +-max (signed range made symmetric)
RND_ZERO   ties toward zero                      WRAP      the low `width` bits (two's complement)
RND_INF    ties away from zero
RND_MIN_INF ties toward -inf
RND_CONV   ties to even
========== ===================================  ========  =====================================

Gradients (straight-through): d out / d x = 1 where the rounded value needed no overflow
handling, else 0. When `int_bits` is a tensor that requires grad (the learned binary point),
d out / d scale is ``round(x/s) - x/s`` in range and the clamped/replaced integer out of
range (the LSQ form), with scale ``s = 2^(int_bits - width)``; `FixedPointQuant` learns a
real-valued int_bits rounded with a straight-through round.

Export: inside ``torch.onnx.export`` the quantizers emit a QONNX ``Quant`` node
(scale ``2^(int_bits - width)``, zero point 0, bit width `width`, signed, narrow = SAT_SYM
on a signed grid, rounding_mode from QONNX_ROUNDING). Modes a Quant node cannot express
(WRAP, SAT_ZERO, RND, RND_MIN_INF) raise UserError at export.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from flow.core.errors import UserError
from flow.core.naf import naf_weight

__all__ = ["ROUNDING", "OVERFLOW", "QONNX_ROUNDING", "quantize_fixed", "fixed_range", "round_ste",
           "FixedPointQuant", "KHotQuant", "FixedAct", "FixedLinear", "FixedConv2d",
           "FixedBatchNorm", "FixedAdd", "khot_levels", "naf_weight", "exporting", "check_exportable"]

ROUNDING = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOW = ("SAT", "SAT_ZERO", "SAT_SYM", "WRAP")
QONNX_ROUNDING = {"TRN": "FLOOR", "TRN_ZERO": "DOWN", "RND_ZERO": "HALF_DOWN", "RND_INF": "HALF_UP",
                  "RND_CONV": "ROUND"}
QONNX_OVERFLOW = ("SAT", "SAT_SYM")


def _check_modes(rounding: str, overflow: str) -> None:
    if rounding not in ROUNDING:
        raise ValueError(f"unknown rounding {rounding!r}; use one of {', '.join(ROUNDING)}")
    if overflow not in OVERFLOW:
        raise ValueError(f"unknown overflow {overflow!r}; use one of {', '.join(OVERFLOW)}")


def fixed_range(width: int, signed: bool = True) -> tuple[int, int]:
    """(lo, hi) of the `width`-bit integer m (the stored value is m * 2^-(width - int_bits))."""
    if signed:
        return -(2 ** (width - 1)), 2 ** (width - 1) - 1
    return 0, 2 ** width - 1


def _round(v: torch.Tensor, rounding: str) -> torch.Tensor:
    """Integer rounding of v, exact for every finite v."""
    if rounding == "RND_CONV":
        return torch.round(v)  # ties to even
    if rounding == "TRN":
        return torch.floor(v)
    if rounding == "TRN_ZERO":
        return torch.trunc(v)
    fl = torch.floor(v)
    fr = v - fl  # exact in IEEE arithmetic, in [0, 1)
    half = fr == 0.5
    if rounding == "TRN":
        up = torch.zeros_like(half)
    elif rounding == "TRN_ZERO":
        up = (v < 0) & (fr > 0)
    elif rounding == "RND":
        up = fr >= 0.5
    elif rounding == "RND_MIN_INF":
        up = fr > 0.5
    elif rounding == "RND_INF":
        up = (fr > 0.5) | (half & (v > 0))
    elif rounding == "RND_ZERO":
        up = (fr > 0.5) | (half & (v < 0))
    else:  # RND_CONV
        up = (fr > 0.5) | (half & (torch.fmod(fl, 2.0) != 0))
    return fl + up.to(v.dtype)


def _overflow(r: torch.Tensor, width: int, signed: bool, overflow: str) -> torch.Tensor:
    lo, hi = fixed_range(width, signed)
    if overflow == "SAT":
        return r.clamp(lo, hi)
    if overflow == "SAT_SYM":
        return r.clamp(-hi if signed else lo, hi)
    if overflow == "SAT_ZERO":
        return torch.where((r < lo) | (r > hi), torch.zeros_like(r), r)
    mod = float(2 ** width)
    w = torch.fmod(r, mod)  # exact
    w = torch.where(w < 0, w + mod, w)
    if signed:
        w = torch.where(w > hi, w - mod, w)
    return w


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 inputs are quantized in float32 (every step is exact: power-of-two scaling,
    floor, fmod, integers below 2^24), anything else in float64."""
    return torch.float32 if x.dtype == torch.float32 else torch.float64


def quantize_fixed(x: torch.Tensor, width: int, int_bits, rounding: str = "RND_CONV",
                   overflow: str = "SAT", signed: bool = True) -> torch.Tensor:
    """What ap_fixed<width, int_bits, AP_<rounding>, AP_<overflow>> stores for x (see module doc).

    int_bits: an int, or an integer-valued tensor broadcastable to x (per-channel binary
    points). Computed exactly in float64 and returned in x's dtype (exact while the grid
    fits the dtype's mantissa: width <= 24 for float32, 53 for float64)."""
    _check_modes(rounding, overflow)
    width = int(width)
    if width < 1:
        raise ValueError("width must be at least 1")
    x = torch.as_tensor(x)
    ib = int_bits if torch.is_tensor(int_bits) else torch.tensor(float(int_bits))
    dt = _work_dtype(x)
    with torch.no_grad():
        step = torch.exp2(ib.detach().to(dt) - width)
        v = x.detach().to(dt) / step
        r = _round(v, rounding)
        m = _overflow(r, width, signed, overflow)
        q = (m * step).to(x.dtype)
    grad_x = x.requires_grad
    grad_s = torch.is_tensor(int_bits) and int_bits.requires_grad
    if not (grad_x or grad_s):
        return q
    s = torch.exp2(ib.to(x.dtype) - width)
    keep = m == r
    c = (r - v).to(x.dtype)
    surrogate = torch.where(keep, x + c * s, m.to(x.dtype) * s)
    return q + (surrogate - surrogate.detach())


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) (ties to even) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def _broadcast_shape(ndim: int, channels: int, dim: int) -> list[int]:
    shape = [1] * ndim
    shape[dim] = channels
    return shape


def _quant_node(x, scale, width, signed, narrow, rounding_mode):
    return torch.onnx.ops.symbolic(
        "qonnx.custom_op.general::Quant",
        (x, scale.to(x.dtype), torch.zeros((), dtype=x.dtype), torch.tensor(float(width), dtype=x.dtype)),
        {"rounding_mode": rounding_mode, "signed": int(signed), "narrow": int(narrow)},
        dtype=x.dtype, shape=x.shape, version=2)


class FixedPointQuant(nn.Module):
    """ap_fixed quantizer with a fixed word length and a learned binary point.

    int_bits (the ap_fixed I) is a real-valued parameter rounded with round_ste; one per
    tensor, or one per channel along `channel_dim` when `channels` is given. With
    ``int_bits=None`` it is set on the first training batch from the largest magnitude
    (smallest I that holds it without overflow). ``learn=False`` freezes it."""

    def __init__(self, width: int = 8, int_bits: float | None = None, signed: bool = True,
                 rounding: str = "RND_CONV", overflow: str = "SAT", channels: int | None = None,
                 channel_dim: int = 1, learn: bool = True):
        super().__init__()
        _check_modes(rounding, overflow)
        self.width, self.signed, self.rounding, self.overflow = int(width), bool(signed), rounding, overflow
        self.channels, self.channel_dim = channels, channel_dim
        n = 1 if channels is None else int(channels)
        init = 0.0 if int_bits is None else float(int_bits)
        self.int_bits = nn.Parameter(torch.full((n,), init), requires_grad=learn)
        self.register_buffer("initialized", torch.tensor(int_bits is not None))

    def extra_repr(self) -> str:
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        per = "per-tensor" if self.channels is None else f"per-channel({self.channels}, dim={self.channel_dim})"
        return f"{kind}<{self.width}, I>, AP_{self.rounding}, AP_{self.overflow}, {per}"

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Set int_bits so that max |x| (per channel) just fits without overflow."""
        if self.channels is None:
            mx = x.detach().abs().max().reshape(1)
        else:
            mx = x.detach().transpose(0, self.channel_dim).reshape(self.channels, -1).abs().amax(1)
        mx = mx.clamp_min(2.0 ** -16)
        ib = torch.floor(torch.log2(mx)) + (2.0 if self.signed else 1.0)
        self.int_bits.copy_(ib)
        self.initialized.fill_(True)

    def binary_point(self) -> torch.Tensor:
        """The integer int_bits in use (float tensor, one per channel or one)."""
        return torch.round(self.int_bits.detach())

    def _int_bits_for(self, x: torch.Tensor) -> torch.Tensor:
        ib = round_ste(self.int_bits)
        if self.channels is None:
            return ib.reshape(())
        return ib.reshape(_broadcast_shape(x.dim(), self.channels, self.channel_dim))

    def scale_for(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp2(self._int_bits_for(x).detach() - self.width)

    def check_exportable(self, name: str = "") -> None:
        where = f"quantizer '{name}'" if name else "a fixed-point quantizer"
        if self.overflow not in QONNX_OVERFLOW:
            raise UserError(f"{where} uses overflow mode {self.overflow}, which a QONNX Quant node cannot "
                            f"express (it saturates); use SAT or SAT_SYM to export.")
        if self.rounding not in QONNX_ROUNDING:
            raise UserError(f"{where} uses rounding mode {self.rounding}, which a QONNX Quant node cannot "
                            f"express; use one of {', '.join(QONNX_ROUNDING)} to export.")

    def _quantize(self, x: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
        return quantize_fixed(x, self.width, ib, self.rounding, self.overflow, self.signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return self._export(x)
        if self.training and not bool(self.initialized):
            self.calibrate(x)
        return self._quantize(x, self._int_bits_for(x))

    # Weights and other constants are exported already quantized (their Quant node's rounding
    # mode is then irrelevant and set to ROUND); the owner freezes them before export.
    exports_constant = False
    _frozen: dict | None = None

    @torch.no_grad()
    def freeze(self, value: torch.Tensor | None = None) -> None:
        """Fix the export constants: the step per channel and, for constants, the quantized value."""
        step = torch.exp2(self.binary_point() - self.width).clone()
        frozen = {"step": step}
        if value is not None:
            frozen["value"] = self._quantize(value.detach(), self._int_bits_for(value).detach()).clone()
        self._frozen = frozen

    def unfreeze(self) -> None:
        self._frozen = None

    def _export(self, x: torch.Tensor) -> torch.Tensor:
        self.check_exportable()
        if self._frozen is None or (self.exports_constant and "value" not in self._frozen):
            raise RuntimeError("fixed-point layers must be prepared with flow.train.nn.qfx.exporting(model) "
                               "before torch.onnx export")
        step = self._frozen["step"]
        if self.channels is not None:
            step = step.reshape(_broadcast_shape(x.dim(), self.channels, self.channel_dim))
        else:
            step = step.reshape(())
        narrow = self.overflow == "SAT_SYM" and self.signed
        if self.exports_constant:
            return _quant_node(self._frozen["value"].reshape(x.shape), step, self.width, self.signed, narrow, "ROUND")
        return _quant_node(x, step, self.width, self.signed, narrow, QONNX_ROUNDING[self.rounding])


@lru_cache(maxsize=64)
def _khot_table(width: int, k: int, signed: bool, lo: int, hi: int) -> torch.Tensor:
    ints = np.arange(lo, hi + 1, dtype=np.int64)
    return torch.from_numpy(ints[naf_weight(ints) <= k].astype(np.float64))


def khot_levels(width: int, k: int, signed: bool = True, symmetric: bool = False) -> torch.Tensor:
    """Sorted integers of the `width`-bit range whose canonical signed-digit form has <= k terms."""
    lo, hi = fixed_range(width, signed)
    if symmetric and signed:
        lo = -hi
    return _khot_table(int(width), int(k), bool(signed), lo, hi)


class KHotQuant(FixedPointQuant):
    """Fixed-point weights restricted to at most K power-of-two terms (shift-adds).

    The integer m is the value of the `width`-bit grid nearest to x/s (ties toward zero)
    whose canonical signed-digit form (flow.ops.semantics.khot_terms) has <= k nonzero
    digits; out-of-range x saturates. The binary point is learned as in FixedPointQuant."""

    exports_constant = True

    def __init__(self, width: int = 8, k: int = 2, int_bits: float | None = None, signed: bool = True,
                 channels: int | None = None, channel_dim: int = 0, learn: bool = True, symmetric: bool = True):
        super().__init__(width, int_bits, signed, "RND_CONV", "SAT_SYM" if symmetric else "SAT", channels,
                         channel_dim, learn)
        self.k = int(k)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", K={self.k}"

    def _quantize(self, x: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
        dt = _work_dtype(x)
        levels = khot_levels(self.width, self.k, self.signed, self.overflow == "SAT_SYM").to(dt)
        with torch.no_grad():
            step = torch.exp2(ib.detach().to(dt) - self.width)
            v = x.detach().to(dt) / step
            vc = v.clamp(float(levels[0]), float(levels[-1]))
            idx = torch.searchsorted(levels, vc).clamp(1, len(levels) - 1)
            below, above = levels[idx - 1], levels[idx]
            d_below, d_above = vc - below, above - vc
            pick_above = (d_above < d_below) | ((d_above == d_below) & (above.abs() < below.abs()))
            m = torch.where(vc <= levels[0], levels[0], torch.where(pick_above, above, below))
            q = (m * step).to(x.dtype)
        if not (x.requires_grad or ib.requires_grad):
            return q
        s = torch.exp2(ib.to(x.dtype) - self.width)
        inside = (v >= float(levels[0])) & (v <= float(levels[-1]))
        surrogate = torch.where(inside, x + (m - v).to(x.dtype) * s, m.to(x.dtype) * s)
        return q + (surrogate - surrogate.detach())

    def integer_weights(self, w: torch.Tensor) -> torch.Tensor:
        """The integers m (int64) of the quantized weights (w / scale)."""
        with torch.no_grad():
            q = self._quantize(w, self._int_bits_for(w).detach())
            return torch.round(q.double() / self.scale_for(w).double()).long()


class FixedAct(FixedPointQuant):
    """A fixed-point activation quantizer (FixedPointQuant over channel dim 1)."""


class _WeightFixedQuant(FixedPointQuant):
    exports_constant = True


def _weight_quant(weight, width, k, per_channel, rounding, overflow, learn):
    channels = weight.shape[0] if per_channel else None
    if k is not None:
        q = KHotQuant(width, k, None, True, channels, 0, learn)
    else:
        q = _WeightFixedQuant(width, None, True, rounding, overflow, channels, 0, learn)
    q.calibrate(weight)
    return q


class FixedLinear(nn.Linear):
    """Linear layer (no bias) with fixed-point weights of `width` bits and a learned binary
    point per output channel (or per tensor); with `k`, K-hot weights (<= k shift-adds)."""

    def __init__(self, in_features: int, out_features: int, width: int = 8, k: int | None = None,
                 per_channel: bool = True, rounding: str = "RND_CONV", overflow: str = "SAT",
                 learn_binary_point: bool = True):
        super().__init__(in_features, out_features, bias=False)
        self.weight_quant = _weight_quant(self.weight, width, k, per_channel, rounding, overflow,
                                          learn_binary_point)

    def quant_weight(self) -> torch.Tensor:
        return self.weight_quant(self.weight)

    def freeze(self) -> None:
        self.weight_quant.freeze(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quant_weight())


class FixedConv2d(nn.Conv2d):
    """2-D convolution (no bias, no implicit padding) with fixed-point or K-hot weights."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 width: int = 8, k: int | None = None, per_channel: bool = True,
                 rounding: str = "RND_CONV", overflow: str = "SAT", learn_binary_point: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=False)
        self.weight_quant = _weight_quant(self.weight, width, k, per_channel, rounding, overflow,
                                          learn_binary_point)

    def quant_weight(self) -> torch.Tensor:
        return self.weight_quant(self.weight)

    def freeze(self) -> None:
        self.weight_quant.freeze(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.quant_weight(), None, self.stride, 0, self.dilation, self.groups)


class FixedBatchNorm(nn.Module):
    """BatchNorm as a fixed-point per-channel affine map y = x * a + b over channel dim 1.

    a = gamma / sqrt(var + eps) and b = beta - mean * a are each quantized per channel
    (`width` bits, learned binary points); training uses batch statistics (and updates the
    running ones), evaluation the running statistics. Follow it with a FixedAct to quantize
    the result. Exports as Mul(x, Quant(a)) -> Add(., Quant(b))."""

    def __init__(self, num_features: int, width: int = 8, eps: float = 1e-4, momentum: float = 0.1,
                 rounding: str = "RND_CONV", learn_binary_point: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.mul_quant = _WeightFixedQuant(width, None, True, rounding, "SAT", num_features, 1, learn_binary_point)
        self.add_quant = _WeightFixedQuant(width, None, True, rounding, "SAT", num_features, 1, learn_binary_point)
        with torch.no_grad():  # a usable binary point before training; re-set on the first batch
            a, b = self.affine()
            self.mul_quant.calibrate(a.reshape(1, -1))
            self.add_quant.calibrate(b.reshape(1, -1))
        self.mul_quant.initialized.fill_(False)
        self.add_quant.initialized.fill_(False)

    def affine(self, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The float (a, b); from the batch x in training mode, else from running statistics."""
        if self.training and x is not None:
            dims = [d for d in range(x.dim()) if d != 1]
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                n = x.numel() / x.shape[1]
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        a = self.weight / torch.sqrt(var + self.eps)
        return a, self.bias - mean * a

    @torch.no_grad()
    def freeze(self) -> None:
        a, b = self.affine()
        self.mul_quant.freeze(a.reshape(1, -1))
        self.add_quant.freeze(b.reshape(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.affine(x)
        shape = _broadcast_shape(x.dim(), self.num_features, 1)
        return x * self.mul_quant(a.reshape(shape)) + self.add_quant(b.reshape(shape))


class FixedAdd(nn.Module):
    """Element-wise (residual) add followed by a fixed-point quantizer: quant(a + b)."""

    def __init__(self, width: int = 8, int_bits: float | None = None, signed: bool = True,
                 rounding: str = "RND_CONV", overflow: str = "SAT", channels: int | None = None):
        super().__init__()
        self.quant = FixedAct(width, int_bits, signed, rounding, overflow, channels)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.quant(a + b)


def fixed_quantizers(model: nn.Module):
    """(name, FixedPointQuant) for every fixed-point quantizer in `model`."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, FixedPointQuant)]


def check_exportable(model: nn.Module) -> None:
    """Raise UserError naming the first quantizer whose modes QONNX cannot express."""
    for name, q in fixed_quantizers(model):
        q.check_exportable(name)




class exporting:
    """Context for ONNX export: every fixed-point quantizer fixes its scales and, for weights
    and BatchNorm constants, its quantized values (from the model in eval mode)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        check_exportable(self.model)
        for m in self.model.modules():
            if isinstance(m, FixedPointQuant):
                m.freeze()
        for m in self.model.modules():
            if isinstance(m, (FixedLinear, FixedConv2d, FixedBatchNorm)):
                m.freeze()
        return self.model

    def __exit__(self, *exc):
        for m in self.model.modules():
            if isinstance(m, FixedPointQuant):
                m.unfreeze()
        return False
