"""Quantizers as the hardware sees them, and exact threshold derivation.

A quantized activation travels as unsigned integer codes u in [0, L-1] whose value is
scale * (a*u + o): a BipolarQuant is (a, o) = (2, -1) with L = 2; an n-bit QONNX Quant
is (1, min_int) with L = max_int - min_int + 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import onnx

from flow.core.errors import UserError


@dataclass(frozen=True)
class Codes:
    """How a quantizer's output is carried: value = scale * (a*u + o), u in [0, levels-1].
    `scale` is one float, or a tuple of one per channel (a per-channel activation scale)."""

    levels: int
    a: int
    o: int
    scale: float | tuple
    rounding: str = "ROUND"
    bipolar: bool = False

    @property
    def bits(self) -> int:
        return max(1, int(self.levels - 1).bit_length())

    @property
    def per_channel(self) -> bool:
        return isinstance(self.scale, tuple)

    def scales(self, channels: int) -> np.ndarray:
        """The scale of each of `channels` channels (float64)."""
        s = np.asarray(self.scale, dtype=np.float64).ravel()
        return np.full(channels, s[0]) if s.size == 1 else s

    @property
    def thresholds(self) -> int:
        return self.levels - 1

    def zero_code(self) -> int | None:
        """The code whose value is 0 (for zero padding), or None."""
        if (-self.o) % self.a:
            return None
        u = -self.o // self.a
        return u if 0 <= u < self.levels else None

    def encode(self, y: np.ndarray, where: str | None = None) -> np.ndarray:
        """Float32 quantizer input -> codes, exactly as the QONNX op computes them. With
        `where`, an input that is not finite or more than MAX_INPUT_STEPS steps of the scale from
        zero (float parameters before the quantizer that overflow) is refused."""
        y = np.asarray(y, dtype=np.float32)
        if self.bipolar:
            if where is not None:
                check_finite_input(y, where)
            return (y >= 0).astype(np.int64)
        # deferred: qonnx (and the onnxruntime it loads) only where quantizers are encoded
        from qonnx.custom_op.general.quant import resolve_rounding_mode

        rnd = resolve_rounding_mode(self.rounding)
        with np.errstate(over="ignore", invalid="ignore"):
            steps = y / np.asarray(self.scale, dtype=np.float32)  # per channel: along the last axis
        if where is not None:
            check_finite_input(steps, where, MAX_INPUT_STEPS)
        q = rnd(steps)
        q = np.clip(q, self.o, self.o + self.levels - 1)
        return (q - self.o).astype(np.int64)


MAX_STEPS = float(1 << 31)        # a weight's distance from zero in steps of its scale (integer weights)
# a quantizer input's: beyond its range it saturates, so only broken parameters reach this far
# (a BatchNorm of a dead channel, running_var near eps, reaches 1e12 on extreme accumulators)
MAX_INPUT_STEPS = float(1 << 64)


def check_finite_input(v: np.ndarray, where: str, limit: float = np.inf) -> None:
    """Refuse a quantizer input that is NaN, infinite or beyond `limit` in magnitude."""
    bad = ~(np.abs(v) <= limit)
    if np.any(bad):
        what = "NaN or infinite" if limit == np.inf else f"NaN, infinite or beyond {limit:.0f} steps of its scale"
        raise UserError(f"{where}: the float ops before the quantizer give {float(v[bad].flat[0]):g} ({what}) "
                        "on reachable values; their parameters overflow, so the activation cannot be thresholded")


def _attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def activation_codes(mw, node) -> Codes:
    """Codes of an activation quantizer node (BipolarQuant, or Quant with zero point 0)."""
    if node.op_type == "BipolarQuant":
        s = mw.get_initializer(node.input[1])
        return Codes(2, 2, -1, _scalar(s, node), bipolar=True)
    if node.op_type != "Quant":
        raise UserError(f"node {node.name!r} ({node.op_type}) is not an activation quantizer")
    s, z, bw = (mw.get_initializer(i) for i in node.input[1:4])
    if s is None or z is None or bw is None:
        raise UserError(f"quantizer {node.name!r} has computed scale, zero point or bit width; constants are required")
    if np.any(np.asarray(z) != 0):
        raise UserError(f"quantizer {node.name!r} has a nonzero zero point; only zero points of 0 are supported")
    bits = bit_width(bw, f"quantizer {node.name!r}", 16)
    at = _attrs(node)
    signed, narrow = int(at.get("signed", 1)), int(at.get("narrow", 0))
    if signed and bits == 1:  # QONNX executes a signed 1-bit Quant as bipolar: y >= 0 -> +1, else -1
        return Codes(2, 2, -1, _scalar(s, node), bipolar=True)
    if signed:
        lo, hi = -(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1 - narrow
    return Codes(hi - lo + 1, 1, lo, _scale(s, node), rounding=str(at.get("rounding_mode", "ROUND")))


def bit_width(bw, where: str, most: int) -> int:
    """The one integer bit width 1..most a Quant node's bit-width input holds (else a UserError)."""
    v = np.asarray(bw, dtype=np.float64).ravel()
    if v.size != 1:
        raise UserError(f"{where} has {v.size} bit widths; one is required")
    b = float(v[0])
    if not (np.isfinite(b) and b == int(b) and 1 <= b <= most):
        raise UserError(f"{where} has bit width {b:g}; integer widths 1..{most} are supported")
    return int(b)


def _scale(s, node) -> float | tuple:
    """One positive scale, or a tuple of one per channel (shape (1, C, 1, 1) or (1, C))."""
    v = np.asarray(s, dtype=np.float64) if s is not None else None
    if v is not None and v.size > 1 and v.ndim >= 2 and v.size == v.shape[1] and np.all(v > 0):
        return tuple(float(x) for x in v.ravel())
    return _scalar(s, node)


def _scalar(s, node) -> float:
    if s is None or np.asarray(s).size != 1 or not float(np.asarray(s).ravel()[0]) > 0:
        raise UserError(f"activation quantizer {node.name!r} must have one positive scale; per-channel activation "
                        "scales are supported on multi-bit Quant nodes (positive, of shape (1, C, 1, 1) or (1, C))")
    return float(np.asarray(s).ravel()[0])


def weight_integers(w: np.ndarray, info: dict | None, where: str) -> tuple[np.ndarray, np.ndarray, str, int]:
    """Float weights (MH, MW) -> (integer weights, per-row scale (MH,), mode, bits).

    mode is "bipolar" (values +-1) or "int"; `info` is what fold_weight_quantizers
    recorded for the tensor (scale, bit width), None for plain float weights."""
    if info is None:
        raise UserError(f"{where} has float weights; only quantized (BipolarQuant or Quant) weights are supported")
    scale = np.asarray(info["scale"], dtype=np.float64)
    mh = w.shape[0]
    if scale.size == 1:
        rs = np.full(mh, float(scale.ravel()[0]))
    elif scale.size == mh:
        rs = scale.ravel()
    else:
        raise UserError(f"{where}: weight scale of shape {scale.shape} is neither per-tensor nor per-output-channel")
    qi = on_weight_grid(w, rs)
    if qi is None:
        raise UserError(f"{where}: weights are not integer multiples of their quantizer scale")
    if info["bipolar"]:
        return qi, rs, "bipolar", 1
    return qi, rs, "int", int(info["bits"])


def on_weight_grid(w: np.ndarray, rs: np.ndarray) -> np.ndarray | None:
    """The integers k (MH, MW) with w == k * scale per row, or None where a weight is not on the grid.

    A quantizer computes its float32 output as k * scale rounded to float32, so w/scale is an
    integer only up to that rounding: a weight counts as k * scale when it lies within one
    float32 unit in the last place of the exact product (k = 0 only for w == 0). A weight
    half a step (or any visible fraction of a step) off the grid is refused."""
    w = np.asarray(w, dtype=np.float32)
    s = np.asarray(rs, dtype=np.float64)[:, None]
    k = np.rint(w.astype(np.float64) / s)
    exact = k * s
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    if not np.all(np.abs(w.astype(np.float64) - exact) <= ulp):
        return None
    return k.astype(np.int64)


def derive_thresholds(codes: np.ndarray, acc: np.ndarray, levels: int, where: str):
    """codes (K, C) of the next quantizer over ascending accumulator values `acc` (K,).

    Returns (flip (C,) bool, thresholds (C, levels-1) int64) such that, with acc' = acc
    (or the negated accumulator where flip), code == #{t : acc' >= thr[c, t]} for every
    acc in the range. Unreachable levels get thr = max(acc')+1 (never) or min(acc') (always).
    """
    k, c = codes.shape
    d = np.diff(codes, axis=0)
    inc = np.all(d >= 0, axis=0)
    dec = np.all(d <= 0, axis=0) & ~inc
    bad = ~(inc | dec)
    if np.any(bad):
        ch = int(np.nonzero(bad)[0][0])
        raise UserError(f"{where}, channel {ch}: the activation is not monotone in the accumulator, so it cannot be thresholded")
    thr = np.empty((c, levels - 1), dtype=np.int64)
    for flip, cols in ((False, np.nonzero(inc)[0]), (True, np.nonzero(dec)[0])):
        if cols.size == 0:
            continue
        cc = codes[::-1, cols] if flip else codes[:, cols]
        av = -acc[::-1] if flip else acc
        for j in range(1, levels):
            hit = cc >= j
            first = np.argmax(hit, axis=0)
            thr[cols, j - 1] = np.where(hit.any(axis=0), av[first], av[-1] + 1)
    return dec, thr


def common_step(steps) -> tuple[np.float32, list[int]] | None:
    """(m0, M) for positive float32 steps: the largest float32 m0 and positive integers M with
    steps[i] = M[i] * m0 exactly (the steps as exact rationals, m0 their greatest common
    divisor: a power of two times the gcd of the mantissas); None where that gcd is no float32."""
    exact = [Fraction(float(np.float32(v))) for v in steps]
    den = max(v.denominator for v in exact)
    g = Fraction(math.gcd(*(v.numerator * (den // v.denominator) for v in exact)), den)
    m0 = np.float32(float(g))
    if Fraction(float(m0)) != g:
        return None
    return m0, [int(v / g) for v in exact]


def pair_thresholds(z: np.ndarray, codes: np.ndarray, levels: int, where: str) -> np.ndarray:
    """Thresholds (C, levels-1) on an integer sum z (P,) >= 0 from the next quantizer's codes (P, C)
    at every reachable pair of inputs: level k's threshold is the smallest z whose code reaches k
    (max(z) + 1 where none does). The codes must be equal for equal z and non-decreasing in z,
    else the float model is not a function of the sum that thresholds can compute (refused)."""
    z = np.asarray(z, np.int64)
    codes = np.asarray(codes, np.int64).reshape(len(z), -1)
    order = np.argsort(z, kind="stable")
    z, codes = z[order], codes[order]
    same = np.diff(z) == 0
    if np.any(codes[1:][same] != codes[:-1][same]) or np.any(np.diff(codes, axis=0) < 0):
        raise UserError(f"{where}: the quantized sum is not a non-decreasing function of the integer sum of the "
                        "inputs' codes (the float rounding of the Add or the ops after it is not monotone there), "
                        "so it cannot be thresholded")
    first = np.concatenate([[True], ~same])
    zu, cu = z[first], codes[first]
    thr = np.empty((cu.shape[1], levels - 1), dtype=np.int64)
    for k in range(1, levels):
        hit = cu >= k
        thr[:, k - 1] = np.where(hit.any(axis=0), zu[np.argmax(hit, axis=0)], zu[-1] + 1)
    return thr
