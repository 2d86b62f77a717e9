"""Bit-packed XNOR-popcount kernels of the numpy reference.

Bits are packed 64 to a uint64 word; the mismatching bits of two rows are the popcounts
(np.bitwise_count) of their words XORed, summed over the words. The kernel runs a block of
rows by columns at a time so that its temporaries stay in the core's cache, and sums three words'
counts in bytes (3 * 64 < 256) before adding them to the wider accumulator.
"""
from __future__ import annotations

import numpy as np

# One block of the kernel: BLOCK_COLS columns (long rows: numpy's inner loops stay long) by
# POPCOUNT_BLOCK // BLOCK_COLS rows; its uint64 temporary takes 256 KiB, within the core's cache.
POPCOUNT_BLOCK = 1 << 15
BLOCK_COLS = 4096
BYTE_WORDS = 3  # word counts summed in a byte: 3 * 64 <= 255


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(R, K) bits in {0,1} -> (R, ceil(K/64)) uint64 words; bit k of a row is bit k % 64 of
    word k // 64, the bits past K are 0."""
    b = np.asarray(bits)
    rows, k = b.shape
    out = np.zeros((rows, 8 * -(-k // 64)), dtype=np.uint8)
    if k:
        out[:, :-(-k // 8)] = np.packbits(b, axis=1, bitorder="little")
    return out.view(np.uint64)


def count_dtype(words: int):
    """The accumulator of mismatch counts over `words` words: uint16 while 64 * words < 2**16."""
    return np.uint16 if 64 * words < 1 << 16 else np.int64


def popcount_blocks(a: np.ndarray, bt: np.ndarray):
    """Yield (row, col, counts) over blocks of the (A, B) mismatch counts: counts[i, k] is the
    number of bits in which row a[row + i] (A, W words) and column col + k of bt (W, B words,
    rows contiguous) differ. The counts buffer is reused from one block to the next."""
    words, cols = bt.shape
    n0 = max(1, min(cols, BLOCK_COLS))
    m0 = max(1, min(len(a), POPCOUNT_BLOCK // n0))
    t64, t8, s8 = np.empty((m0, n0), np.uint64), np.empty((m0, n0), np.uint8), np.empty((m0, n0), np.uint8)
    acc_buf = np.empty((m0, n0), count_dtype(words))
    for r0 in range(0, len(a), m0):
        m = min(m0, len(a) - r0)
        acol = [a[r0:r0 + m, j:j + 1] for j in range(words)]
        for c0 in range(0, cols, n0):
            n = min(n0, cols - c0)
            acc, tx, tc, sc = acc_buf[:m, :n], t64[:m, :n], t8[:m, :n], s8[:m, :n]
            acc[...] = 0
            for g in range(0, words, BYTE_WORDS):
                for j in range(g, min(g + BYTE_WORDS, words)):
                    np.bitwise_xor(acol[j], bt[j, c0:c0 + n], out=tx)
                    np.bitwise_count(tx, out=sc if j == g else tc)
                    if j > g:
                        np.add(sc, tc, out=sc)
                np.add(acc, sc, out=acc)
            yield r0, c0, acc


def xor_popcount(xw: np.ndarray, ww: np.ndarray) -> np.ndarray:
    """Mismatching bits of every pair of rows: xw (R, W), ww (M, W) uint64 words -> (R, M)
    counts (`count_dtype`). The longer side runs along the rows of the blocks."""
    xw, ww = np.asarray(xw, dtype=np.uint64), np.asarray(ww, dtype=np.uint64)
    swap = len(xw) >= len(ww)
    a, b = (ww, xw) if swap else (xw, ww)
    out = np.empty((len(a), len(b)), dtype=count_dtype(xw.shape[1]))
    for r0, c0, acc in popcount_blocks(a, np.ascontiguousarray(b.T)):
        out[r0:r0 + acc.shape[0], c0:c0 + acc.shape[1]] = acc
    return out.T if swap else out


def xnor_threshold(xw: np.ndarray, ww: np.ndarray, mw: int, thr: np.ndarray) -> np.ndarray:
    """Threshold counts of the XNOR popcounts (R, M) uint8, rows of xw against rows of ww over
    mw bits, thr (M, T) with T < 256, compared block by block while the counts are in cache:
    matches >= t  <=>  mismatches < mw + 1 - t (clamped to [0, mw + 1])."""
    thr = np.asarray(thr, dtype=np.int64)
    limit = np.clip(mw + 1 - thr, 0, mw + 1).astype(count_dtype(ww.shape[1]))
    out = np.empty((len(ww), len(xw)), dtype=np.uint8)
    for r0, c0, acc in popcount_blocks(ww, np.ascontiguousarray(xw.T)):
        m, n = acc.shape
        blk, lim = out[r0:r0 + m, c0:c0 + n], limit[r0:r0 + m]
        np.less(acc, lim[:, :1], out=blk.view(np.bool_))
        for t in range(1, lim.shape[1]):
            blk += acc < lim[:, t:t + 1]
    return out.T
