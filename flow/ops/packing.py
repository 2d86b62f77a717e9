"""Memory packing the engines share: $readmemh text, threshold words, per-lane fields of the
MVU memories and the K-hot (shift-add) weight field. An op's own layout (the binary MVU's
weight bits, the integer MVU's weight words, fixed_scale's parameter words) lives in its module."""
from __future__ import annotations

import numpy as np

from flow.ops.semantics import khot_terms


def mem_text(words: list[int], word_bits: int) -> str:
    """$readmemh text: one word per line, ceil(word_bits/4) lower-case hex digits."""
    digits = max(1, -(-word_bits // 4))
    limit = 1 << word_bits
    lines = []
    for w in words:
        w = int(w)
        if not 0 <= w < limit:
            raise ValueError(f"memory word {w} does not fit in {word_bits} bits")
        lines.append(format(w, f"0{digits}x"))
    return "\n".join(lines) + "\n"


def thresh_words(thr, pe: int, tb: int, signed: bool | None = None) -> list[int]:
    """Threshold memory: word nf, bits [(p*T+t)*TB +: TB] = thr[nf*PE+p, t] (two's complement).

    With `signed` given, every threshold must read back as itself from a TB-bit field of
    that kind (two's complement or unsigned); without it, either kind is accepted."""
    thr = np.asarray(thr, dtype=np.int64)
    c, t = thr.shape
    if c % pe:
        raise ValueError(f"PE={pe} must divide C={c}")
    lo = -(1 << (tb - 1)) if signed is not False else 0
    hi = (1 << (tb - 1)) - 1 if signed else (1 << tb) - 1
    if thr.min(initial=0) < lo or thr.max(initial=0) > hi:
        kind = {True: "two's complement ", False: "unsigned "}.get(signed, "")
        raise ValueError(f"thresholds {thr.min()}..{thr.max()} do not fit in {tb}-bit {kind}fields")
    mask = (1 << tb) - 1
    words = []
    for nf in range(c // pe):
        word = 0
        for k, v in enumerate(thr[nf * pe:(nf + 1) * pe].reshape(-1)):
            word |= (int(v) & mask) << (k * tb)
        words.append(word)
    return words


def lane_fields(fields, pe: int, simd: int, wb: int) -> list[int]:
    """(MH, MW) non-negative field values -> MVU memory words: depth NF*SF, address nf*SF+sf,
    lane (p, s) at bits [(p*SIMD+s)*wb +: wb] = fields[nf*PE+p, sf*SIMD+s]."""
    f = np.asarray(fields, dtype=object)
    mh, mw = f.shape
    if mh % pe or mw % simd:
        raise ValueError(f"PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
    nf, sf = mh // pe, mw // simd
    blocks = f.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    words = []
    for row in blocks:
        word = 0
        for k, v in enumerate(row):
            word |= int(v) << (k * wb)
        words.append(word)
    return words


def khot_fields(w, k: int, sb: int):
    """K-hot field of integer weights: term j at [j*(2+sb) +: 2+sb], low 2 bits the sign code
    (00 zero, 01 +1, 11 -1), high sb bits the shift; terms from semantics.khot_terms."""
    terms = khot_terms(w, k)                          # (..., k, 2): (sign, shift)
    if terms[..., 1].max(initial=0) >= (1 << sb):
        raise ValueError(f"a power-of-two term needs a shift of {int(terms[..., 1].max())}, more than SB={sb} bits hold")
    tw = 2 + sb
    out = np.zeros(terms.shape[:-2], dtype=object)
    for j in range(k):
        sign, shift = terms[..., j, 0], terms[..., j, 1]
        code = np.where(sign == 1, 1, np.where(sign == -1, 3, 0)).astype(object)
        field = np.where(sign == 0, 0, code + (shift.astype(object) << 2))
        out = out + (field.astype(object) << (j * tw))
    return out
