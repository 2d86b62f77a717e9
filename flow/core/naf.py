"""The non-adjacent form (canonical signed-digit form) of integers: the one encoder behind
K-hot weights (the fewest signed power-of-two terms), used by training (which levels are
K-hot) and by the engines (the shift-add terms of each weight)."""
from __future__ import annotations

import numpy as np


def naf_digits(values, min_digits: int = 0) -> np.ndarray:
    """Signed digits (..., D) in {-1, 0, +1} with values = sum_e digit[e] * 2**e and no two
    adjacent nonzero digits; D is the fewest digits that hold every value (>= min_digits)."""
    v = np.asarray(values, dtype=np.int64).copy()
    width = max(int(min_digits), int(np.abs(v).max(initial=0)).bit_length() + 1)
    digits = np.zeros(v.shape + (width,), dtype=np.int64)
    for e in range(width):
        odd = (v & 1) == 1
        d = np.where(odd, 2 - (v & 3), 0)  # +1 or -1 where odd, chosen so the next digit is 0
        digits[..., e] = d
        v = (v - d) >> 1
    return digits


def naf_weight(values) -> np.ndarray:
    """Number of nonzero digits of the non-adjacent form of each value."""
    return np.count_nonzero(naf_digits(values), axis=-1)


def naf_terms(values, k: int) -> np.ndarray:
    """The nonzero digits as (..., k, 2) terms (sign in {-1, 0, +1}, shift), lowest shift
    first, unused terms (0, 0); raises ValueError when a value needs more than k terms."""
    v = np.asarray(values, dtype=np.int64)
    digits = naf_digits(v, min_digits=k)
    nz = digits != 0
    count = nz.sum(axis=-1)
    if np.any(count > k):
        bad = tuple(np.argwhere(count > k)[0])
        raise ValueError(f"weight {int(v[bad])} needs {int(count[bad])} power-of-two terms, more than K={k}")
    idx = np.argsort(~nz, axis=-1, kind="stable")[..., :k]  # nonzero digits first, lowest shift first
    sign = np.take_along_axis(digits, idx, axis=-1)
    shift = np.where(sign != 0, idx, 0)
    return np.stack([sign, shift], axis=-1)
