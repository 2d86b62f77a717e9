"""Deterministic stimulus + expected output for each engine, from flow.ops.semantics.

Both sides call `make_case` with the same arguments: the pytest side to write the memory
files before the simulator starts, the cocotb testbench to drive and score the design.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flow.ops import semantics
from flow.rtlgen import mem_text, mvu_weight_words, thresh_words
from flow.rtlsim import pack_beats

SOURCES = {  # engine -> library files (relative to rtl/)
    "bnn_mvu": ["common/bnn_popcount.sv", "mvu_binary/bnn_mvu.sv"],
    "thresholding": ["thresholding/thresholding.sv"],
    "label_select": ["label_select/label_select.sv"],
    "dwc": ["dwc/dwc.sv"],
    "fifo": ["fifo/fifo.sv"],
}


@dataclass
class Case:
    in_beats: list[int]
    out_beats: list[int]
    in_bpf: int
    out_bpf: int
    ideal_cpf: int                       # cycles per frame when never stalled
    memories: dict[str, str] = field(default_factory=dict)   # file name -> $readmemh text


def _ints(beats: np.ndarray) -> list[int]:
    return [int.from_bytes(row.tobytes(), "little") for row in beats]


def _sorted_thr(rng, rows: int, t: int, lo: int, hi: int) -> np.ndarray:
    return np.sort(rng.integers(lo, hi, size=(rows, t)), axis=1)


def make_case(engine: str, p: dict, seed: int, frames: int) -> Case:
    rng = np.random.default_rng(seed)
    if engine == "bnn_mvu":
        mw, mh, simd, pe = p["MW"], p["MH"], p["SIMD"], p["PE"]
        x = rng.integers(0, 2, size=(frames, mw), dtype=np.uint8)
        w = rng.integers(0, 2, size=(mh, mw), dtype=np.uint8)
        mems = {p["WEIGHTS_FILE"]: mem_text(mvu_weight_words(w, pe, simd), pe * simd)}
        thr = None
        if p["USE_THRESH"]:
            thr = _sorted_thr(rng, mh, p["T"], 0, mw + 2)
            mems[p["THRESH_FILE"]] = mem_text(thresh_words(thr, pe, p["TB"]), pe * p["T"] * p["TB"])
        y = semantics.binary_mvu(x, w, thr)
        return Case(_ints(pack_beats(x, simd, 1)), _ints(pack_beats(y, pe, p["OUT_BITS"])),
                    mw // simd, mh // pe, (mh // pe) * (mw // simd), mems)
    if engine == "thresholding":
        c, pe, ib, tb, t = p["C"], p["PE"], p["IN_BITS"], p["TB"], p["T"]
        lo, hi = (-(1 << (ib - 1)), 1 << (ib - 1)) if p["IN_SIGNED"] else (0, 1 << ib)
        tlo, thi = (-(1 << (tb - 1)), 1 << (tb - 1)) if p["IN_SIGNED"] else (0, 1 << tb)
        v = rng.integers(lo, hi, size=(frames, c))
        thr = _sorted_thr(rng, c, t, max(lo, tlo), min(hi, thi))
        y = semantics.multithreshold(v, thr)
        mems = {p["THRESH_FILE"]: mem_text(thresh_words(thr, pe, tb), pe * t * tb)}
        return Case(_ints(pack_beats(v, pe, ib)), _ints(pack_beats(y, pe, p["OUT_BITS"])),
                    c // pe, c // pe, c // pe, mems)
    if engine == "label_select":
        lab, pe, ib = p["L"], p["PE"], p["IN_BITS"]
        v = rng.integers(0, 4, size=(frames, lab))          # few values: many ties
        v[::3] = rng.integers(0, 1 << ib, size=v[::3].shape)
        v[1::7] = v[1::7, :1]                                # all equal -> index 0
        y = semantics.label_select(v)[:, None]
        return Case(_ints(pack_beats(v, pe, ib)), _ints(pack_beats(y, 1, p["OUT_BITS"])),
                    lab // pe, 1, lab // pe)
    if engine == "dwc":
        ie, oe, eb = p["IN_ELEMS"], p["OUT_ELEMS"], p["ELEM_BITS"]
        n = max(ie, oe)
        v = rng.integers(0, 1 << eb, size=(frames, n))
        return Case(_ints(pack_beats(v, ie, eb)), _ints(pack_beats(v, oe, eb)), n // ie, n // oe,
                    n // min(ie, oe))
    if engine == "fifo":
        wd = p["WIDTH"]
        v = [int.from_bytes(rng.bytes(-(-wd // 8)), "little") & ((1 << wd) - 1) for _ in range(frames)]
        return Case(v, list(v), 1, 1, 1 if p["DEPTH"] > 1 else 2)
    raise ValueError(f"unknown engine {engine!r}")
