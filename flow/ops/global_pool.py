"""GlobalAccPool: NHWC global sum pooling (the numerator of a global average pool); with
NumVectors > 1, the sums of NumVectors consecutive H x W x C windows (a windowed sum pool
after a sliding window)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import Attr, Engine, Formal, HlsFunction, HWOp, pick, rand_int, register, single_case, stage
from flow.ops.semantics import global_acc_pool


@register
class GlobalAccPool(HWOp):
    op_type = "GlobalAccPool"
    attrs = (
        Attr("H", int, doc="image height"),
        Attr("W", int, doc="image width"),
        Attr("C", int, finn="NumChannels", doc="channels"),
        Attr("PE", int, 1, "PE", "channels per beat"),
        Attr("InputBits", int, doc="bits of an input element"),
        Attr("InputSigned", int, 0, doc="inputs in two's complement"),
        Attr("OutputBits", int, doc="bits of a sum"),
        Attr("NumVectors", int, 1, doc="H x W x C windows per frame, each summed on its own"),
    )
    lanes, channels = "PE", "C"
    folding_attrs = ("PE",)
    engine = Engine("global_acc_pool", ("global_pool/global_acc_pool.sv",))
    formal = Formal(({"H": 1, "W": 2, "C": 2, "PE": 1, "IN_BITS": 2, "IN_SIGNED": 0, "OUT_BITS": 3},), capacity=4,
                    equiv=True)
    hls = HlsFunction("global_acc_pool", "global_pool.h")

    def dims(self):
        return tuple(self.attr(k) for k in ("H", "W", "C"))

    def vectors(self) -> int:
        return self.attr("NumVectors")

    def in_stream(self) -> Stream:
        h, w, c = self.dims()
        return Stream(self.attr("PE"), self.attr("InputBits"), self.vectors() * h * w * c)

    def out_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("OutputBits"), self.vectors() * self.attr("C"))

    def check(self) -> None:
        if self.attr("C") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide C={self.attr('C')}")
        h, w, _c = self.dims()
        ib, signed = self.attr("InputBits"), self.attr("InputSigned")
        need = ib + (h * w - 1).bit_length() + (0 if signed else 1)
        if self.attr("OutputBits") < need - (0 if signed else 1):
            raise ValueError(f"{self.name}: OutputBits={self.attr('OutputBits')} cannot hold a sum of {h * w} inputs")

    def execute(self, x: np.ndarray) -> np.ndarray:
        h, w, c = self.dims()
        n = x.shape[0]
        return global_acc_pool(x.reshape(n * self.vectors(), h, w, c)).reshape(n, -1)

    def beats_needed(self) -> np.ndarray:
        """Nothing of a window's sums leaves before the whole window is in."""
        nv = self.vectors()
        per_in, per_out = self.in_stream().beats // nv, self.out_stream().beats // nv
        return np.repeat(np.arange(1, nv + 1, dtype=np.int64) * per_in, per_out)

    def cycles(self) -> int:
        return self.in_stream().beats

    def resources(self) -> dict:
        pe, ob, c = self.attr("PE"), self.attr("OutputBits"), self.attr("C")
        return {"LUT": pe * ob + -(-(c * ob) // 64) + 16, "FF": pe * ob + 32, "BRAM": 0, "DSP": 0}

    def rtl_params(self) -> dict:
        h, w, c = self.dims()
        return {"H": h, "W": w, "C": c, "PE": self.attr("PE"), "IN_BITS": self.attr("InputBits"),
                "IN_SIGNED": self.attr("InputSigned"), "OUT_BITS": self.attr("OutputBits")}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["PE"] * p["IN_BITS"]], [p["PE"] * p["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        h, w, c, pe, ib = p["H"], p["W"], p["C"], p["PE"], p["IN_BITS"]
        x = rand_int(rng, ib, bool(p["IN_SIGNED"]), (frames, h, w, c))
        y = global_acc_pool(x)
        return single_case(x, pe, ib, y, pe, p["OUT_BITS"], h * w * c // pe)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        h, w, pe, cf = pick(rng, 1, 4), pick(rng, 1, 4), pick(rng, 1, 3), pick(rng, 1, 3)
        ib, sg = pick(rng, 1, 6), pick(rng, 0, 1)
        return {"H": h, "W": w, "C": pe * cf, "PE": pe, "IN_BITS": ib, "IN_SIGNED": sg,
                "OUT_BITS": ib + (h * w).bit_length() + sg}

    def hls_stage(self) -> dict:
        h, w, c = self.dims()
        signed = self.attr("InputSigned")
        nv = [self.vectors()] if self.vectors() > 1 else []
        return stage(self, [h, w, c, self.attr("PE"), self.attr("InputBits"), signed, self.attr("OutputBits"), *nv],
                     out_signed=bool(signed))

    def describe(self) -> dict:
        return {**super().describe(), "shape": list(self.dims()), "pe": self.attr("PE"), "simd": 1}
