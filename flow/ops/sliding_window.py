"""SlidingWindow: NHWC convolution input generator (line buffer), windows in (ky, kx, c) order."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, register
from flow.ops.semantics import pads4, pair, sliding_window, window_out_hw


def window_beats_needed(h: int, w: int, cf: int, k, stride, pad, dilation=1) -> np.ndarray:
    """Input beats needed before each tap beat of a sliding window over an h x w image of
    cf channel folds ((y, x, c) order in, windows in (oy, ox, ky, kx, c) order out): the
    last image beat any tap so far reads (padding taps read none). The RTL engine emits a
    tap as soon as its beat is in, so this is its exact dependency. k, stride, dilation:
    an int or an (h, w) pair; pad: an int or (top, left, bottom, right)."""
    (kh, kw), (sh, sw), (dh, dw) = pair(k), pair(stride), pair(dilation)
    pt, pl, _pb, _pr = pads4(pad)
    oh, ow = window_out_hw(h, w, k, stride, pad, dilation)
    oy, ox, ky, kx, c = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), np.arange(cf),
                                    indexing="ij")
    iy, ix = oy * sh - pt + ky * dh, ox * sw - pl + kx * dw
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

    def window(self) -> tuple:
        """((KH, KW), (SH, SW), (top, left, bottom, right) padding, (DH, DW)); the width,
        the other sides and the dilation default to the square, symmetric, dense window."""
        k, s, p = self.attr("K"), self.attr("Stride"), self.attr("Pad")
        pads = (p, self.attr("PadLeft", p), self.attr("PadBottom", p), self.attr("PadRight", p))
        return ((k, self.attr("KW", k)), (s, self.attr("StrideW", s)), pads,
                (self.attr("DilationH", 1), self.attr("DilationW", 1)))

    def square(self) -> bool:
        """The window is K x K at one stride, padded alike on every side, not dilated."""
        k, s, p, d = self.window()
        return k[0] == k[1] and s[0] == s[1] and len(set(p)) == 1 and d == (1, 1)

    def out_hw(self) -> tuple[int, int]:
        h, w, *_ = self.dims()
        return window_out_hw(h, w, *self.window())

    def in_stream(self) -> Stream:
        h, w, c, *_ = self.dims()
        return Stream(self.attr("SIMD"), self.attr("ElemBits"), h * w * c)

    def out_stream(self) -> Stream:
        c, (kh, kw) = self.attr("C"), self.window()[0]
        oh, ow = self.out_hw()
        return Stream(self.attr("SIMD"), self.attr("ElemBits"), oh * ow * kh * kw * c)

    def check(self) -> None:
        if self.attr("C") % self.attr("SIMD"):
            raise ValueError(f"{self.name}: SIMD={self.attr('SIMD')} does not divide C={self.attr('C')}")

    def execute(self, x: np.ndarray) -> np.ndarray:
        h, w, c, *_ = self.dims()
        k, s, p, d = self.window()
        n = x.shape[0]
        y = sliding_window(x.reshape(n, h, w, c), k, s, p, self.attr("PadValue"), d)
        return y.reshape(n, -1)

    def cycles(self) -> int:
        return max(self.in_stream().beats, self.out_stream().beats)

    def beats_needed(self) -> np.ndarray:
        h, w, c, *_ = self.dims()
        need = window_beats_needed(h, w, c // self.attr("SIMD"), *self.window())
        need[-1] = self.in_stream().beats  # the frame's last beat waits for the whole frame
        return need

    def resources(self) -> dict:
        _h, w, c, *_ = self.dims()
        (kh, _kw), _s, _p, (dh, _dw) = self.window()
        buf_bits = ((kh - 1) * dh + 1) * w * c * self.attr("ElemBits")
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
                       "ELEM_BITS": self.attr("ElemBits"), **self.window_params()},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": {},
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import stage

        h, w, c, k, s, p = self.dims()
        eb = self.attr("ElemBits")
        pad_value = self.attr("PadValue") & ((1 << eb) - 1)
        extra = [] if self.square() else list(self.window_params().values())
        return stage(self, [h, w, c, k, s, p, pad_value, self.attr("SIMD"), eb, *extra])

    def window_params(self) -> dict:
        """The engine's parameters of a non-square window (none for a square one, whose
        engine defaults give it)."""
        if self.square():
            return {}
        (_kh, kw), (_sh, sw), (_pt, pl, pb, pr), (dh, dw) = self.window()
        return {"K_W": kw, "STRIDE_W": sw, "PAD_LEFT": pl, "PAD_BOTTOM": pb, "PAD_RIGHT": pr,
                "DIL_H": dh, "DIL_W": dw}

    def describe(self) -> dict:
        h, w, c, k, s, p = self.dims()
        d = {**super().describe(), "shape": [h, w, c], "kernel": k, "stride": s, "pad": p,
             "pe": 1, "simd": self.attr("SIMD")}
        if not self.square():
            kk, ss, pp, dd = self.window()
            d.update(kernel=list(kk), stride=list(ss), pad=list(pp), dilation=list(dd))
        return d
