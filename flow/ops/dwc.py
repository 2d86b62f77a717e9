"""DataWidthConverter: regroups a stream's elements into beats of another lane count."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, register


@register
class DataWidthConverter(HWOp):
    op_type = "DataWidthConverter"
    rtl_module = "dwc"
    hls_function = "dwc"

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
        return {"LUT": w + 8, "FF": w + 8, "BRAM": 0, "DSP": 0}

    def rtl_stage(self) -> dict:
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {"IN_ELEMS": self.attr("InLanes"), "OUT_ELEMS": self.attr("OutLanes"),
                       "ELEM_BITS": self.attr("ElemBits")},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": {},
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        return stage(self, [self.attr("InLanes"), self.attr("OutLanes"), self.attr("ElemBits"), self.attr("Elems")])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("Elems")], "pe": self.attr("OutLanes"),
                "simd": self.attr("InLanes")}
