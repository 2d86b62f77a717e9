"""Exact integer semantics of the hardware engines (numpy).

These functions are the single source of truth for what every engine computes: the
numpy executor, the cocotb scoreboards and the compiler's self-checks all call them.
Bipolar values are bits (+1 -> 1, -1 -> 0).
"""
from __future__ import annotations

import numpy as np

from flow.core.naf import naf_terms


def binary_mvu(x_bits: np.ndarray, w_bits: np.ndarray, thr: np.ndarray | None = None) -> np.ndarray:
    """XNOR-popcount matrix-vector product, optionally followed by multi-thresholding.

    x_bits (N, MW) in {0,1}; w_bits (MH, MW) in {0,1}; thr (MH, T) or None.
    Returns (N, MH) int64: the popcount of matching bits, or the threshold count.
    """
    mw = np.shape(x_bits)[1]
    # Bipolar dot product in float32 BLAS: exact, since |sum| <= MW < 2**24.
    if mw >= 1 << 24:
        raise ValueError(f"MW={mw} is too large for the exact float32 reference")
    xb = np.asarray(x_bits, dtype=np.float32) * 2 - 1
    wb = np.asarray(w_bits, dtype=np.float32) * 2 - 1
    acc = (xb @ wb.T).astype(np.int64)  # = matches - mismatches
    pc = (acc + mw) // 2
    if thr is None:
        return pc
    return multithreshold(pc, thr)


def multithreshold(v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """out[n, c] = number of thresholds thr[c, t] with v[n, c] >= thr[c, t]."""
    v = np.asarray(v)
    thr = np.asarray(thr, dtype=np.int64)
    small = np.uint8 if thr.shape[1] < 256 else np.int32  # counts stay compact for big tensors
    if thr.shape[1] <= 4:
        out = np.zeros(v.shape, dtype=small)
        for t in range(thr.shape[1]):
            out += v >= thr[None, :, t]
        return out
    out = np.empty(v.shape, dtype=small)
    for c in range(thr.shape[0]):  # many thresholds: binary search per channel
        out[:, c] = np.searchsorted(thr[c], v[:, c], side="right")
    return out


def label_select(v: np.ndarray) -> np.ndarray:
    """Index of the largest value per row; ties go to the lowest index (as torch.argmax)."""
    return np.argmax(np.asarray(v), axis=1).astype(np.int64)


def int_mvu(x: np.ndarray, w: np.ndarray, thr: np.ndarray | None = None) -> np.ndarray:
    """Integer matrix-vector product acc[n, h] = sum_k x[n, k] * w[h, k] (exact int64),
    optionally followed by multi-thresholding. The engine realises it without multipliers
    when the weights allow: bipolar weights (+1/-1) by add/subtract, K-hot weights (each a
    sum of at most K signed powers of two) by shift-add."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=np.int64)
    bound = int(np.abs(x).max(initial=0)) * int(np.abs(w).sum(axis=1).max(initial=0))
    if bound < 1 << 24:  # float32 BLAS is exact below 2**24
        acc = (x.astype(np.float32) @ w.T.astype(np.float32)).astype(np.int64)
    elif bound < 1 << 52:  # float64 below 2**53
        acc = np.rint(x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    else:
        acc = x.astype(np.int64) @ w.T
    return acc if thr is None else multithreshold(acc, thr)


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


def sliding_window(x: np.ndarray, k, stride=1, pad=0, pad_value: int = 0, dilation=1) -> np.ndarray:
    """NHWC image (N, H, W, C) -> windows (N, OH, OW, KH*KW*C), each window in (ky, kx, c) order.

    k, stride, dilation: an int or an (h, w) pair; pad: an int or (top, left, bottom, right)."""
    x = np.asarray(x)
    (kh, kw), (sh, sw), (dh, dw) = pair(k), pair(stride), pair(dilation)
    pt, pl, pb, pr = pads4(pad)
    n, h, w, c = x.shape
    oh, ow = window_out_hw(h, w, k, stride, pad, dilation)
    if pt or pl or pb or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    iy = (np.arange(oh) * sh)[:, None] + np.arange(kh)[None, :] * dh   # (OH, KH)
    ix = (np.arange(ow) * sw)[:, None] + np.arange(kw)[None, :] * dw   # (OW, KW)
    win = x[:, iy[:, None, :, None], ix[None, :, None, :], :]            # (N, OH, OW, KH, KW, C)
    return np.ascontiguousarray(win).reshape(n, oh, ow, kh * kw * c)


def maxpool(x: np.ndarray, k, stride=None) -> np.ndarray:
    """NHWC max-pool (N, H, W, C) -> (N, OH, OW, C); on 0/1 bits this is a bitwise OR.
    k, stride: an int or an (h, w) pair (stride defaults to the kernel)."""
    stride = k if stride is None else stride
    win = sliding_window(x, k, stride)
    n, oh, ow, _ = win.shape
    c = x.shape[3]
    return win.reshape(n, oh, ow, -1, c).max(axis=3)


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
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    acc = np.einsum("nvtc,ct->nvc", x, w)
    if thr is None:
        return acc
    n, v, c = acc.shape
    return multithreshold(acc.reshape(n * v, c), thr).reshape(n, v, c)
