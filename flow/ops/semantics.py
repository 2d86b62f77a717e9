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
    mw = np.shape(x_bits)[1]
    # Bipolar dot product in float32 BLAS: exact, since |sum| <= MW < 2**24.
    if mw >= 1 << 24:
        raise ValueError(f"MW={mw} is too large for the exact float32 reference")
    xb = 2 * np.asarray(x_bits, dtype=np.float32) - 1
    wb = 2 * np.asarray(w_bits, dtype=np.float32) - 1
    acc = (xb @ wb.T).astype(np.int64)  # = matches - mismatches
    pc = (acc + mw) // 2
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
