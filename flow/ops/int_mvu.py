"""IntMVU: integer matrix-vector unit over unsigned n-bit input codes.

Weights are realised without multipliers where they allow: bipolar weights (+1/-1) by
add/subtract (WeightMode 0), K-hot weights (at most K signed powers of two) by shift-add
(WeightMode 1); other integer weights use a multiplier (WeightMode 2).
"""
from __future__ import annotations

import numpy as np

from flow.ops.base import bits_for, register
from flow.ops.mvu import MVUBase
from flow.ops.semantics import int_mvu, khot_terms

WEIGHT_MODES = {0: "add/subtract (bipolar weights)", 1: "shift-add (K-hot weights)", 2: "multiplier"}


def signed_bits(lo: int, hi: int) -> int:
    """Two's complement bits holding every integer in [lo, hi]."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


@register
class IntMVU(MVUBase):
    op_type = "IntMVU"
    rtl_module = "int_mvu"
    hls_function = "int_mvu"
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

    def compute(self, x: np.ndarray, thr) -> np.ndarray:
        return int_mvu(x, self.param("weights"), thr)

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

    def rtl_stage(self) -> dict:
        from flow.codegen.rtlgen import int_mvu_weight_words

        mw, mh, pe, simd = (self.attr(k) for k in ("MW", "MH", "PE", "SIMD"))
        t = self.attr("NumThresholds")
        mode = self.attr("WeightMode")
        k, sb, wbits = self.attr("K", 1), self.attr("ShiftBits", 1), self.attr("WeightBits")
        acc = self.acc_bits()
        tb = self.threshold_bits()
        words, wb = int_mvu_weight_words(self.param("weights"), pe, simd, mode, wbits, k, sb)
        memories = {"WEIGHTS_FILE": {"word_bits": pe * simd * wb, "words": words}, **self.threshold_memory(tb)}
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {"MW": mw, "MH": mh, "SIMD": simd, "PE": pe, "IN_BITS": self.attr("InputBits"),
                       "IN_SIGNED": 0, "W_MODE": mode, "W_BITS": wbits, "K": k, "SB": sb, "ACC_BITS": acc,
                       "USE_THRESH": int(t > 0), "T": max(t, 1), "TB": tb, "OUT_BITS": self.out_bits(),
                       "RAM_STYLE": self.attr("ram_style")},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": memories,
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import memory, stage
        from flow.codegen.rtlgen import int_mvu_weight_bits

        r = self.rtl_stage()
        p, mems = r["params"], r["memories"]
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
