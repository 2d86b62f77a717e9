"""Exact integer semantics of the hardware engines (numpy).

These functions are the single source of truth for what every engine computes: the
numpy executor, the cocotb scoreboards and the compiler's self-checks all call them.
Bipolar values are bits (+1 -> 1, -1 -> 0).
"""
from __future__ import annotations

import numpy as np

from flow.core.int8_gemm import Int8Conv, Int8Linear
from flow.core.naf import naf_terms
from flow.ops.bitpack import count_dtype, pack_bits, xnor_threshold, xor_popcount


def binary_mvu(x_bits: np.ndarray, w_bits: np.ndarray, thr: np.ndarray | None = None) -> np.ndarray:
    """XNOR-popcount matrix-vector product, optionally followed by multi-thresholding.

    x_bits (N, MW) in {0,1}; w_bits (MH, MW) in {0,1}; thr (MH, T) or None.
    Returns (N, MH): the popcount of matching bits (int64), or the threshold count."""
    return binary_mvu_kernel(w_bits, thr)(x_bits)


def binary_mvu_kernel(w_bits: np.ndarray, thr: np.ndarray | None = None):
    """`binary_mvu` as a function of x_bits alone, the weights and thresholds prepared once:
    in torch's int8 GEMM where it is at hand (`binary_int8`), else both sides packed into
    64-bit words, matches = MW - popcount(x ^ w) (`xnor_count`)."""
    w = np.asarray(w_bits)
    mw = w.shape[1]
    thr = None if thr is None else np.asarray(thr, dtype=np.int64)
    fast = binary_int8(w, thr, Int8Linear)
    packed = []  # the weights' words, packed when the popcount first runs

    def run(x_bits: np.ndarray) -> np.ndarray:
        y = None if fast is None else fast(x_bits)
        if y is not None:
            return y
        if not packed:
            packed.append(pack_bits(w))
        return xnor_count(pack_bits(np.asarray(x_bits)), packed[0], mw, thr)
    return run


def binary_int8(w: np.ndarray, thr: np.ndarray | None, make):
    """`binary_mvu` in a torch int8 kernel (`int8_kernel`), or None for widths it does not
    take: the bits (0/1) times the bipolar weights 2w - 1 give dot = the +1 weights a set bit
    meets less the -1 ones, and matches = dot + the number of -1 weights (the clear bits
    match them)."""
    mw = w.shape[-1]
    if not (0 < mw < 1 << 22 and len(w)):
        return None
    minus = mw - np.count_nonzero(w, axis=1).astype(np.int64)
    return int8_kernel((w.astype(np.int8) << 1) - np.int8(1), 0, mw, thr, minus, make)


def int8_kernel(w8: np.ndarray, zero_point: int, bound: int, thr, offset, make):
    """A function of uint8 inputs x giving acc + offset (int64), or its threshold counts under
    thr (MH, T), acc[n, h] = sum_k (x[n, k] - zero_point) * w8[h, k] with |acc| <= bound <
    2**22, in the torch int8 kernel make(w8, zero_point, bias, clip01) (`flow.core.int8_gemm`);
    the function gives None where torch is not at hand. One threshold is compared inside the
    kernel: acc + offset >= t  <=>  acc - (t - offset) + 1, clipped to [0, 1], is 1."""
    offset = np.zeros(len(w8), np.int64) if offset is None else offset
    if thr is not None and thr.shape[1] == 1:
        return make(w8, zero_point, 1 - np.clip(thr[:, 0] - offset, -bound, bound + 1), True)
    kernel = make(w8, zero_point, offset if thr is None else None, False)
    if thr is None:
        return lambda x: _then(kernel(x), lambda y: y.astype(np.int64))
    t, span = thr - offset[:, None], (-bound, bound) if thr.shape[1] <= 4 else None
    return lambda x: _then(kernel(x), lambda acc: multithreshold(acc.astype(np.int32).reshape(-1, len(t)), t,
                                                                 span).reshape(acc.shape))


def _then(y, f):
    return None if y is None else f(y)


def mvu_conv_kernel(binary: bool, w: np.ndarray, thr: np.ndarray | None, window):
    """`binary_mvu` (binary) or `int_mvu` of the sliding windows of NHWC images in torch's int8
    convolution, the windows never written out: a function of the images (N, H*W*C) that gives
    None where torch is not at hand or the images do not fit its kernels (the caller then takes
    the windows); None when the weights do not fit. window = (image (H, W, C), kernel, stride,
    pads, pad value, dilation) as `sliding_window` takes them; w (MH, KH*KW*C) in the windows'
    (ky, kx, c) order."""
    (h, wd, c), k, stride, pads, pad_value, dilation = window
    (kh, kw), (pt, pl, pb, pr) = pair(k), pads4(pads)
    image = (h + pt + pb, wd + pl + pr, c)
    if min(window_out_hw(*image[:2], k, stride, 0, dilation)) < 1:
        return None
    thr = None if thr is None else np.asarray(thr, dtype=np.int64)

    def make(w8, zero_point, bias, clip01):
        return Int8Conv(w8.reshape(len(w8), kh, kw, c), image, pair(stride), pair(dilation), zero_point, bias, clip01)
    fast = binary_int8(np.asarray(w), thr, make) if binary else int_int8(np.asarray(w, dtype=np.int64), thr, make)
    if not fast:
        return None

    def run(x: np.ndarray):
        x = np.asarray(x)
        if pt or pl or pb or pr:
            x = np.pad(x.reshape(len(x), h, wd, c), ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
        if binary:
            return fast(x.reshape(len(x), -1))
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        return int8_codes(fast, x.reshape(len(x), -1), lo, hi)
    return run


def xnor_count(xw: np.ndarray, ww: np.ndarray, mw: int, thr: np.ndarray | None) -> np.ndarray:
    """The matches (int64) or threshold counts of bits packed into words: xw (N, W), ww (MH, W)."""
    if thr is not None and 0 < thr.shape[1] <= 4 and len(xw) >= len(ww) and count_dtype(xw.shape[1]) == np.uint16:
        return xnor_threshold(xw, ww, mw, thr)  # few thresholds: compared while the counts are in cache
    miss = xor_popcount(xw, ww)
    if thr is None:
        return mw - miss.astype(np.int64)
    return multithreshold(np.subtract(mw, miss, dtype=np.int32 if mw < 1 << 31 else np.int64), thr)


def multithreshold(v: np.ndarray, thr: np.ndarray, span: tuple[int, int] | None = None) -> np.ndarray:
    """out[n, c] = number of thresholds thr[c, t] with v[n, c] >= thr[c, t].

    Integer v is compared in its own width against the thresholds clamped to [lo, hi + 1],
    span = (lo, hi) bounds of v when the caller knows them, else min v and max v (every value
    of v compares the same with them); with many thresholds a table of the counts of every
    value in that range, when it is smaller than v, else a binary search per channel."""
    v = np.asarray(v)
    thr = np.asarray(thr, dtype=np.int64)
    small = np.uint8 if thr.shape[1] < 256 else np.int32  # counts stay compact for big tensors
    if v.dtype.kind in "iu" and v.size:
        lo, hi = (int(v.min()), int(v.max())) if span is None else span
        dt = v.dtype  # widened only when it cannot hold lo and hi + 1
        if not np.iinfo(dt).min <= lo <= hi + 1 <= np.iinfo(dt).max:
            dt = np.result_type(v.dtype, np.min_scalar_type(lo), np.min_scalar_type(hi + 1))
        if dt.kind in "iu" and dt.itemsize <= 8:
            v, thr = v.astype(dt, copy=False), np.clip(thr, lo, hi + 1).astype(dt)
            if thr.shape[1] > 4 and (hi - lo + 1) * thr.shape[0] <= v.size:
                return _threshold_table(v, thr, lo, hi, small)
    if 0 < thr.shape[1] <= 4:
        out = np.greater_equal(v, thr[:, 0]).view(np.uint8).astype(small, copy=False)
        for t in range(1, thr.shape[1]):
            out += v >= thr[:, t]
        return out
    out = np.empty(v.shape, dtype=small)
    thr = np.sort(thr, axis=1)
    for c in range(thr.shape[0]):  # many thresholds: binary search per channel
        out[:, c] = np.searchsorted(thr[c], v[:, c], side="right")
    return out


def _threshold_table(v: np.ndarray, thr: np.ndarray, lo: int, hi: int, small) -> np.ndarray:
    """multithreshold through a (C, hi - lo + 1) table of every value's count (thresholds sorted
    per channel, as a threshold memory holds them)."""
    span = hi - lo + 1
    values = np.arange(lo, hi + 1, dtype=thr.dtype)
    table = np.stack([np.searchsorted(t, values, side="right") for t in np.sort(thr, axis=1)]).astype(small)
    idx = v.astype(np.intp) + (np.arange(thr.shape[0], dtype=np.intp) * span - lo)  # one pass over v
    return table.reshape(-1).take(idx)


def label_select(v: np.ndarray) -> np.ndarray:
    """Index of the largest value per row; ties go to the lowest index (as torch.argmax)."""
    return np.argmax(np.asarray(v), axis=1).astype(np.int64)


def matmul_bound(x: np.ndarray, w: np.ndarray) -> int:
    """A bound on |every partial sum| of x (N, K) @ w.T (H, K): max|x| * max_h sum_k |w[h, k]|."""
    xmax = int(x.max(initial=0)) if x.dtype.kind == "u" else int(np.abs(x).max(initial=0))
    return xmax * int(np.abs(w).sum(axis=1).max(initial=0))


def exact_matmul(x: np.ndarray, w: np.ndarray, bound: int | None = None) -> np.ndarray:
    """acc[n, h] = sum_k x[n, k] * w[h, k] exactly, for integer x (N, K) and w (H, K), in BLAS.

    With every partial sum below 2**24 (`matmul_bound`) float32 BLAS is exact (a float32
    result of integers), below 2**53 float64 BLAS (int64), else an int64 matmul."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=np.int64)
    bound = matmul_bound(x, w) if bound is None else bound
    if bound < 1 << 24:
        return x.astype(np.float32) @ w.T.astype(np.float32)
    if bound < 1 << 53:
        return (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    return x.astype(np.int64) @ w.T


def int_mvu(x: np.ndarray, w: np.ndarray, thr: np.ndarray | None = None) -> np.ndarray:
    """Integer matrix-vector product acc[n, h] = sum_k x[n, k] * w[h, k] (exact, int64),
    optionally followed by multi-thresholding. The engine realises it without multipliers
    when the weights allow: bipolar weights (+1/-1) by add/subtract, K-hot weights (each a
    sum of at most K signed powers of two) by shift-add."""
    return int_mvu_kernel(w, thr)(x)


def int_mvu_kernel(w: np.ndarray, thr: np.ndarray | None = None):
    """`int_mvu` as a function of x alone, the weights and thresholds prepared once: in
    torch's int8 GEMM where it is at hand and the inputs and weights fit (`int_int8`), else
    in BLAS (`exact_matmul`)."""
    w = np.asarray(w, dtype=np.int64)
    wabs = int(np.abs(w).sum(axis=1).max(initial=0))
    thr = None if thr is None else np.asarray(thr, dtype=np.int64)
    fast = int_int8(w, thr, Int8Linear)

    def run(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        y = int8_codes(fast, x, lo, hi)
        if y is not None:
            return y
        bound = max(-lo, hi) * wabs  # matmul_bound
        acc = exact_matmul(x, w, bound)
        return acc.astype(np.int64) if thr is None else threshold_acc(acc, thr, bound)
    return run


def int_int8(w: np.ndarray, thr: np.ndarray | None, make) -> dict:
    """{zero point: `int8_kernel`} of `int_mvu` for inputs 0..255 (zero point 0) and -128..127
    (moved up to 0..255, zero point 128); empty when the weights are not int8, without the
    zero points whose sums could leave float32's exact integers."""
    if not w.size or int(w.min()) < -128 or int(w.max()) > 127:
        return {}
    wabs = int(np.abs(w).sum(axis=1).max())
    return {zp: int8_kernel(w.astype(np.int8), zp, xmax * wabs, thr, None, make)
            for zp, xmax in ((0, 255), (128, 128)) if xmax * wabs < 1 << 22}


def int8_codes(fast: dict, x: np.ndarray, lo: int, hi: int):
    """The `int_int8` kernel's result on x (values in [lo, hi]), or None (no kernel for them,
    or torch not at hand)."""
    if 0 in fast and lo >= 0 and hi <= 255:
        return fast[0](x)
    if 128 in fast and lo >= -128 and hi <= 127:
        return fast[128](x.astype(np.int8).view(np.uint8) ^ np.uint8(128))
    return None


def threshold_acc(acc: np.ndarray, thr: np.ndarray, bound: int) -> np.ndarray:
    """multithreshold of an `exact_matmul` accumulator (|acc| <= bound), float32 ones in float32."""
    if acc.dtype == np.float32 and 0 < thr.shape[1] <= 4:
        # |acc| <= bound < 2**24: thresholds clamped to [-bound, bound + 1] compare the same, in float32 exactly
        t32 = np.clip(thr, -bound, bound + 1).astype(np.float32)
        out = (acc >= t32[:, 0]).view(np.uint8)
        for t in range(1, thr.shape[1]):
            out += acc >= t32[:, t]
        return out
    return multithreshold(acc.astype(np.int32 if acc.dtype == np.float32 else np.int64), thr)


def khot_terms(w: np.ndarray, k: int) -> np.ndarray:
    """Signed power-of-two terms of integer weights: (..., k, 2) of (sign in {-1,0,1}, shift).

    Uses the canonical signed-digit (non-adjacent) form, which has the fewest nonzero
    digits (flow.core.naf); raises ValueError when a weight needs more than k terms."""
    return naf_terms(w, k)


def pair(v) -> tuple[int, int]:
    """An int or an (h, w) pair as an (h, w) pair."""
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def pads4(pad) -> tuple[int, int, int, int]:
    """An int or (top, left, bottom, right) as (top, left, bottom, right)."""
    return (int(pad),) * 4 if np.isscalar(pad) else tuple(int(p) for p in pad)


def window_out_hw(h: int, w: int, k, stride=1, pad=0, dilation=1) -> tuple[int, int]:
    """Output height and width of a sliding window (kernel, stride, dilation (h, w); pad
    (top, left, bottom, right))."""
    (kh, kw), (sh, sw), (dh, dw) = pair(k), pair(stride), pair(dilation)
    pt, pl, pb, pr = pads4(pad)
    return (h + pt + pb - (kh - 1) * dh - 1) // sh + 1, (w + pl + pr - (kw - 1) * dw - 1) // sw + 1


def window_view(x: np.ndarray, k, stride=1, dilation=1) -> np.ndarray:
    """The windows of an NHWC image (N, H, W, C) as a strided view (N, OH, OW, KH, KW, C) of it
    (no copy; no padding)."""
    (kh, kw), (sh, sw), (dh, dw) = pair(k), pair(stride), pair(dilation)
    n, h, w, c = x.shape
    oh, ow = (max(0, o) for o in window_out_hw(h, w, k, stride, 0, dilation))
    s0, s1, s2, s3 = x.strides
    return np.lib.stride_tricks.as_strided(x, (n, oh, ow, kh, kw, c), (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3),
                                           writeable=False)


def sliding_window(x: np.ndarray, k, stride=1, pad=0, pad_value: int = 0, dilation=1) -> np.ndarray:
    """NHWC image (N, H, W, C) -> windows (N, OH, OW, KH*KW*C), each window in (ky, kx, c) order.

    k, stride, dilation: an int or an (h, w) pair; pad: an int or (top, left, bottom, right)."""
    x = np.asarray(x)
    (kh, kw) = pair(k)
    pt, pl, pb, pr = pads4(pad)
    if pt or pl or pb or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    x = np.ascontiguousarray(x)
    win = window_view(x, k, stride, dilation)
    n, oh, ow = win.shape[:3]
    if pair(dilation)[1] == 1:  # the (kx, c) of a window row lie side by side: copy them as one run
        win = np.lib.stride_tricks.as_strided(x, (n, oh, ow, kh, kw * x.shape[3]), win.strides[:4] + x.strides[3:],
                                              writeable=False)
    return np.ascontiguousarray(win).reshape(n, oh, ow, kh * kw * x.shape[3])


def maxpool(x: np.ndarray, k, stride=None) -> np.ndarray:
    """NHWC max-pool (N, H, W, C) -> (N, OH, OW, C); on 0/1 bits this is a bitwise OR.
    k, stride: an int or an (h, w) pair (stride defaults to the kernel)."""
    stride = k if stride is None else stride
    win = window_view(np.asarray(x), k, stride)
    out = win[:, :, :, 0, 0].copy()
    for ky in range(win.shape[3]):  # one tap at a time: no copy of the windows
        for kx in range(win.shape[4]):
            np.maximum(out, win[:, :, :, ky, kx], out=out)
    return out


def global_acc_pool(x: np.ndarray) -> np.ndarray:
    """NHWC global sum pool (N, H, W, C) -> (N, C) (the average's numerator)."""
    return np.asarray(x, dtype=np.int64).sum(axis=(1, 2))


def label_select_topk(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values per row, largest first; ties -> lower index first."""
    v = np.asarray(v, dtype=np.int64)
    order = np.lexsort((np.broadcast_to(np.arange(v.shape[1]), v.shape), -v), axis=1)
    return order[:, :k].astype(np.int64)


def add_streams(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise sum of two streams (the residual join)."""
    return np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)


def fixed_scale(x: np.ndarray, mult: np.ndarray, bias: np.ndarray, shift: int, out_bits: int,
                out_signed: bool = True, rounding: str = "floor") -> np.ndarray:
    """Per-channel fixed-point affine y = sat(round((x * mult + bias) / 2**shift)).

    x (N, ..., C) integers, mult/bias (C,) integers; rounding "floor" (ap_fixed TRN) or
    "half_up" (ap_fixed RND: add 2**(shift-1) before the shift); saturation to out_bits.
    """
    acc = np.asarray(x, dtype=np.int64) * np.asarray(mult, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    if rounding not in ("floor", "half_up"):
        raise ValueError(f"rounding must be 'floor' or 'half_up', got {rounding!r}")
    if rounding == "half_up" and shift > 0:
        acc = acc + (1 << (shift - 1))
    y = acc >> shift  # arithmetic shift = floor division by 2**shift
    lo, hi = (-(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1) if out_signed else (0, (1 << out_bits) - 1)
    return np.clip(y, lo, hi)


def vvu(x: np.ndarray, w: np.ndarray, thr: np.ndarray | None = None) -> np.ndarray:
    """Depthwise (vector-vector) product over windows: x (N, V, Taps, C) in (tap, channel)
    order, w (C, Taps) -> acc[n, v, c] = sum_t x[n, v, t, c] * w[c, t] (exact int64),
    optionally followed by multi-thresholding with thr (C, T) per channel."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=np.int64)
    acc = x[:, :, 0, :] * w[:, 0]  # int64, one tap at a time
    for t in range(1, w.shape[1]):
        acc += x[:, :, t, :] * w[:, t]
    if thr is None:
        return acc
    n, v, c = acc.shape
    return multithreshold(acc.reshape(n * v, c), thr).reshape(n, v, c)
