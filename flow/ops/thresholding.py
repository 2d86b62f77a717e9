"""Thresholding: per-channel multi-threshold activation (also the input binariser on raw pixels)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import (Attr, Engine, Formal, HlsFunction, HWOp, bits_for, memory, pick, register, single_case,
                           sorted_thresholds, stage)
from flow.ops.packing import mem_text, thresh_words
from flow.ops.semantics import multithreshold


@register
class Thresholding(HWOp):
    """out[c] = #{t : in[c] >= thr[c, t]} for C channels, PE channels per beat."""

    op_type = "Thresholding"
    attrs = (
        Attr("NumChannels", int, finn="NumChannels", doc="channels C"),
        Attr("PE", int, 1, "PE", "channels per beat"),
        Attr("InputBits", int, doc="bits of an input element"),
        Attr("InputSigned", int, 0, doc="inputs in two's complement (else unsigned)"),
        Attr("NumVectors", int, 1, doc="vectors of C channels per frame (pixels)"),
    )
    lanes, channels = "PE", "NumChannels"
    folding_attrs = ("PE",)
    engine = Engine("thresholding", ("common/thresh_count.sv", "thresholding/thresholding.sv"), testbench="tb_engines")
    hls = HlsFunction("thresholding", "thresholding.h")
    finn_op = "Thresholding_hls"
    finn_aliases = ("Thresholding_Batch",)
    # two folds of one lane, 2-bit inputs against 3 thresholds; S1 and the output register hold a beat each
    formal = Formal(({"C": 2, "PE": 1, "IN_BITS": 2, "IN_SIGNED": 0, "T": 3, "TB": 2, "OUT_BITS": 2,
                      "THRESH_FILE": "thresh.mem"},), capacity=2, equiv=True)

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

    def shared(self) -> bool:
        """Every channel has the same thresholds (a per-tensor quantizer) over more than one
        fold: the memory then holds one word, which synthesis folds into constant compares."""
        thr = self.param("thresholds")
        return self.attr("NumChannels") > self.attr("PE") and bool(np.all(thr == thr[:1]))

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
        return self.executor()(x)

    def executor(self):
        c, thr = self.attr("NumChannels"), self.param("thresholds")
        return lambda x: multithreshold(x.reshape(-1, c), thr).reshape(x.shape)

    def cycles(self) -> int:
        return self.vectors() * self.attr("NumChannels") // self.attr("PE")

    def resources(self) -> dict:
        pe, t, tb = self.attr("PE"), self.param("thresholds").shape[1], self.threshold_bits()
        depth = self.attr("NumChannels") // pe
        comparators = pe * t * (max(tb, self.attr("InputBits")) // 2 + 1)
        mem_bits = depth * pe * t * tb
        lut_mem = 0 if depth == 1 or self.shared() else -(-mem_bits // 64)
        return {"LUT": comparators + lut_mem + 8, "FF": pe * self.out_bits() + 16, "BRAM": 0, "DSP": 0}

    def match_lanes(self, prev, nxt, after_file: bool = False) -> None:
        """After a folding file that does not name it: the lanes its consumer MVU takes."""
        if after_file and nxt is not None and nxt.paces:
            self.set_attr("PE", nxt.lanes_wanted())

    def rtl_params(self) -> dict:
        return {"C": self.attr("NumChannels"), "PE": self.attr("PE"), "IN_BITS": self.attr("InputBits"),
                "IN_SIGNED": self.attr("InputSigned"), "T": self.param("thresholds").shape[1],
                "TB": self.threshold_bits(), "OUT_BITS": self.out_bits(), "SHARED": int(self.shared())}

    def memories(self) -> dict:
        thr, tb, pe = self.stored_thresholds(), self.threshold_bits(), self.attr("PE")
        if self.shared():
            thr = thr[:pe]  # one word, every fold's
        return {"THRESH_FILE": {"word_bits": pe * thr.shape[1] * tb,
                                "words": thresh_words(thr, pe, tb, bool(self.attr("InputSigned")))}}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["PE"] * p["IN_BITS"]], [p["PE"] * p["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        c, pe, ib, tb, t = p["C"], p["PE"], p["IN_BITS"], p["TB"], p["T"]
        lo, hi = (-(1 << (ib - 1)), 1 << (ib - 1)) if p["IN_SIGNED"] else (0, 1 << ib)
        tlo, thi = (-(1 << (tb - 1)), 1 << (tb - 1)) if p["IN_SIGNED"] else (0, 1 << tb)
        v = rng.integers(lo, hi, size=(frames, c))
        thr = sorted_thresholds(rng, c, t, max(lo, tlo), min(hi, thi))
        if p.get("SHARED"):
            thr[:] = thr[0]
        y = multithreshold(v, thr)
        stored = thr[:pe] if p.get("SHARED") else thr
        mems = {p["THRESH_FILE"]: mem_text(thresh_words(stored, pe, tb), pe * t * tb)}
        return single_case(v, pe, ib, y, pe, p["OUT_BITS"], c // pe, mems)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        pe, ib, t = pick(rng, 1, 4), pick(rng, 1, 8), pick(rng, 1, 7)
        c = pe * pick(rng, 1, 4)
        return {"C": c, "PE": pe, "IN_BITS": ib, "IN_SIGNED": pick(rng, 0, 1), "T": t,
                "TB": pick(rng, 1, ib + 1), "OUT_BITS": bits_for(t), "SHARED": pick(rng, 0, 1) if c > pe else 0,
                "THRESH_FILE": "thresh.mem"}

    def hls_stage(self) -> dict:
        p = self.rtl_params()
        args = [p["C"], p["PE"], self.vectors(), p["IN_BITS"], p["IN_SIGNED"], p["T"], p["TB"], p["OUT_BITS"],
                p["SHARED"]]
        return stage(self, args, [memory("thresholds", **self.memories()["THRESH_FILE"])])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.vectors(), self.attr("NumChannels")], "pe": self.attr("PE"),
                "simd": 1}
