"""GlobalAccPool: NHWC global sum pooling (the numerator of a global average pool); with
NumVectors > 1, the sums of NumVectors consecutive H x W x C windows (a windowed sum pool
after a sliding window)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, register
from flow.ops.semantics import global_acc_pool


@register
class GlobalAccPool(HWOp):
    op_type = "GlobalAccPool"
    rtl_module = "global_acc_pool"
    hls_function = "global_acc_pool"
    folding_attrs = ("PE",)

    def dims(self):
        return tuple(self.attr(k) for k in ("H", "W", "C"))

    def vectors(self) -> int:
        return self.attr("NumVectors", 1)

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

    def rtl_stage(self) -> dict:
        h, w, c = self.dims()
        return {"module": self.rtl_module, "name": self.name,
                "params": {"H": h, "W": w, "C": c, "PE": self.attr("PE"), "IN_BITS": self.attr("InputBits"),
                           "IN_SIGNED": self.attr("InputSigned"), "OUT_BITS": self.attr("OutputBits")},
                "in_bits": self.in_stream().width, "out_bits": self.out_stream().width, "memories": {}}

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        h, w, c = self.dims()
        signed = self.attr("InputSigned")
        nv = [self.vectors()] if self.vectors() > 1 else []
        return stage(self, [h, w, c, self.attr("PE"), self.attr("InputBits"), signed, self.attr("OutputBits"), *nv],
                     out_signed=bool(signed))

    def describe(self) -> dict:
        return {**super().describe(), "shape": list(self.dims()), "pe": self.attr("PE"), "simd": 1}
