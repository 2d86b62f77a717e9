"""SlidingWindow: NHWC convolution input generator (line buffer), windows in (ky, kx, c) order."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import Attr, Engine, HlsFunction, HWOp, divisors, pick, register, single_case, stage
from flow.ops.semantics import sliding_window


def sliding_window_cycles(h, w, c, k, stride, pad, simd) -> int:
    """Steady-state cycles per frame of sliding_window.sv."""
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    nin, nout = h * w * c // simd, oh * ow * k * k * c // simd
    return max(nin, nout)


def window_beats_needed(h: int, w: int, cf: int, k: int, stride: int, pad: int) -> np.ndarray:
    """Input beats needed before each tap beat of a sliding window over an h x w image of
    cf channel folds ((y, x, c) order in, windows in (oy, ox, ky, kx, c) order out): the
    last image beat any tap so far reads (padding taps read none). The RTL engine emits a
    tap as soon as its beat is in, so this is its exact dependency."""
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    oy, ox, ky, kx, c = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(k), np.arange(k), np.arange(cf),
                                    indexing="ij")
    iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    need = np.where(inside, (iy * w + ix) * cf + c + 1, 0).astype(np.int64).reshape(-1)
    return np.maximum.accumulate(need)


@register
class SlidingWindow(HWOp):
    op_type = "SlidingWindow"
    attrs = (
        Attr("IFM_H", int, finn="IFMDim", doc="image height"),
        Attr("IFM_W", int, finn="IFMDim", doc="image width"),
        Attr("C", int, finn="IFMChannels", doc="channels"),
        Attr("K", int, finn="ConvKernelDim", doc="kernel size (square)"),
        Attr("Stride", int, 1, "Stride"),
        Attr("Pad", int, 0, doc="zero rows/columns on each side (padding value PadValue)"),
        Attr("PadValue", int, 0, doc="the code of a padding element"),
        Attr("SIMD", int, 1, "SIMD", "channels per beat"),
        Attr("ElemBits", int, doc="bits of an element"),
    )
    lanes, channels = "SIMD", "C"
    folding_attrs = ("SIMD",)
    engine = Engine("sliding_window", ("sliding_window/sliding_window.sv",))
    hls = HlsFunction("sliding_window", "sliding_window.h")
    finn_op = "ConvolutionInputGenerator_rtl"
    tb_frames = 4

    def dims(self):
        return tuple(self.attr(k) for k in ("IFM_H", "IFM_W", "C", "K", "Stride", "Pad"))

    def out_hw(self) -> tuple[int, int]:
        h, w, _c, k, s, p = self.dims()
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1

    def in_stream(self) -> Stream:
        h, w, c, *_ = self.dims()
        return Stream(self.attr("SIMD"), self.attr("ElemBits"), h * w * c)

    def out_stream(self) -> Stream:
        _h, _w, c, k, *_ = self.dims()
        oh, ow = self.out_hw()
        return Stream(self.attr("SIMD"), self.attr("ElemBits"), oh * ow * k * k * c)

    def check(self) -> None:
        if self.attr("C") % self.attr("SIMD"):
            raise ValueError(f"{self.name}: SIMD={self.attr('SIMD')} does not divide C={self.attr('C')}")

    def execute(self, x: np.ndarray) -> np.ndarray:
        h, w, c, k, s, p = self.dims()
        n = x.shape[0]
        y = sliding_window(x.reshape(n, h, w, c), k, s, p, self.attr("PadValue"))
        return y.reshape(n, -1)

    def cycles(self) -> int:
        return max(self.in_stream().beats, self.out_stream().beats)

    def beats_needed(self) -> np.ndarray:
        h, w, c, k, s, p = self.dims()
        need = window_beats_needed(h, w, c // self.attr("SIMD"), k, s, p)
        need[-1] = self.in_stream().beats  # the frame's last beat waits for the whole frame
        return need

    def resources(self) -> dict:
        _h, w, c, k, *_ = self.dims()
        buf_bits = k * w * c * self.attr("ElemBits")
        bram = -(-buf_bits // 36864) if buf_bits > 16384 else 0
        lut = self.attr("SIMD") * self.attr("ElemBits") * 4 + 64 + (0 if bram else -(-buf_bits // 64))
        return {"LUT": lut, "FF": self.attr("SIMD") * self.attr("ElemBits") * 2 + 64, "BRAM": bram, "DSP": 0}

    def fold_for(self, target: int, prev, nxt) -> None:
        """The lanes of the MVU it feeds."""
        self.match_lanes(prev, nxt)

    def match_lanes(self, prev, nxt, after_file: bool = False) -> None:
        if nxt is not None:
            self.set_attr("SIMD", nxt.lanes_wanted() or nxt.in_stream().lanes)

    def lanes_wanted(self) -> int:
        return self.attr("SIMD")

    def next_lane_choices(self) -> list[int]:
        return divisors(self.attr("C"))

    def rtl_params(self) -> dict:
        h, w, c, k, s, p = self.dims()
        return {"IFM_H": h, "IFM_W": w, "C": c, "K": k, "STRIDE": s, "PAD": p, "PAD_VALUE": self.attr("PadValue"),
                "SIMD": self.attr("SIMD"), "ELEM_BITS": self.attr("ElemBits")}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["SIMD"] * p["ELEM_BITS"]], [p["SIMD"] * p["ELEM_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        h, w, c, k, s, pad, simd, eb = (p[n] for n in ("IFM_H", "IFM_W", "C", "K", "STRIDE", "PAD", "SIMD",
                                                        "ELEM_BITS"))
        x = rng.integers(0, 1 << eb, size=(frames, h, w, c))
        y = sliding_window(x, k, s, pad, p["PAD_VALUE"])
        return single_case(x, simd, eb, y, simd, eb, sliding_window_cycles(h, w, c, k, s, pad, simd))

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        k = pick(rng, 1, 4)
        pad = pick(rng, 0, min(k - 1, 2))
        h, w = pick(rng, max(1, k - 2 * pad), 7), pick(rng, max(1, k - 2 * pad), 7)
        simd, cf, eb = pick(rng, 1, 3), pick(rng, 1, 3), pick(rng, 1, 4)
        return {"IFM_H": h, "IFM_W": w, "C": simd * cf, "K": k, "STRIDE": pick(rng, 1, 3), "PAD": pad,
                "PAD_VALUE": pick(rng, 0, (1 << eb) - 1), "SIMD": simd, "ELEM_BITS": eb}

    def hls_stage(self) -> dict:
        h, w, c, k, s, p = self.dims()
        eb = self.attr("ElemBits")
        pad_value = self.attr("PadValue") & ((1 << eb) - 1)
        return stage(self, [h, w, c, k, s, p, pad_value, self.attr("SIMD"), eb])

    def describe(self) -> dict:
        h, w, c, k, s, p = self.dims()
        return {**super().describe(), "shape": [h, w, c], "kernel": k, "stride": s, "pad": p,
                "pe": 1, "simd": self.attr("SIMD")}
