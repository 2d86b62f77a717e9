"""MaxPool: NHWC max-pool over integer codes (a bitwise OR on binary data)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, register
from flow.ops.semantics import maxpool


@register
class MaxPool(HWOp):
    op_type = "MaxPool"
    rtl_module = "maxpool"
    hls_function = "maxpool"
    folding_attrs = ("PE",)

    def dims(self):
        return tuple(self.attr(k) for k in ("H", "W", "C", "K", "Stride"))

    def window(self) -> tuple:
        """((KH, KW), (SH, SW)); the width's default to the height's (a square window)."""
        k, s = self.attr("K"), self.attr("Stride")
        return (k, self.attr("KW", k)), (s, self.attr("StrideW", s))

    def out_hw(self) -> tuple[int, int]:
        h, w, *_ = self.dims()
        (kh, kw), (sh, sw) = self.window()
        return (h - kh) // sh + 1, (w - kw) // sw + 1

    def window_params(self) -> dict:
        """The engine's parameters of a non-square window (none for a square one)."""
        (kh, kw), (sh, sw) = self.window()
        return {} if (kh, sh) == (kw, sw) else {"K_W": kw, "STRIDE_W": sw}

    def in_stream(self) -> Stream:
        h, w, c, *_ = self.dims()
        return Stream(self.attr("PE"), self.attr("ElemBits"), h * w * c)

    def out_stream(self) -> Stream:
        oh, ow = self.out_hw()
        return Stream(self.attr("PE"), self.attr("ElemBits"), oh * ow * self.attr("C"))

    def check(self) -> None:
        if self.attr("C") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide C={self.attr('C')}")

    def execute(self, x: np.ndarray) -> np.ndarray:
        h, w, c, *_ = self.dims()
        n = x.shape[0]
        return maxpool(x.reshape(n, h, w, c), *self.window()).reshape(n, -1)

    def cycles(self) -> int:
        return self.in_stream().beats

    def beats_needed(self) -> np.ndarray:
        """A pooled beat leaves after the last tap of its window (sliding_window inside)."""
        from flow.ops.sliding_window import window_beats_needed

        h, w, c, *_ = self.dims()
        (kh, kw), s = self.window()
        cf = c // self.attr("PE")
        taps = window_beats_needed(h, w, cf, (kh, kw), s, 0).reshape(-1, kh * kw, cf)
        need = taps[:, -1, :].reshape(-1).copy()
        need[-1] = self.in_stream().beats
        return need

    def resources(self) -> dict:
        _h, w, c, *_ = self.dims()
        eb, pe = self.attr("ElemBits"), self.attr("PE")
        row_bits = w * c * eb
        return {"LUT": pe * eb * 2 + 32 + -(-row_bits // 64), "FF": pe * eb * 2 + 32, "BRAM": 0, "DSP": 0}

    def rtl_stage(self) -> dict:
        h, w, c, k, s = self.dims()
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {"H": h, "W": w, "C": c, "K": k, "STRIDE": s, "PE": self.attr("PE"),
                       "ELEM_BITS": self.attr("ElemBits"), "SIGNED": 0, **self.window_params()},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": {},
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        h, w, c, k, s = self.dims()
        extra = list(self.window_params().values())
        return stage(self, [h, w, c, k, s, self.attr("PE"), self.attr("ElemBits"), *extra])

    def describe(self) -> dict:
        h, w, c, k, s = self.dims()
        (kh, kw), (sh, sw) = self.window()
        kernel, stride = (k, s) if (kh, sh) == (kw, sw) else ([kh, kw], [sh, sw])
        return {**super().describe(), "shape": [h, w, c], "kernel": kernel, "stride": stride, "pe": self.attr("PE"),
                "simd": 1}
