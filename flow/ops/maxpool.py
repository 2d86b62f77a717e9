"""MaxPool: NHWC max-pool over integer codes (a bitwise OR on binary data)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import Attr, Engine, Formal, HlsFunction, HWOp, pick, rand_int, register, single_case, stage
from flow.ops.semantics import maxpool
from flow.ops.sliding_window import engine_window, sliding_window_cycles, window_beats_needed


@register
class MaxPool(HWOp):
    op_type = "MaxPool"
    attrs = (
        Attr("H", int, finn="ImgDim", doc="image height"),
        Attr("W", int, finn="ImgDim", doc="image width"),
        Attr("C", int, finn="NumChannels", doc="channels"),
        Attr("K", int, finn="PoolDim", doc="pool window height (and width unless KW is given)"),
        Attr("Stride", int, doc="row step (and column step unless StrideW is given)"),
        Attr("KW", int, like="K", doc="pool window width"),
        Attr("StrideW", int, like="Stride", doc="column step"),
        Attr("PE", int, 1, "PE", "channels per beat"),
        Attr("ElemBits", int, doc="bits of an unsigned element"),
    )
    lanes, channels = "PE", "C"
    folding_attrs = ("PE",)
    engine = Engine("maxpool", ("sliding_window/sliding_window.sv", "maxpool/maxpool.sv"))
    formal = Formal(({"H": 2, "W": 2, "C": 1, "K": 2, "STRIDE": 2, "PE": 1, "ELEM_BITS": 2, "SIGNED": 0},), equiv=True)
    hls = HlsFunction("maxpool", "maxpool.h")
    finn_op = "StreamingMaxPool_hls"
    finn_aliases = ("StreamingMaxPool_Batch", "Pool", "Pool_Batch")
    tb_frames = 4

    def dims(self):
        return tuple(self.attr(k) for k in ("H", "W", "C", "K", "Stride"))

    def window(self) -> tuple:
        """((KH, KW), (SH, SW)); the width's default to the height's (a square window)."""
        return (self.attr("K"), self.attr("KW")), (self.attr("Stride"), self.attr("StrideW"))

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
        return self.executor()(x)

    def executor(self):
        (h, w, c, *_), window = self.dims(), self.window()
        return lambda x: maxpool(x.reshape(x.shape[0], h, w, c), *window).reshape(x.shape[0], -1)

    def cycles(self) -> int:
        """The window engine inside emits every tap of every window: overlapping windows (a
        kernel of 3, stride 2) take more cycles than the input's beats."""
        h, w, c, *_ = self.dims()
        k, s = self.window()
        return sliding_window_cycles(h, w, c, k, s, 0, self.attr("PE"))

    def beats_needed(self) -> np.ndarray:
        """A pooled beat leaves after the last tap of its window (sliding_window inside)."""
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

    def rtl_params(self) -> dict:
        h, w, c, k, s = self.dims()
        return {"H": h, "W": w, "C": c, "K": k, "STRIDE": s, "PE": self.attr("PE"), "ELEM_BITS": self.attr("ElemBits"),
                "SIGNED": 0, **self.window_params()}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["PE"] * p["ELEM_BITS"]], [p["PE"] * p["ELEM_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        h, w, c, pe, eb = (p[n] for n in ("H", "W", "C", "PE", "ELEM_BITS"))
        k, s, _pad, _d = engine_window(p)
        x = rand_int(rng, eb, bool(p["SIGNED"]), (frames, h, w, c))
        y = maxpool(x, k, s)
        return single_case(x, pe, eb, y, pe, eb, sliding_window_cycles(h, w, c, k, s, 0, pe))

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        k = pick(rng, 1, 3)
        pe = pick(rng, 1, 3)
        p = {"H": pick(rng, k, 7), "W": pick(rng, k, 7), "C": pe * pick(rng, 1, 3), "K": k,
             "STRIDE": pick(rng, 1, 3), "PE": pe, "ELEM_BITS": pick(rng, 1, 5), "SIGNED": pick(rng, 0, 1)}
        if pick(rng, 0, 1):  # a non-square window
            p.update(K_W=pick(rng, 1, min(3, p["W"])), STRIDE_W=pick(rng, 1, 3))
        return p

    def hls_stage(self) -> dict:
        h, w, c, k, s = self.dims()
        extra = list(self.window_params().values())
        return stage(self, [h, w, c, k, s, self.attr("PE"), self.attr("ElemBits"), *extra])

    def describe(self) -> dict:
        h, w, c, k, s = self.dims()
        (kh, kw), (sh, sw) = self.window()
        kernel, stride = (k, s) if (kh, sh) == (kw, sw) else ([kh, kw], [sh, sw])
        return {**super().describe(), "shape": [h, w, c], "kernel": kernel, "stride": stride, "pe": self.attr("PE"),
                "simd": 1}
