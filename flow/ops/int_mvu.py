"""IntMVU: integer matrix-vector unit over unsigned n-bit input codes.

Weights are realised without multipliers where they allow: bipolar weights (+1/-1) by
add/subtract (WeightMode 0), K-hot weights (at most K signed powers of two) by shift-add
(WeightMode 1); other integer weights use a multiplier (WeightMode 2).
"""
from __future__ import annotations

import numpy as np

from flow.ops.base import (Attr, Engine, Formal, HlsFunction, bits_for, memory, pick, rand_int, rand_khot, register,
                           single_case, sorted_thresholds, stage)
from flow.ops.mvu import MVU_ATTRS, MVUBase
from flow.ops.packing import khot_fields, lane_fields, mem_text, thresh_words
from flow.ops.semantics import int_mvu, int_mvu_kernel, khot_terms, mvu_conv_kernel

WEIGHT_MODES = {0: "add/subtract (bipolar weights)", 1: "shift-add (K-hot weights)", 2: "multiplier"}


def int_mvu_weight_words(w, pe: int, simd: int, mode: int, w_bits: int = 1, k: int = 1,
                         sb: int = 1) -> tuple[list[int], int]:
    """Integer MVU weight memory (int_mvu.sv) -> (words, WB): word nf*SF+sf (PE*SIMD*WB bits),
    lane (p, s) field at [(p*SIMD+s)*WB +: WB] for w[nf*PE+p, sf*SIMD+s].

    mode 0 (bipolar, WB=1): w in {-1,+1}, stored as 1 for +1, 0 for -1.
    mode 1 (K-hot, WB=k*(2+sb)): see `flow.ops.packing.khot_fields`.
    mode 2 (plain, WB=w_bits): two's complement."""
    w = np.asarray(w, dtype=np.int64)
    if mode == 0:
        if not np.isin(w, (-1, 1)).all():
            raise ValueError("bipolar weights must be -1 or +1")
        return lane_fields((w > 0).astype(np.int64), pe, simd, 1), 1
    if mode == 1:
        return lane_fields(khot_fields(w, k, sb), pe, simd, k * (2 + sb)), k * (2 + sb)
    if mode == 2:
        lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
        if w.min(initial=0) < lo or w.max(initial=0) > hi:
            raise ValueError(f"weights do not fit in {w_bits}-bit two's complement")
        return lane_fields(w & ((1 << w_bits) - 1), pe, simd, w_bits), w_bits
    raise ValueError(f"mode must be 0, 1 or 2, got {mode}")


def int_mvu_weight_bits(mode: int, w_bits: int = 1, k: int = 1, sb: int = 1) -> int:
    """Bits of one lane's weight field (WB) in the int_mvu weight memory."""
    return {0: 1, 1: k * (2 + sb), 2: w_bits}[mode]


def int_mvu_max_weight(mode: int, w_bits: int, k: int, sb: int) -> int:
    """Largest |w| the testbench case draws (sizes ACC_BITS)."""
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


def signed_bits(lo: int, hi: int) -> int:
    """Two's complement bits holding every integer in [lo, hi]."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


@register
class IntMVU(MVUBase):
    op_type = "IntMVU"
    attrs = (*MVU_ATTRS,
             Attr("InputBits", int, doc="bits of the unsigned input codes"),
             Attr("WeightMode", int, doc="0 add/subtract (bipolar), 1 shift-add (K-hot), 2 multiplier"),
             Attr("WeightBits", int, doc="two's complement bits of a stored weight (WeightMode 2)"),
             Attr("K", int, 1, doc="power-of-two terms per weight (WeightMode 1)"),
             Attr("ShiftBits", int, 1, doc="bits of a term's shift (WeightMode 1)"))
    engine = Engine("int_mvu", ("common/lane_product.sv", "common/mvu_sequencer.sv", "common/thresh_count.sv",
                                "common/mvu_output.sv", "common/mvu_pipeline.sv", "mvu_int/int_dot.sv",
                                "mvu_int/int_mvu.sv"))
    # MW 4, MH 2, SIMD 2, PE 1; capacity: 7 input beats + one in the output's skid register
    formal = Formal((int_mvu_params(4, 2, 2, 1, 2, 1, 0, w_bits=2),), capacity=8, equiv=True)
    hls = HlsFunction("int_mvu", "mvu_int.h")
    signed_acc = True

    def input_bits(self) -> int:
        return self.attr("InputBits")

    def acc_range(self) -> tuple[int, int]:
        """Worst-case accumulator bounds from the actual weights (overflow is impossible)."""
        w = self.param("weights")
        umax = (1 << self.attr("InputBits")) - 1
        lo = int(np.minimum(w, 0).sum(axis=1).min()) * umax
        hi = int(np.maximum(w, 0).sum(axis=1).max()) * umax
        return lo, hi

    def acc_bits(self) -> int:
        return signed_bits(*self.acc_range())

    def out_bits(self) -> int:
        return bits_for(self.attr("NumThresholds")) if self.has_thresholds() else self.acc_bits()

    def threshold_bits(self) -> int:
        """The accumulator width, one more where a stored threshold needs it (hi + 1 = "never"
        when hi is the largest value of the accumulator width; a 1-bit accumulator)."""
        acc = self.acc_bits()
        if not self.has_thresholds():
            return acc
        thr = self.stored_thresholds()
        return max(acc, signed_bits(int(thr.min()), int(thr.max())))

    def check_weights(self, w: np.ndarray) -> None:
        mode = self.attr("WeightMode")
        if mode == 0 and not np.isin(w, (-1, 1)).all():
            raise ValueError(f"{self.name}: WeightMode 0 needs weights of +1/-1")
        if mode == 1:
            khot_terms(w, self.attr("K"))  # raises when a weight needs more than K terms

    def kernel(self, w: np.ndarray, thr):
        return int_mvu_kernel(w, thr)

    def conv_kernel(self, w: np.ndarray, thr, window):
        return mvu_conv_kernel(False, w, thr, window)

    def resources(self) -> dict:
        mw, mh, pe, simd = (self.attr(k) for k in ("MW", "MH", "PE", "SIMD"))
        ib, acc, mode = self.attr("InputBits"), self.acc_bits(), self.attr("WeightMode")
        per_lane = {0: ib + 1, 1: self.attr("K") * (ib + 2), 2: 0}[mode]
        lanes = pe * simd
        lut = lanes * per_lane + pe * acc * 2 + pe * self.attr("NumThresholds") * acc // 2
        dsp = lanes if mode == 2 else 0
        wb = {0: 1, 1: self.attr("K") * (2 + 5), 2: self.attr("WeightBits")}[mode]
        mem_bits = mw * mh * wb
        bram = -(-mem_bits // 36864) if mem_bits > 16384 else 0
        lut += 0 if bram else -(-mem_bits // 64)
        return {"LUT": lut, "FF": pe * (acc + 1) * 2 + simd * ib + 32, "BRAM": bram, "DSP": dsp}

    def rtl_params(self) -> dict:
        t, mode = self.attr("NumThresholds"), self.attr("WeightMode")
        return {"MW": self.attr("MW"), "MH": self.attr("MH"), "SIMD": self.attr("SIMD"), "PE": self.attr("PE"),
                "IN_BITS": self.attr("InputBits"), "IN_SIGNED": 0, "W_MODE": mode, "W_BITS": self.attr("WeightBits"),
                "K": self.attr("K"), "SB": self.attr("ShiftBits"), "ACC_BITS": self.acc_bits(),
                "USE_THRESH": int(t > 0), "T": max(t, 1), "TB": self.threshold_bits(), "OUT_BITS": self.out_bits(),
                "RAM_STYLE": self.attr("ram_style")}

    def memories(self) -> dict:
        pe, simd = self.attr("PE"), self.attr("SIMD")
        words, wb = int_mvu_weight_words(self.param("weights"), pe, simd, self.attr("WeightMode"),
                                         self.attr("WeightBits"), self.attr("K"), self.attr("ShiftBits"))
        return {"WEIGHTS_FILE": {"word_bits": pe * simd * wb, "words": words},
                **self.threshold_memory(self.threshold_bits())}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["SIMD"] * p["IN_BITS"]], [p["PE"] * p["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        mw, mh, simd, pe, mode = p["MW"], p["MH"], p["SIMD"], p["PE"], p["W_MODE"]
        x = rand_int(rng, p["IN_BITS"], bool(p["IN_SIGNED"]), (frames, mw))
        if mode == 0:
            w = rng.choice(np.array([-1, 1]), size=(mh, mw))
        elif mode == 1:
            w = rand_khot(rng, p["K"], p["SB"], (mh, mw))
        else:
            w = rand_int(rng, p["W_BITS"], True, (mh, mw))
        words, wb = int_mvu_weight_words(w, pe, simd, mode, p["W_BITS"], p["K"], p["SB"])
        assert wb == int_mvu_weight_bits(mode, p["W_BITS"], p["K"], p["SB"])
        mems = {p["WEIGHTS_FILE"]: mem_text(words, pe * simd * wb)}
        thr = None
        if p["USE_THRESH"]:
            acc = int_mvu(x, w)
            thr = sorted_thresholds(rng, mh, p["T"], int(acc.min()) - 2, int(acc.max()) + 3)
            mems[p["THRESH_FILE"]] = mem_text(thresh_words(thr, pe, p["TB"]), pe * p["T"] * p["TB"])
        y = int_mvu(x, w, thr)
        return single_case(x, simd, p["IN_BITS"], y, pe, p["OUT_BITS"], (mh // pe) * (mw // simd), mems)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        simd, sf, pe, nf = pick(rng, 1, 6), pick(rng, 1, 4), pick(rng, 1, 4), pick(rng, 1, 3)
        mode, use_thresh = pick(rng, 0, 2), pick(rng, 0, 1)
        return int_mvu_params(simd * sf, pe * nf, simd, pe, pick(rng, 1, 6), pick(rng, 0, 1), mode,
                              w_bits=pick(rng, 2, 5), k=pick(rng, 1, 3), sb=pick(rng, 1, 3), use_thresh=use_thresh,
                              t=pick(rng, 1, 4) if use_thresh else 1,
                              ram_style=str(rng.choice(["auto", "block", "distributed"])))

    def hls_stage(self) -> dict:
        p, mems = self.rtl_params(), self.memories()
        wb = int_mvu_weight_bits(p["W_MODE"], p["W_BITS"], p["K"], p["SB"])
        args = [p["MW"], p["MH"], p["SIMD"], p["PE"], self.vectors(), p["IN_BITS"], p["W_MODE"], wb, p["K"],
                p["SB"], p["ACC_BITS"]]
        ram = self.attr("ram_style")
        memories = [memory("weights", ram_style=ram, **mems["WEIGHTS_FILE"])]
        if p["USE_THRESH"]:
            args += [p["T"], p["TB"], p["OUT_BITS"]]
            memories.append(memory("thresholds", ram_style=ram, **mems["THRESH_FILE"]))
        return stage(self, args, memories, out_signed=not p["USE_THRESH"])

    def describe(self) -> dict:
        return {**super().describe(), "weights": WEIGHT_MODES[self.attr("WeightMode")], "acc_bits": self.acc_bits()}
