"""Deterministic stimulus + expected output for each engine, from flow.ops.semantics.

Both sides call `make_case` with the same arguments: the pytest side to write the memory
files before the simulator starts, the cocotb testbench to drive and score the design.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flow.ops import semantics
from flow.codegen.rtlgen import (ENGINE_PORTS, ENGINE_SOURCES, fixed_scale_lane_bits, fixed_scale_param_words,
                         int_mvu_weight_bits, int_mvu_weight_words, mem_text, mvu_weight_words, thresh_words)
from flow.core.wire import pack_beats
from flow.ops.concat import StreamingConcat

SOURCES = {k: list(v) for k, v in ENGINE_SOURCES.items()}  # engine -> library files (relative to rtl/)

# Which cocotb testbench covers which engine: engine -> testbench module in sim/. The
# parity test (tests/test_engine_parity.py) requires an entry for every engine an op uses.
TESTBENCHES: dict[str, str] = {
    "bnn_mvu": "tb_engines",
    "thresholding": "tb_engines",
    "label_select": "tb_engines",     # top-1 in tb_engines, top-K in tb_batch
    "dwc": "tb_engines",
    "fifo": "tb_engines",             # SYNC_READ=1 (block RAM) variant in tb_batch
    "int_mvu": "tb_batch",
    "sliding_window": "tb_batch",
    "maxpool": "tb_batch",
    "global_acc_pool": "tb_batch",
    "duplicate": "tb_batch",
    "add_streams": "tb_batch",
    "fixed_scale": "tb_batch",
    "streaming_concat": "tb_batch",
}


@dataclass
class Case:
    ins: dict[str, list[int]]            # input port prefix -> beats
    outs: dict[str, list[int]]           # output port prefix -> expected beats
    in_bpf: int                          # beats per frame on each input port
    out_bpf: int                         # beats per frame on each output port
    ideal_cpf: int                       # cycles per frame when never stalled (the engine's formula)
    memories: dict[str, str] = field(default_factory=dict)   # file name -> $readmemh text

    @property
    def in_beats(self) -> list[int]:
        return next(iter(self.ins.values()))

    @property
    def out_beats(self) -> list[int]:
        return next(iter(self.outs.values()))


def _single(in_beats, out_beats, in_bpf, out_bpf, cpf, mems=None) -> Case:
    return Case({"s_axis": in_beats}, {"m_axis": out_beats}, in_bpf, out_bpf, cpf, mems or {})


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
        return _single(_ints(pack_beats(x, simd, 1)), _ints(pack_beats(y, pe, p["OUT_BITS"])),
                    mw // simd, mh // pe, (mh // pe) * (mw // simd), mems)
    if engine == "thresholding":
        c, pe, ib, tb, t = p["C"], p["PE"], p["IN_BITS"], p["TB"], p["T"]
        lo, hi = (-(1 << (ib - 1)), 1 << (ib - 1)) if p["IN_SIGNED"] else (0, 1 << ib)
        tlo, thi = (-(1 << (tb - 1)), 1 << (tb - 1)) if p["IN_SIGNED"] else (0, 1 << tb)
        v = rng.integers(lo, hi, size=(frames, c))
        thr = _sorted_thr(rng, c, t, max(lo, tlo), min(hi, thi))
        y = semantics.multithreshold(v, thr)
        mems = {p["THRESH_FILE"]: mem_text(thresh_words(thr, pe, tb), pe * t * tb)}
        return _single(_ints(pack_beats(v, pe, ib)), _ints(pack_beats(y, pe, p["OUT_BITS"])),
                    c // pe, c // pe, c // pe, mems)
    if engine == "label_select":
        lab, pe, ib = p["L"], p["PE"], p["IN_BITS"]
        v = rng.integers(0, min(4, 1 << ib), size=(frames, lab))   # few values: many ties
        v[::3] = rng.integers(0, 1 << ib, size=v[::3].shape)
        v[1::7] = v[1::7, :1]                                # all equal -> index 0
        k = p.get("K", 1)
        y = semantics.label_select(v)[:, None] if k == 1 else semantics.label_select_topk(v, k)
        return _single(_ints(pack_beats(v, pe, ib)), _ints(pack_beats(y, k, p["OUT_BITS"])),
                    lab // pe, 1, lab // pe)
    if engine == "dwc":
        ie, oe, eb = p["IN_ELEMS"], p["OUT_ELEMS"], p["ELEM_BITS"]
        n = max(ie, oe)
        v = rng.integers(0, 1 << eb, size=(frames, n))
        return _single(_ints(pack_beats(v, ie, eb)), _ints(pack_beats(v, oe, eb)), n // ie, n // oe,
                    n // min(ie, oe))
    if engine == "fifo":
        wd = p["WIDTH"]
        v = [int.from_bytes(rng.bytes(-(-wd // 8)), "little") & ((1 << wd) - 1) for _ in range(frames)]
        return _single(v, list(v), 1, 1, 1 if p["DEPTH"] > 1 else 2)
    if engine in NEW_CASES:
        return NEW_CASES[engine](p, rng, frames)
    raise ValueError(f"unknown engine {engine!r}")


# ------------------------------------------------------------------ newer engines
def _rand_int(rng, bits: int, signed: bool, size) -> np.ndarray:
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    return rng.integers(lo, hi, size=size)


def _rand_khot(rng, k: int, sb: int, size) -> np.ndarray:
    """Sums of up to k signed powers of two with shifts < 2**sb - 1 (their non-adjacent
    form then has at most k terms and shifts < 2**sb)."""
    top = max(1, (1 << sb) - 1)
    sign = rng.integers(-1, 2, size=tuple(size) + (k,))
    shift = rng.integers(0, top, size=tuple(size) + (k,))
    return (sign * (1 << shift)).sum(axis=-1)


def int_mvu_max_weight(mode: int, w_bits: int, k: int, sb: int) -> int:
    """Largest |w| the case generator draws (sizes ACC_BITS)."""
    return {0: 1, 1: k << max(0, (1 << sb) - 2), 2: 1 << (w_bits - 1)}[mode]


def int_mvu_params(mw, mh, simd, pe, in_bits, in_signed, mode, w_bits=4, k=2, sb=2, use_thresh=0, t=1,
                   ram_style="auto") -> dict:
    """A legal int_mvu parameter set with ACC_BITS / TB / OUT_BITS sized for the worst case."""
    maxx = (1 << (in_bits - 1)) if in_signed else (1 << in_bits) - 1
    bound = mw * maxx * int_mvu_max_weight(mode, w_bits, k, sb)
    acc = bound.bit_length() + 1
    tb = acc + 1
    return {"MW": mw, "MH": mh, "SIMD": simd, "PE": pe, "IN_BITS": in_bits, "IN_SIGNED": in_signed,
            "W_MODE": mode, "W_BITS": w_bits, "K": k, "SB": sb, "ACC_BITS": acc, "USE_THRESH": use_thresh,
            "T": t, "TB": tb, "OUT_BITS": max(1, t.bit_length()) if use_thresh else acc,
            "WEIGHTS_FILE": "weights.mem", "THRESH_FILE": "thresh.mem" if use_thresh else "",
            "RAM_STYLE": ram_style}


def _case_int_mvu(p, rng, frames):
    mw, mh, simd, pe, mode = p["MW"], p["MH"], p["SIMD"], p["PE"], p["W_MODE"]
    x = _rand_int(rng, p["IN_BITS"], bool(p["IN_SIGNED"]), (frames, mw))
    if mode == 0:
        w = rng.choice(np.array([-1, 1]), size=(mh, mw))
    elif mode == 1:
        w = _rand_khot(rng, p["K"], p["SB"], (mh, mw))
    else:
        w = _rand_int(rng, p["W_BITS"], True, (mh, mw))
    words, wb = int_mvu_weight_words(w, pe, simd, mode, p["W_BITS"], p["K"], p["SB"])
    assert wb == int_mvu_weight_bits(mode, p["W_BITS"], p["K"], p["SB"])
    mems = {p["WEIGHTS_FILE"]: mem_text(words, pe * simd * wb)}
    thr = None
    if p["USE_THRESH"]:
        acc = semantics.int_mvu(x, w)
        lo, hi = int(acc.min()) - 2, int(acc.max()) + 3
        thr = _sorted_thr(rng, mh, p["T"], lo, hi)
        mems[p["THRESH_FILE"]] = mem_text(thresh_words(thr, pe, p["TB"]), pe * p["T"] * p["TB"])
    y = semantics.int_mvu(x, w, thr)
    return _single(_ints(pack_beats(x, simd, p["IN_BITS"])), _ints(pack_beats(y, pe, p["OUT_BITS"])),
                   mw // simd, mh // pe, (mh // pe) * (mw // simd), mems)


def sliding_window_cycles(h, w, c, k, stride, pad, simd) -> int:
    """Steady-state cycles per frame of sliding_window.sv."""
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    nin, nout = h * w * c // simd, oh * ow * k * k * c // simd
    return max(nin, nout)


def _case_sliding_window(p, rng, frames):
    h, w, c, k, s, pad, simd, eb = (p[n] for n in ("IFM_H", "IFM_W", "C", "K", "STRIDE", "PAD", "SIMD", "ELEM_BITS"))
    x = rng.integers(0, 1 << eb, size=(frames, h, w, c))
    y = semantics.sliding_window(x, k, s, pad, p["PAD_VALUE"])
    nout = y[0].size // simd
    return _single(_ints(pack_beats(x.reshape(frames, -1), simd, eb)),
                   _ints(pack_beats(y.reshape(frames, -1), simd, eb)),
                   h * w * c // simd, nout, sliding_window_cycles(h, w, c, k, s, pad, simd))


def _case_maxpool(p, rng, frames):
    h, w, c, k, s, pe, eb = (p[n] for n in ("H", "W", "C", "K", "STRIDE", "PE", "ELEM_BITS"))
    x = _rand_int(rng, eb, bool(p["SIGNED"]), (frames, h, w, c))
    y = semantics.maxpool(x, k, s)
    return _single(_ints(pack_beats(x.reshape(frames, -1), pe, eb)),
                   _ints(pack_beats(y.reshape(frames, -1), pe, eb)),
                   h * w * c // pe, y[0].size // pe, sliding_window_cycles(h, w, c, k, s, 0, pe))


def _case_global_acc_pool(p, rng, frames):
    h, w, c, pe, ib = p["H"], p["W"], p["C"], p["PE"], p["IN_BITS"]
    x = _rand_int(rng, ib, bool(p["IN_SIGNED"]), (frames, h, w, c))
    y = semantics.global_acc_pool(x)
    return _single(_ints(pack_beats(x.reshape(frames, -1), pe, ib)), _ints(pack_beats(y, pe, p["OUT_BITS"])),
                   h * w * c // pe, c // pe, h * w * c // pe)


def _case_duplicate(p, rng, frames):
    wd = p["WIDTH"]
    v = [int.from_bytes(rng.bytes(-(-wd // 8)), "little") & ((1 << wd) - 1) for _ in range(frames)]
    return Case({"s_axis": v}, {"m0_axis": list(v), "m1_axis": list(v)}, 1, 1, 1)


def _case_add_streams(p, rng, frames):
    pe, sg = p["PE"], bool(p["SIGNED"])
    a = _rand_int(rng, p["A_BITS"], sg, (frames, pe))
    b = _rand_int(rng, p["B_BITS"], sg, (frames, pe))
    y = semantics.add_streams(a, b)
    return Case({"s0_axis": _ints(pack_beats(a, pe, p["A_BITS"])), "s1_axis": _ints(pack_beats(b, pe, p["B_BITS"]))},
                {"m_axis": _ints(pack_beats(y, pe, p["OUT_BITS"]))}, 1, 1, 1)


def _case_fixed_scale(p, rng, frames):
    c, pe, ib = p["C"], p["PE"], p["IN_BITS"]
    x = _rand_int(rng, ib, bool(p["IN_SIGNED"]), (frames, c))
    if p["MULT_MODE"] == 0:
        mult = _rand_khot(rng, p["K"], p["SB"], (c,))
    else:
        mult = _rand_int(rng, p["MULT_BITS"], True, (c,))
    bias = _rand_int(rng, p["BIAS_BITS"], True, (c,))
    y = semantics.fixed_scale(x, mult, bias, p["SHIFT"], p["OUT_BITS"], bool(p["OUT_SIGNED"]),
                              # semantics.fixed_scale rejects "half_up" with shift 0 (same as floor there)
                              "half_up" if p["ROUND"] and p["SHIFT"] > 0 else "floor")
    words, word_bits = fixed_scale_param_words(mult, bias, pe, p["MULT_BITS"], p["BIAS_BITS"], p["MULT_MODE"],
                                               p["K"], p["SB"])
    lw = fixed_scale_lane_bits(p["MULT_MODE"], p["MULT_BITS"], p["BIAS_BITS"], p["K"], p["SB"])
    assert word_bits == pe * lw
    return _single(_ints(pack_beats(x, pe, ib)), _ints(pack_beats(y, pe, p["OUT_BITS"])), c // pe, c // pe, c // pe,
                   {p["PARAMS_FILE"]: mem_text(words, pe * lw)})


NEW_CASES = {
    "int_mvu": _case_int_mvu,
    "sliding_window": _case_sliding_window,
    "maxpool": _case_maxpool,
    "global_acc_pool": _case_global_acc_pool,
    "duplicate": _case_duplicate,
    "add_streams": _case_add_streams,
    "fixed_scale": _case_fixed_scale,
    "streaming_concat": lambda p, rng, frames: Case(**StreamingConcat.testbench_case(p, rng, frames)),
}


def port_prefixes(engine: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input port prefixes, output port prefixes) of an engine."""
    return ENGINE_PORTS.get(engine, (("s_axis",), ("m_axis",)))
