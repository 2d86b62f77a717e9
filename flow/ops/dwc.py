"""DataWidthConverter: regroups a stream's elements into beats of another lane count."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import (Attr, Engine, Formal, HlsFunction, HWOp, pick, register, single_case, stage,
                           width_converter_luts)


@register
class DataWidthConverter(HWOp):
    op_type = "DataWidthConverter"
    attrs = (
        Attr("InLanes", int, doc="elements per input beat"),
        Attr("OutLanes", int, doc="elements per output beat"),
        Attr("ElemBits", int, doc="bits of an element"),
        Attr("Elems", int, doc="elements per frame"),
    )
    engine = Engine("dwc", ("dwc/dwc.sv",), testbench="tb_engines")
    formal = Formal(({"IN_ELEMS": 4, "OUT_ELEMS": 2, "ELEM_BITS": 1},), capacity=1, equiv=True)
    hls = HlsFunction("dwc", "dwc.h")
    # FINN's StreamingDataWidthConverter is plumbing a bnnflow folding file skips: no finn_op
    tb_frames = 30

    def in_stream(self) -> Stream:
        return Stream(self.attr("InLanes"), self.attr("ElemBits"), self.attr("Elems"))

    def out_stream(self) -> Stream:
        return Stream(self.attr("OutLanes"), self.attr("ElemBits"), self.attr("Elems"))

    def check(self) -> None:
        a, b, n = self.attr("InLanes"), self.attr("OutLanes"), self.attr("Elems")
        if (a % b and b % a) or n % a or n % b:
            raise ValueError(f"{self.name}: lanes {a}->{b} must divide each other and {n} elements")

    def execute(self, x: np.ndarray) -> np.ndarray:
        return x

    def cycles(self) -> int:
        n = self.attr("Elems")
        return max(n // self.attr("InLanes"), n // self.attr("OutLanes"))

    def resources(self) -> dict:
        w = max(self.attr("InLanes"), self.attr("OutLanes")) * self.attr("ElemBits")
        return {"LUT": width_converter_luts(max(self.attr("InLanes"), self.attr("OutLanes")), self.attr("ElemBits")),
                "FF": w + 8, "BRAM": 0, "DSP": 0}

    def rtl_params(self) -> dict:
        return {"IN_ELEMS": self.attr("InLanes"), "OUT_ELEMS": self.attr("OutLanes"), "ELEM_BITS": self.attr("ElemBits")}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["IN_ELEMS"] * p["ELEM_BITS"]], [p["OUT_ELEMS"] * p["ELEM_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        ie, oe, eb = p["IN_ELEMS"], p["OUT_ELEMS"], p["ELEM_BITS"]
        n = max(ie, oe)
        v = rng.integers(0, 1 << eb, size=(frames, n))
        return single_case(v, ie, eb, v, oe, eb, n // min(ie, oe))

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        small, ratio = pick(rng, 1, 4), pick(rng, 1, 4)
        lanes = [small, small * ratio]
        if pick(rng, 0, 1):
            lanes.reverse()
        return {"IN_ELEMS": lanes[0], "OUT_ELEMS": lanes[1], "ELEM_BITS": pick(rng, 1, 5)}

    def hls_stage(self) -> dict:
        return stage(self, [self.attr("InLanes"), self.attr("OutLanes"), self.attr("ElemBits"), self.attr("Elems")])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("Elems")], "pe": self.attr("OutLanes"),
                "simd": self.attr("InLanes")}
