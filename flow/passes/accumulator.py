"""One layer's integer form: what its MVU accumulates and how the float value follows from it.

Shared by the lowering of hidden layers (flow/passes/lower_layer.py) and of output layers
(flow/passes/lower_output.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow.core.quant import Codes
from flow.ops.int_mvu import signed_bits
from flow.ops.semantics import khot_terms

KHOT_MAX_TERMS = 2        # weights with at most this many power-of-two terms use shift-add

# the decision of a single-output model: code 1 where the float output is >= 0 (as a bipolar quantizer)
DECISION = Codes(2, 2, -1, 1.0, bipolar=True)


@dataclass(frozen=True)
class Placement:
    """Where a layer's MVU reads and what it produces: the input stream, the output
    vectors per frame, the logical output shape, and a convolution output's per-position
    shape in the ONNX graph ((1, 1) for a 2-D convolution, (1,) for a 1-D one, () for a dense layer)."""

    src: str
    vectors: int
    out_shape: tuple
    spatial: tuple = ()  # the output's spatial shape of a convolution, () for a dense layer
    start: str = ""      # the tensor the layer's float segment starts from (after its bias)


@dataclass(frozen=True)
class Accumulator:
    """A layer as integer hardware: weights, input codes, the value of one accumulator step
    per row (m), and the accumulator range [lo, hi] over every input the codes allow."""

    node: object
    wi: np.ndarray                 # integer weights (MH, MW) in stream order
    w_bits: np.ndarray | None      # 0/1 weights of a binary (XNOR-popcount) layer, else None
    mode: str                      # "bipolar" or "int"
    bits: int
    codes: Codes                   # the input's codes
    m: np.ndarray                  # float32 (MH,): value of one accumulator step
    place: Placement
    lo: int
    hi: int
    bias: np.ndarray | None = None  # float32 (MH,): the layer's bias, added to its float output

    @property
    def binary(self) -> bool:
        return self.w_bits is not None

    @property
    def mh(self) -> int:
        return int(self.wi.shape[0])

    @property
    def mw(self) -> int:
        return int(self.wi.shape[1])

    def offsets(self) -> np.ndarray:
        """Per row, the accumulator's constant part o * rowsum(W) of a multi-bit layer."""
        return (self.codes.o * self.wi.sum(axis=1)).astype(np.int64)

    def value(self, a: np.ndarray) -> np.ndarray:
        """Float32 layer output for accumulators a (K, MH), one column per row."""
        if self.binary:
            x = self.m[None, :] * (2 * a - self.mw).astype(np.float32)
        else:
            x = self.m[None, :] * (self.codes.a * a + self.offsets()[None, :]).astype(np.float32)
        return x + self.bias[None, :] if self.bias is not None else x


def accumulator(node, codes: Codes, wi: np.ndarray, rs: np.ndarray, mode: str, bits: int,
                place: Placement, bias: np.ndarray | None = None) -> Accumulator:
    """The accumulator of a layer with integer weights wi, row scales rs, reading `codes`."""
    m = (np.float64(codes.scale) * rs).astype(np.float32)  # per-row value of one accumulator step
    if codes.bipolar and mode == "bipolar":
        return Accumulator(node, wi, (wi > 0).astype(np.uint8), mode, bits, codes, m, place, 0, wi.shape[1], bias)
    umax = codes.levels - 1
    lo = int(np.minimum(wi, 0).sum(axis=1).min()) * umax
    hi = int(np.maximum(wi, 0).sum(axis=1).max()) * umax
    return Accumulator(node, wi, None, mode, bits, codes, m, place, lo, hi, bias)


def weight_mode(wi: np.ndarray, mode: str) -> tuple[int, int, int]:
    """(WeightMode, K, ShiftBits) for integer weights."""
    if mode == "bipolar":
        return 0, 1, 1
    for k in range(1, KHOT_MAX_TERMS + 1):
        try:
            terms = khot_terms(wi, k)
        except ValueError:
            continue
        return 1, k, max(1, int(terms[..., 1].max()).bit_length())
    return 2, 1, 1


def stored_weight_bits(wi: np.ndarray, bits: int) -> int:
    """The quantizer's bit width (at least 2), wider where a negated row (a decreasing
    activation or output) holds -min, which the quantizer's range does not."""
    return max(bits, 2, signed_bits(int(wi.min(initial=0)), int(wi.max(initial=0))))
