"""Packing of weight and threshold arrays into memory words (see the RTL memory contract)."""
from __future__ import annotations

import numpy as np


def _pack_rows(fields: np.ndarray, field_bits: int) -> list[int]:
    """fields (words, n) of non-negative ints -> one int per word, field i at bits [i*fb +: fb]."""
    words = []
    for row in fields:
        w = 0
        for i, v in enumerate(row.tolist()):
            w |= (int(v) & ((1 << field_bits) - 1)) << (i * field_bits)
        words.append(w)
    return words


def weight_words(w_bits: np.ndarray, pe: int, simd: int) -> list[int]:
    """Binary weights (MH, MW) -> NF*SF words of PE*SIMD bits, bit [p*SIMD+s] = w[nf*PE+p, sf*SIMD+s]."""
    mh, mw = w_bits.shape
    nf, sf = mh // pe, mw // simd
    # (nf, pe, sf, simd) -> (nf, sf, pe, simd)
    tiles = w_bits.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    return _pack_rows(tiles, 1)


def threshold_words(thr: np.ndarray, pe: int, tb: int) -> list[int]:
    """Thresholds (C, T) -> C/PE words of PE*T*TB bits, threshold t of lane p at [(p*T+t)*TB +: TB]."""
    c, t = thr.shape
    return _pack_rows(thr.reshape(c // pe, pe * t), tb)
