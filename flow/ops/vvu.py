"""VVU: vector-vector unit, the depthwise convolution over a SlidingWindow's window stream.

Each output pixel's window arrives in (ky, kx, c) order (Taps = kernel taps, C channels);
channel c's output is the dot product of its own Taps window elements with its own Taps
weights (FINN's VectorVectorActivation), optionally followed by multi-thresholding. As the
IntMVU, weights are realised without multipliers where they allow: add/subtract for
bipolar weights (WeightMode 0), shift-add for K-hot weights (WeightMode 1), a multiplier
otherwise (WeightMode 2).

Folding: PE channels and SIMD taps per beat, beat j of a window = (sf, nf) with
nf = j % NF, sf = j // NF (NF = C/PE, SF = Taps/SIMD); element s*PE+p of the beat is tap
sf*SIMD+s of channel nf*PE+p. A beat is a run of consecutive window elements, so SIMD > 1
needs PE = C. Cycles per frame: NumVectors * NF * SF.
"""
from __future__ import annotations

import math

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import (Attr, Engine, Formal, HlsFunction, HWOp, bits_for, divisors, memory, pick, rand_int, rand_khot,
                           register, single_case, sorted_thresholds, stage)
from flow.ops.int_mvu import WEIGHT_MODES, signed_bits
from flow.ops.packing import khot_fields, lane_fields, mem_text, thresh_words
from flow.ops.semantics import khot_terms, multithreshold, vvu

CHANNELS = "Channels"


def weight_field_bits(mode: int, w_bits: int, k: int, sb: int) -> int:
    """Bits of one lane's weight field (WB): 1 / K*(2+SB) / W_BITS for modes 0 / 1 / 2."""
    return {0: 1, 1: k * (2 + sb), 2: w_bits}[mode]


def weight_fields(w: np.ndarray, mode: int, w_bits: int, k: int, sb: int) -> np.ndarray:
    """Integer weights -> non-negative field values (object ints), as int_mvu.sv stores them
    (mode 1: flow.ops.packing.khot_fields)."""
    w = np.asarray(w, dtype=np.int64)
    if mode == 0:
        return (w > 0).astype(object)
    if mode == 2:
        return (w & ((1 << w_bits) - 1)).astype(object)
    return khot_fields(w, k, sb)


def weight_words(w: np.ndarray, pe: int, simd: int, wb: int, fields: np.ndarray) -> list[int]:
    """Weight memory of vvu.sv: word sf*NF+nf, lane s*PE+p at [(s*PE+p)*WB +: WB] holding
    the field of w[nf*PE+p, sf*SIMD+s] (w is (C, Taps)): the MVU lane layout of the
    transposed (Taps, C) fields with SIMD taps as rows and PE channels as columns."""
    if np.shape(w) != np.shape(fields):
        raise ValueError("weights and fields differ in shape")
    return lane_fields(np.asarray(fields, dtype=object).T, simd, pe, wb)


def threshold_words(thr: np.ndarray, pe: int, tb: int) -> list[int]:
    """Threshold memory (rtl/common/mvu_output.sv): word nf, [(p*T+t)*TB +: TB] = thr[nf*PE+p, t],
    two's complement."""
    return thresh_words(thr, pe, tb, signed=True)


def engine_params(c, taps, pe, simd, in_bits, mode, w_bits=4, k=2, sb=2, use_thresh=0, t=1) -> dict:
    """A legal vvu.sv parameter set with ACC_BITS / TB / OUT_BITS sized for the worst case
    of the weights `_random_weights` draws."""
    wmax = {0: 1, 1: k << max(0, (1 << sb) - 2), 2: 1 << (w_bits - 1)}[mode]
    acc = (taps * ((1 << in_bits) - 1) * wmax).bit_length() + 1
    return {"C": c, "TAPS": taps, "PE": pe, "SIMD": simd, "IN_BITS": in_bits, "W_MODE": mode, "W_BITS": w_bits,
            "K": k, "SB": sb, "ACC_BITS": acc, "USE_THRESH": use_thresh, "T": t, "TB": acc + 1,
            "OUT_BITS": max(1, t.bit_length()) if use_thresh else acc, "WEIGHTS_FILE": "weights.mem",
            "THRESH_FILE": "thresh.mem" if use_thresh else "", "RAM_STYLE": "auto"}


@register
class VVU(HWOp):
    op_type = "VVU"
    attrs = (
        Attr(CHANNELS, int, finn="Channels", doc="channels C (one kernel each)"),
        Attr("Taps", int, doc="kernel taps per window (K*K)"),
        Attr("NumVectors", int, 1, doc="windows (output pixels) per frame"),
        Attr("PE", int, 1, finn="PE", doc="channels per beat"),
        Attr("SIMD", int, 1, finn="SIMD", doc="taps per beat (SIMD > 1 needs PE = C)"),
        Attr("InputBits", int, finn="inputDataType", doc="unsigned input code bits"),
        Attr("WeightMode", int, doc="0 add/subtract, 1 shift-add, 2 multiplier"),
        Attr("WeightBits", int, finn="weightDataType", doc="two's complement weight bits"),
        Attr("K", int, 1, doc="power-of-two terms per K-hot weight"),
        Attr("ShiftBits", int, 1, doc="bits of a K-hot term's shift"),
        Attr("NumThresholds", int, 0, doc="thresholds per channel (0: accumulator output)"),
        Attr("ram_style", str, "auto", finn="ram_style"),
    )
    lanes = "PE"
    channels = CHANNELS
    folding_attrs = ("PE", "SIMD")
    paces = True
    tb_frames = 12
    engine = Engine("vvu", ("common/lane_product.sv", "common/thresh_count.sv", "common/mvu_output.sv", "vvu/vvu.sv"))
    # C 2, TAPS 2, PE 1, SIMD 1; capacity: 6 input beats + the 2 of the output's skid register
    formal = Formal((engine_params(2, 2, 1, 1, 2, 2, w_bits=2),), capacity=8, equiv=True)
    hls = HlsFunction("vvu", "vvu.h")
    finn_op = "VVAU_hls"
    finn_aliases = ("VectorVectorActivation", "Vector_Vector_Activate_Batch")

    # -- geometry ----------------------------------------------------------------------
    def dims(self) -> tuple[int, int, int, int, int]:
        """(C, Taps, NumVectors, PE, SIMD)."""
        return tuple(self.attr(k) for k in (CHANNELS, "Taps", "NumVectors", "PE", "SIMD"))

    def folds(self) -> tuple[int, int]:
        c, taps, _v, pe, simd = self.dims()
        return c // pe, taps // simd

    def has_thresholds(self) -> bool:
        return self.attr("NumThresholds") > 0

    def acc_range(self) -> tuple[int, int]:
        w = self.param("weights")
        umax = (1 << self.attr("InputBits")) - 1
        return int(np.minimum(w, 0).sum(axis=1).min()) * umax, int(np.maximum(w, 0).sum(axis=1).max()) * umax

    def acc_bits(self) -> int:
        return signed_bits(*self.acc_range())

    def out_bits(self) -> int:
        return bits_for(self.attr("NumThresholds")) if self.has_thresholds() else self.acc_bits()

    def stored_thresholds(self) -> np.ndarray:
        """Thresholds clamped to [lo, hi + 1] of the accumulator range (as MVUBase)."""
        lo, hi = self.acc_range()
        return np.clip(self.param("thresholds"), lo, hi + 1)

    def threshold_bits(self) -> int:
        acc = self.acc_bits()
        if not self.has_thresholds():
            return acc
        thr = self.stored_thresholds()
        return max(acc, signed_bits(int(thr.min()), int(thr.max())))

    def weight_bits(self) -> int:
        return weight_field_bits(self.attr("WeightMode"), self.attr("WeightBits"), self.attr("K"), self.attr("ShiftBits"))

    # -- streams and semantics ---------------------------------------------------------
    def in_stream(self) -> Stream:
        c, taps, v, pe, simd = self.dims()
        return Stream(pe * simd, self.attr("InputBits"), v * taps * c)

    def out_stream(self) -> Stream:
        c, _taps, v, pe, _simd = self.dims()
        return Stream(pe, self.out_bits(), v * c)

    def check(self) -> None:
        c, taps, _v, pe, simd = self.dims()
        if c % pe:
            raise ValueError(f"{self.name}: PE={pe} does not divide Channels={c}")
        if taps % simd:
            raise ValueError(f"{self.name}: SIMD={simd} does not divide Taps={taps}")
        if simd > 1 and pe != c:
            raise ValueError(f"{self.name}: SIMD={simd} > 1 needs PE = Channels ({c}); a beat holds consecutive "
                             "window elements")
        w = self.param("weights")
        if w.shape != (c, taps):
            raise ValueError(f"{self.name}: weights must be (Channels, Taps)")
        mode = self.attr("WeightMode")
        if mode == 0 and not np.isin(w, (-1, 1)).all():
            raise ValueError(f"{self.name}: WeightMode 0 needs weights of +1/-1")
        if mode == 1:
            khot_terms(w, self.attr("K"))

    def execute(self, x: np.ndarray) -> np.ndarray:
        c, taps, v, *_ = self.dims()
        thr = self.param("thresholds") if self.has_thresholds() else None
        return vvu(x.reshape(x.shape[0], v, taps, c), self.param("weights"), thr).reshape(x.shape[0], -1)

    def cycles(self) -> int:
        nf, sf = self.folds()
        return self.attr("NumVectors") * nf * sf

    def beats_needed(self) -> np.ndarray:
        """Output beat (v, nf) leaves with input beat (v, SF-1, nf) of its window."""
        nf, sf = self.folds()
        v = np.arange(self.attr("NumVectors") * nf, dtype=np.int64)
        return (v // nf) * nf * sf + (sf - 1) * nf + v % nf + 1

    def resources(self) -> dict:
        c, taps, _v, pe, simd = self.dims()
        ib, acc, mode = self.attr("InputBits"), self.acc_bits(), self.attr("WeightMode")
        per_lane = {0: ib + 1, 1: self.attr("K") * (ib + 2), 2: 0}[mode]
        t = self.attr("NumThresholds")
        nf = c // pe
        lut = pe * simd * per_lane + pe * acc * 2 + pe * t * acc // 2 + (0 if nf == 1 else -(-nf * pe * acc // 64))
        mem_bits = c * taps * self.weight_bits()
        bram = -(-mem_bits // 36864) if mem_bits > 16384 else 0
        lut += 0 if bram else -(-mem_bits // 64)
        return {"LUT": lut, "FF": pe * (acc + 1) * 2 + pe * simd * ib + 32, "BRAM": bram,
                "DSP": pe * simd if mode == 2 else 0}

    # -- folding -------------------------------------------------------------------------
    def fold_options(self) -> list[tuple[int, int]]:
        """(PE, SIMD) choices from the fewest lanes up: PE over the channels, then SIMD over the taps."""
        c, taps = self.attr(CHANNELS), self.attr("Taps")
        return [(pe, 1) for pe in divisors(c)] + [(c, s) for s in divisors(taps) if s > 1]

    def fold_for(self, target: int, prev, nxt) -> None:
        """The fewest lanes meeting `target` cycles per frame (all lanes when none does)."""
        c, taps, v, *_ = self.dims()
        options = self.fold_options()
        pe, simd = next(((p, s) for p, s in options if v * (c // p) * (taps // s) <= target), options[-1])
        self.set_attr("PE", pe)
        self.set_attr("SIMD", simd)

    def folding_cycles(self) -> set[int]:
        c, taps, v, *_ = self.dims()
        return {v * (c // pe) * (taps // simd) for pe, simd in self.fold_options()}

    def lanes_wanted(self) -> int:
        """Its input lanes where they divide the channels (a sliding window's lanes), else the
        channels (a width converter widens the rest)."""
        c, _taps, _v, pe, simd = self.dims()
        return math.gcd(pe * simd, c)

    # -- RTL engine --------------------------------------------------------------------
    def rtl_params(self) -> dict:
        c, taps, _v, pe, simd = self.dims()
        t = self.attr("NumThresholds")
        return {"C": c, "TAPS": taps, "PE": pe, "SIMD": simd, "IN_BITS": self.attr("InputBits"),
                "W_MODE": self.attr("WeightMode"), "W_BITS": self.attr("WeightBits"), "K": self.attr("K"),
                "SB": self.attr("ShiftBits"), "ACC_BITS": self.acc_bits(), "USE_THRESH": int(t > 0), "T": max(t, 1),
                "TB": self.threshold_bits(), "OUT_BITS": self.out_bits(), "RAM_STYLE": self.attr("ram_style")}

    def memories(self) -> dict:
        _c, _taps, _v, pe, simd = self.dims()
        w, wb = self.param("weights"), self.weight_bits()
        fields = weight_fields(w, self.attr("WeightMode"), self.attr("WeightBits"), self.attr("K"), self.attr("ShiftBits"))
        out = {"WEIGHTS_FILE": {"word_bits": pe * simd * wb, "words": weight_words(w, pe, simd, wb, fields)}}
        if self.has_thresholds():
            tb = self.threshold_bits()
            out["THRESH_FILE"] = {"word_bits": pe * self.attr("NumThresholds") * tb,
                                  "words": threshold_words(self.stored_thresholds(), pe, tb)}
        return out

    @classmethod
    def port_widths(cls, params: dict) -> tuple[list[int], list[int]]:
        return [params["PE"] * params["SIMD"] * params["IN_BITS"]], [params["PE"] * params["OUT_BITS"]]

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        c = int(rng.choice([2, 3, 4, 6]))
        taps = int(rng.choice([1, 4, 9]))
        simd = int(rng.choice([s for s in (1, 3, 9) if taps % s == 0])) if rng.random() < 0.4 else 1
        pe = c if simd > 1 else int(rng.choice(divisors(c)))
        return engine_params(c, taps, pe, simd, pick(rng, 1, 4), pick(rng, 0, 2), w_bits=pick(rng, 2, 4),
                             use_thresh=pick(rng, 0, 1), t=pick(rng, 1, 3))

    @classmethod
    def testbench_case(cls, params: dict, rng: np.random.Generator, frames: int):
        """Stimulus and expected beats of vvu.sv; a frame is one window."""
        p = params
        c, taps, pe, simd, ib, mode = (p[k] for k in ("C", "TAPS", "PE", "SIMD", "IN_BITS", "W_MODE"))
        x = rng.integers(0, 1 << ib, size=(frames, taps, c))
        w = _random_weights(rng, mode, p["W_BITS"], p["K"], p["SB"], (c, taps))
        wb = weight_field_bits(mode, p["W_BITS"], p["K"], p["SB"])
        fields = weight_fields(w, mode, p["W_BITS"], p["K"], p["SB"])
        mems = {p["WEIGHTS_FILE"]: mem_text(weight_words(w, pe, simd, wb, fields), pe * simd * wb)}
        y = acc = vvu(x[:, None], w)[:, 0]
        if p["USE_THRESH"]:
            thr = sorted_thresholds(rng, c, p["T"], int(acc.min()) - 2, int(acc.max()) + 3)
            mems[p["THRESH_FILE"]] = mem_text(threshold_words(thr, pe, p["TB"]), pe * p["T"] * p["TB"])
            y = multithreshold(acc, thr)
        return single_case(x, pe * simd, ib, y, pe, p["OUT_BITS"], (c // pe) * (taps // simd), mems)

    # -- HLS stream function -----------------------------------------------------------
    def hls_config(self) -> dict:
        p = self.rtl_params()
        mems = self.memories()
        return {"C": p["C"], "TAPS": p["TAPS"], "PE": p["PE"], "SIMD": p["SIMD"], "VECS": self.attr("NumVectors"),
                "IB": p["IN_BITS"], "W_MODE": p["W_MODE"], "WB": self.weight_bits(), "K": p["K"], "SB": p["SB"],
                "ACC": p["ACC_BITS"], "USE_THRESH": p["USE_THRESH"], "T": p["T"], "TB": p["TB"], "OB": p["OUT_BITS"],
                "WCH": _chunks(mems["WEIGHTS_FILE"]["word_bits"]),
                "TCH": _chunks(mems["THRESH_FILE"]["word_bits"]) if "THRESH_FILE" in mems else 1}

    def hls_stage(self) -> dict:
        """The call of `vvu<config>` in the generated top: the named config struct (hls_config)
        and the memories."""
        ram = self.attr("ram_style")
        mems = [memory(key, ram_style=ram, **m) for key, m in zip(("weights", "thresholds"), self.memories().values())]
        return {**stage(self, [], mems, out_signed=not self.has_thresholds()), "config": self.hls_config()}

    def describe(self) -> dict:
        c, taps, v, pe, simd = self.dims()
        return {**super().describe(), "shape": [c, taps], "vectors": v, "pe": pe, "simd": simd,
                "weights": WEIGHT_MODES[self.attr("WeightMode")], "acc_bits": self.acc_bits()}


def _random_weights(rng, mode: int, w_bits: int, k: int, sb: int, shape) -> np.ndarray:
    if mode == 0:
        return rng.choice(np.array([-1, 1]), size=shape)
    if mode == 1:  # sums of up to k signed powers of two with shifts < 2**sb - 1
        return rand_khot(rng, k, sb, shape)
    return rand_int(rng, w_bits, True, shape)


def _chunks(word_bits: int) -> int:
    return max(1, -(-word_bits // 64))
