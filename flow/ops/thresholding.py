"""Thresholding: per-channel multi-threshold activation (also the input binariser on raw pixels)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, bits_for, register
from flow.ops.semantics import multithreshold
from flow.codegen.rtlgen import thresh_words


@register
class Thresholding(HWOp):
    """out[c] = #{t : in[c] >= thr[c, t]} for C channels, PE channels per beat."""

    op_type = "Thresholding"
    rtl_module = "thresholding"
    hls_function = "thresholding"
    folding_attrs = ("PE",)

    def vectors(self) -> int:
        return self.attr("NumVectors", 1)

    def in_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("InputBits"), self.vectors() * self.attr("NumChannels"))

    def out_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.out_bits(), self.vectors() * self.attr("NumChannels"))

    def out_bits(self) -> int:
        return bits_for(self.param("thresholds").shape[1])

    def stored_thresholds(self) -> np.ndarray:
        """The thresholds clamped to [lo, hi + 1] of the input range: the same count for
        every input value (lo or below: always reached; above hi: never)."""
        ib = self.attr("InputBits")
        lo, hi = (-(1 << (ib - 1)), (1 << (ib - 1)) - 1) if self.attr("InputSigned") else (0, (1 << ib) - 1)
        return np.clip(self.param("thresholds"), lo, hi + 1)

    def threshold_bits(self) -> int:
        thr = self.stored_thresholds()
        if self.attr("InputSigned"):
            lim = max(abs(int(thr.min())), abs(int(thr.max())) + 1)
            return bits_for(lim) + 1
        return bits_for(int(thr.max()))

    def check(self) -> None:
        c, pe = self.attr("NumChannels"), self.attr("PE")
        if c % pe:
            raise ValueError(f"{self.name}: PE={pe} does not divide NumChannels={c}")
        thr = self.param("thresholds")
        if thr.shape[0] != c or np.any(np.diff(thr, axis=1) < 0):
            raise ValueError(f"{self.name}: thresholds must be (C, T) and ascending per channel")
        if not self.attr("InputSigned") and thr.min() < 0:
            raise ValueError(f"{self.name}: negative threshold for an unsigned input")

    def execute(self, x: np.ndarray) -> np.ndarray:
        c = self.attr("NumChannels")
        return multithreshold(x.reshape(-1, c), self.param("thresholds")).reshape(x.shape)

    def cycles(self) -> int:
        return self.vectors() * self.attr("NumChannels") // self.attr("PE")

    def resources(self) -> dict:
        pe, t, tb = self.attr("PE"), self.param("thresholds").shape[1], self.threshold_bits()
        depth = self.attr("NumChannels") // pe
        comparators = pe * t * (max(tb, self.attr("InputBits")) // 2 + 1)
        mem_bits = depth * pe * t * tb
        lut_mem = 0 if depth == 1 else -(-mem_bits // 64)
        return {"LUT": comparators + lut_mem + 8, "FF": pe * self.out_bits() + 16, "BRAM": 0, "DSP": 0}

    def rtl_stage(self) -> dict:
        thr = self.stored_thresholds()
        tb = self.threshold_bits()
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {
                "C": self.attr("NumChannels"),
                "PE": self.attr("PE"),
                "IN_BITS": self.attr("InputBits"),
                "IN_SIGNED": self.attr("InputSigned"),
                "T": thr.shape[1],
                "TB": tb,
                "OUT_BITS": self.out_bits(),
            },
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": {"THRESH_FILE": {"word_bits": self.attr("PE") * thr.shape[1] * tb,
                                          "words": thresh_words(thr, self.attr("PE"), tb,
                                                                bool(self.attr("InputSigned")))}},
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import memory, stage

        r = self.rtl_stage()
        p = r["params"]
        args = [p["C"], p["PE"], self.vectors(), p["IN_BITS"], p["IN_SIGNED"], p["T"], p["TB"], p["OUT_BITS"]]
        return stage(self, args, [memory("thresholds", **r["memories"]["THRESH_FILE"])])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.vectors(), self.attr("NumChannels")], "pe": self.attr("PE"),
                "simd": 1}
