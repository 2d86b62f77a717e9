"""LabelSelect: top-1 index of a stream of integer logits (ties -> lowest index)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, clog2, register
from flow.ops.semantics import label_select


@register
class LabelSelect(HWOp):
    op_type = "LabelSelect"
    rtl_module = "label_select"
    hls_function = "label_select"
    folding_attrs = ("PE",)

    def out_bits(self) -> int:
        return clog2(self.attr("Labels"))

    def in_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("InputBits"), self.attr("Labels"))

    def out_stream(self) -> Stream:
        return Stream(1, self.out_bits(), 1)

    def check(self) -> None:
        if self.attr("Labels") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide Labels={self.attr('Labels')}")

    def execute(self, x: np.ndarray) -> np.ndarray:
        return label_select(x)[:, None]

    def beats_needed(self) -> np.ndarray:
        """Nothing leaves before the whole frame is in."""
        return np.full(self.out_stream().beats, self.in_stream().beats, dtype=np.int64)

    def cycles(self) -> int:
        return self.attr("Labels") // self.attr("PE")

    def resources(self) -> dict:
        pe, b = self.attr("PE"), self.attr("InputBits")
        return {"LUT": pe * (b + self.out_bits()) + 8, "FF": b + 2 * self.out_bits() + 4, "BRAM": 0, "DSP": 0}

    def rtl_stage(self) -> dict:
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {"L": self.attr("Labels"), "PE": self.attr("PE"), "IN_BITS": self.attr("InputBits"),
                       "OUT_BITS": self.out_bits()},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": {},
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        return stage(self, [self.attr("Labels"), self.attr("PE"), self.attr("InputBits"), self.out_bits()])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("Labels")], "pe": self.attr("PE"), "simd": 1}
