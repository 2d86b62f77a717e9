"""The wire format of every stream: integer elements packed little-endian into beats.

The stand-alone driver (flow/deploy/driver.py) keeps its own copy of these functions, since
it runs on a board without bnnflow installed; a test proves the two copies agree.
"""
from __future__ import annotations

import numpy as np


def beat_bytes(bits: int) -> int:
    """Bytes of one beat of `bits` bits on the stream and on the UART."""
    return max(1, -(-bits // 8))


def axi_bytes(bits: int) -> int:
    """Bytes of one AXI-Stream row: the smallest power of two >= beat_bytes(bits)."""
    n = 1
    while n < beat_bytes(bits):
        n *= 2
    return n


def _elem_dtype(elem_bits: int):
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if elem_bits <= 8 * np.dtype(dt).itemsize:
            return np.dtype(dt).newbyteorder("<")
    raise ValueError(f"elements of {elem_bits} bits are wider than 64 bits")


def pack_beats(values, lanes: int, elem_bits: int) -> np.ndarray:
    """(N, E) integer elements -> (N*E/lanes, ceil(lanes*elem_bits/8)) uint8 beats.

    Frames are sent in order, `lanes` elements per beat, element i of a beat at bits
    [i*elem_bits +: elem_bits]; negative values are stored in two's complement."""
    v = np.asarray(values)
    if v.ndim == 1:
        v = v[None, :]
    n, e = v.shape
    if e % lanes:
        raise ValueError(f"{e} elements per frame is not a multiple of {lanes} lanes")
    nb = n * e // lanes
    dt = _elem_dtype(elem_bits)
    u = v.astype(np.int64).astype(np.uint64) & np.uint64((1 << elem_bits) - 1)
    raw = u.astype(dt).reshape(nb, lanes, 1).view(np.uint8)          # (nb, lanes, itemsize)
    bits = np.unpackbits(raw, axis=2, bitorder="little")[:, :, :elem_bits].reshape(nb, lanes * elem_bits)
    return np.packbits(bits, axis=1, bitorder="little")              # zero-pads the last byte


def unpack_beats(beats: np.ndarray, lanes: int, elem_bits: int, signed: bool = False) -> np.ndarray:
    """(N, nbytes) uint8 beats -> (N, lanes) int64 elements (two's complement when signed)."""
    b = np.asarray(beats, dtype=np.uint8)
    nb = b.shape[0]
    dt = _elem_dtype(elem_bits)
    bits = np.unpackbits(b, axis=1, bitorder="little")[:, :lanes * elem_bits].reshape(nb, lanes, elem_bits)
    pad = 8 * dt.itemsize - elem_bits
    if pad:
        bits = np.concatenate([bits, np.zeros((nb, lanes, pad), np.uint8)], axis=2)
    vals = np.packbits(bits, axis=2, bitorder="little").view(dt)[:, :, 0].astype(np.int64)
    if signed:
        vals = np.where(vals >= (1 << (elem_bits - 1)), vals - (1 << elem_bits), vals)
    return vals


def as_beat_bytes(in_beats, bits: int) -> np.ndarray:
    """Beats as an (N, beat_bytes(bits)) uint8 array: given as such, or as a 1-D array of ints."""
    nbytes = beat_bytes(bits)
    a = np.asarray(in_beats)
    if a.dtype == np.uint8 and a.ndim == 2 and a.shape[1] == nbytes:
        return np.ascontiguousarray(a)
    if a.ndim != 1:
        raise ValueError(f"beats must be (N, {nbytes}) uint8 or a 1-D array of ints")
    if a.dtype != object and np.issubdtype(a.dtype, np.integer) and nbytes <= 8:
        return np.ascontiguousarray(a.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :nbytes])
    return np.array([list(int(x).to_bytes(nbytes, "little")) for x in a], dtype=np.uint8).reshape(-1, nbytes)
