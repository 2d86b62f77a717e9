"""LabelSelect: top-1 index of a stream of integer logits (ties -> lowest index)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import Attr, Engine, Formal, HlsFunction, HWOp, clog2, pick, register, single_case, stage
from flow.ops.semantics import label_select, label_select_topk


@register
class LabelSelect(HWOp):
    op_type = "LabelSelect"
    attrs = (
        Attr("Labels", int, finn="Labels", doc="logits per frame"),
        Attr("PE", int, 1, "PE", "logits per beat"),
        Attr("InputBits", int, doc="bits of an unsigned logit"),
    )
    lanes, channels = "PE", "Labels"
    folding_attrs = ("PE",)
    engine = Engine("label_select", ("label_select/label_select.sv",), testbench="tb_engines")
    formal = Formal(({"L": 3, "PE": 1, "IN_BITS": 2, "OUT_BITS": 2, "K": 1},), capacity=5, equiv=True)
    hls = HlsFunction("label_select", "label_select.h")
    finn_op = "LabelSelect_hls"
    finn_aliases = ("LabelSelect_Batch",)
    label_head = True
    tb_frames = 30

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

    def fold_for(self, target: int, prev, nxt) -> None:
        """Folded with its producer (match_lanes)."""

    def match_lanes(self, prev, nxt, after_file: bool = False) -> None:
        """The producer's lanes where they divide the labels, else one."""
        if prev is not None:
            lanes = prev.out_stream().lanes
            self.set_attr("PE", lanes if self.attr("Labels") % lanes == 0 else 1)

    def rtl_params(self) -> dict:
        return {"L": self.attr("Labels"), "PE": self.attr("PE"), "IN_BITS": self.attr("InputBits"),
                "OUT_BITS": self.out_bits()}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["PE"] * p["IN_BITS"]], [p.get("K", 1) * p["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        """Top-1 (K = 1) or top-K; few distinct values, so many ties."""
        lab, pe, ib = p["L"], p["PE"], p["IN_BITS"]
        v = rng.integers(0, min(4, 1 << ib), size=(frames, lab))
        v[::3] = rng.integers(0, 1 << ib, size=v[::3].shape)
        v[1::7] = v[1::7, :1]                                # all equal -> index 0
        k = p.get("K", 1)
        y = label_select(v)[:, None] if k == 1 else label_select_topk(v, k)
        return single_case(v, pe, ib, y, k, p["OUT_BITS"], lab // pe)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        pe, nb = pick(rng, 1, 4), pick(rng, 1, 5)
        lab = pe * nb
        return {"L": lab, "PE": pe, "IN_BITS": pick(rng, 1, 5), "OUT_BITS": clog2(lab), "K": pick(rng, 1, min(lab, 4))}

    def hls_stage(self) -> dict:
        return stage(self, [self.attr("Labels"), self.attr("PE"), self.attr("InputBits"), self.out_bits()])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("Labels")], "pe": self.attr("PE"), "simd": 1}
