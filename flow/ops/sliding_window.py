"""SlidingWindow: NHWC convolution input generator (line buffer), windows in (ky, kx, c) order."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, register
from flow.ops.semantics import sliding_window


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
    rtl_module = "sliding_window"
    hls_function = "sliding_window"
    folding_attrs = ("SIMD",)

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

    def rtl_stage(self) -> dict:
        h, w, c, k, s, p = self.dims()
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {"IFM_H": h, "IFM_W": w, "C": c, "K": k, "STRIDE": s, "PAD": p,
                       "PAD_VALUE": self.attr("PadValue"), "SIMD": self.attr("SIMD"),
                       "ELEM_BITS": self.attr("ElemBits")},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": {},
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        h, w, c, k, s, p = self.dims()
        eb = self.attr("ElemBits")
        pad_value = self.attr("PadValue") & ((1 << eb) - 1)
        return stage(self, [h, w, c, k, s, p, pad_value, self.attr("SIMD"), eb])

    def describe(self) -> dict:
        h, w, c, k, s, p = self.dims()
        return {**super().describe(), "shape": [h, w, c], "kernel": k, "stride": s, "pad": p,
                "pe": 1, "simd": self.attr("SIMD")}
