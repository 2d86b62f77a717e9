"""Exact integer semantics of the hardware engines (numpy).

These functions are the single source of truth for what every engine computes: the
numpy executor, the cocotb scoreboards and the compiler's self-checks all call them.
Bipolar values are bits (+1 -> 1, -1 -> 0).
"""
from __future__ import annotations

import numpy as np


def binary_mvu(x_bits: np.ndarray, w_bits: np.ndarray, thr: np.ndarray | None = None) -> np.ndarray:
    """XNOR-popcount matrix-vector product, optionally followed by multi-thresholding.

    x_bits (N, MW) in {0,1}; w_bits (MH, MW) in {0,1}; thr (MH, T) or None.
    Returns (N, MH) int64: the popcount of matching bits, or the threshold count.
    """
    x = np.asarray(x_bits, dtype=np.int64)
    w = np.asarray(w_bits, dtype=np.int64)
    mw = x.shape[1]
    # matches = ones that agree + zeros that agree
    ones = x @ w.T
    pc = ones + (mw - x.sum(axis=1, keepdims=True) - w.sum(axis=1)[None, :] + ones)
    if thr is None:
        return pc
    return multithreshold(pc, thr)


def multithreshold(v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """out[n, c] = number of thresholds thr[c, t] with v[n, c] >= thr[c, t]."""
    v = np.asarray(v, dtype=np.int64)
    thr = np.asarray(thr, dtype=np.int64)
    return (v[:, :, None] >= thr[None, :, :]).sum(axis=2).astype(np.int64)


def label_select(v: np.ndarray) -> np.ndarray:
    """Index of the largest value per row; ties go to the lowest index (as torch.argmax)."""
    return np.argmax(np.asarray(v), axis=1).astype(np.int64)
