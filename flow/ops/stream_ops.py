"""Stream plumbing for branching graphs: Duplicate (fork) and AddStreams (residual join)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, register
from flow.ops.semantics import add_streams


@register
class Duplicate(HWOp):
    """One stream in, the same beats on two outputs."""

    op_type = "Duplicate"
    rtl_module = "duplicate"
    hls_function = "duplicate"
    folding_attrs = ("PE",)

    def in_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("ElemBits"), self.attr("NumElems"))

    def out_stream(self) -> Stream:
        return self.in_stream()

    def check(self) -> None:
        if self.attr("NumElems") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide {self.attr('NumElems')} elements")

    def execute(self, x: np.ndarray):
        return x, x

    def cycles(self) -> int:
        return self.in_stream().beats

    def resources(self) -> dict:
        return {"LUT": 4, "FF": 2, "BRAM": 0, "DSP": 0}

    def rtl_stage(self) -> dict:
        w = self.in_stream().width
        return {"module": self.rtl_module, "name": self.name, "params": {"WIDTH": w},
                "in_bits": w, "out_bits": [w, w], "memories": {}}

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        s = self.in_stream()
        return stage(self, [s.width, s.beats])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("NumElems")], "pe": self.attr("PE"), "simd": 1}


@register
class AddStreams(HWOp):
    """Element-wise sum of two integer streams (the residual join)."""

    op_type = "AddStreams"
    rtl_module = "add_streams"
    hls_function = "add_streams"
    folding_attrs = ("PE",)
    n_inputs = 2

    def in_stream_of(self, port: int) -> Stream:
        bits = self.attr("InBitsA") if port == 0 else self.attr("InBitsB")
        return Stream(self.attr("PE"), bits, self.attr("NumElems"))

    def in_stream(self) -> Stream:
        return self.in_stream_of(0)

    def out_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("OutputBits"), self.attr("NumElems"))

    def check(self) -> None:
        if self.attr("NumElems") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide {self.attr('NumElems')} elements")

    def execute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return add_streams(a, b)

    def cycles(self) -> int:
        return self.out_stream().beats

    def resources(self) -> dict:
        pe, ob = self.attr("PE"), self.attr("OutputBits")
        return {"LUT": pe * ob + 4, "FF": pe * ob + 4, "BRAM": 0, "DSP": 0}

    def rtl_stage(self) -> dict:
        pe = self.attr("PE")
        return {"module": self.rtl_module, "name": self.name,
                "params": {"PE": pe, "A_BITS": self.attr("InBitsA"), "B_BITS": self.attr("InBitsB"),
                           "SIGNED": self.attr("Signed"), "OUT_BITS": self.attr("OutputBits")},
                "in_bits": [self.in_stream_of(0).width, self.in_stream_of(1).width],
                "out_bits": self.out_stream().width, "memories": {}}

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        signed = self.attr("Signed")
        return stage(self, [self.attr("PE"), self.attr("InBitsA"), self.attr("InBitsB"), signed,
                            self.attr("OutputBits"), self.out_stream().beats], out_signed=bool(signed))

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("NumElems")], "pe": self.attr("PE"), "simd": 1}


@register
class StreamFIFO(HWOp):
    """A FIFO on the shortcut of a residual branch. Its depth in beats is `Depth` once the
    fifo step (flow.passes.fifo) has sized it, else a whole frame (DepthElems elements) plus 4."""

    op_type = "StreamFIFO"
    rtl_module = "fifo"
    hls_function = "fifo"
    folding_attrs = ("PE",)

    def in_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("ElemBits"), self.attr("Elems"))

    def out_stream(self) -> Stream:
        return self.in_stream()

    def frame_depth(self) -> int:
        return -(-self.attr("DepthElems") // self.attr("PE")) + 4

    def depth(self) -> int:
        return int(self.attr("Depth", 0)) or self.frame_depth()

    def bits(self) -> int:
        return self.depth() * self.in_stream().width

    def check(self) -> None:
        if self.attr("Elems") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide {self.attr('Elems')} elements")

    def execute(self, x: np.ndarray) -> np.ndarray:
        return x

    def cycles(self) -> int:
        return self.in_stream().beats

    def resources(self) -> dict:
        bits = self.depth() * self.in_stream().width
        bram = -(-bits // 36864) if bits > 16384 else 0
        return {"LUT": 16 + (0 if bram else -(-bits // 64)), "FF": self.in_stream().width + 16, "BRAM": bram, "DSP": 0}

    def rtl_stage(self) -> dict:
        w = self.in_stream().width
        big = self.depth() * w > 16384
        return {"module": self.rtl_module, "name": self.name,
                "params": {"DEPTH": self.depth(), "WIDTH": w, "SYNC_READ": int(big),
                           "RAM_STYLE": "block" if big else "auto"},
                "in_bits": w, "out_bits": w, "memories": {}}

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        s = self.in_stream()
        # the sized depth follows the RTL engines' dependency curves; the HLS functions of the
        # long branch buffer differently, so their top keeps the frame-sized shortcut
        return {**stage(self, [s.width, s.beats]), "out_depth": self.frame_depth()}

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("Elems")], "pe": self.attr("PE"), "simd": 1,
                "depth": self.depth(), "min_depth": self.attr("MinDepth", None), "frame_depth": self.frame_depth(),
                "fifo_bits": self.bits()}
