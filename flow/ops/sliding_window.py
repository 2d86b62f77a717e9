"""SlidingWindow: NHWC convolution input generator (line buffer), windows in (ky, kx, c) order."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import Attr, Engine, Formal, HlsFunction, HWOp, divisors, pick, register, single_case, stage
from flow.ops.semantics import pads4, pair, sliding_window, window_out_hw


def sliding_window_cycles(h, w, c, k, stride, pad, simd, dilation=1) -> int:
    """Steady-state cycles per frame of sliding_window.sv (k, stride, pad, dilation as in
    window_beats_needed)."""
    oh, ow = window_out_hw(h, w, k, stride, pad, dilation)
    kh, kw = pair(k)
    nin, nout = h * w * c // simd, oh * ow * kh * kw * c // simd
    return max(nin, nout)


def engine_window(p: dict) -> tuple:
    """(kernel, stride, pads, dilation) of a sliding_window / maxpool engine parameter set,
    the width's, the other sides' and the dilation's parameters defaulting to the square
    window's (the engine's own defaults)."""
    kh, sh, pt = p["K"], p["STRIDE"], p.get("PAD", 0)
    pl = p.get("PAD_LEFT", pt)
    pads = (pt, pl, p.get("PAD_BOTTOM", pt), p.get("PAD_RIGHT", pl))
    return (kh, p.get("K_W", kh)), (sh, p.get("STRIDE_W", sh)), pads, (p.get("DIL_H", 1), p.get("DIL_W", 1))


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


def line_buffer_beats(h: int, w: int, cf: int, k, stride, pad, dilation=1) -> int:
    """Beats of sliding_window.sv's line buffer (a power of two). The engine's default holds the
    rows of one window row and the next window row's new rows, 2**ceil(log2((KEH+SH)*W*CF)), which
    streams one beat per clock inside a frame. Across frames the writer must also bring in the
    next frame's first beats while the reader still holds the end of this frame (from the first
    beat of its last window, freed window by window): at least those held beats plus the most
    any output beat t of the next frame needs beyond t (window_beats_needed). The larger of the
    two: a kernel of 5 rows on an unpadded image, or a dilated kernel spanning the whole image,
    needs more than the default; a 3 x 3 kernel never does."""
    (kh, _kw), (sh, sw), (dh, _dw) = pair(k), pair(stride), pair(dilation)
    pt, pl, _pb, _pr = pads4(pad)
    oh, ow = window_out_hw(h, w, k, stride, pad, dilation)
    rowb = w * cf
    default = pow2_at_least(((kh - 1) * dh + 1 + sh) * rowb)
    y0, x0 = (oh - 1) * sh - pt, (ow - 1) * sw - pl  # the last window's top row and first column
    free_end = max(0, y0 * rowb, y0 * rowb + x0 * cf if y0 >= 0 and 0 < x0 < w else 0)
    need = window_beats_needed(h, w, cf, k, stride, pad, dilation)
    lead = int(np.max(need - np.arange(need.size)))
    return max(default, pow2_at_least(h * rowb - free_end + lead))


def pow2_at_least(n: int) -> int:
    """The least power of two >= n (2**$clog2(n) in SystemVerilog)."""
    return 1 << max(0, int(n) - 1).bit_length()


@register
class SlidingWindow(HWOp):
    op_type = "SlidingWindow"
    attrs = (
        Attr("IFM_H", int, finn="IFMDim", doc="image height"),
        Attr("IFM_W", int, finn="IFMDim", doc="image width"),
        Attr("C", int, finn="IFMChannels", doc="channels"),
        Attr("K", int, finn="ConvKernelDim", doc="kernel height (and width unless KW is given)"),
        Attr("Stride", int, 1, "Stride", "row step (and column step unless StrideW is given)"),
        Attr("Pad", int, 0, doc="padding rows on top (and every other side unless given); value PadValue"),
        Attr("KW", int, like="K", doc="kernel width"),
        Attr("StrideW", int, like="Stride", doc="column step"),
        Attr("PadLeft", int, like="Pad", doc="padding columns on the left"),
        Attr("PadBottom", int, like="Pad", doc="padding rows at the bottom"),
        Attr("PadRight", int, like="Pad", doc="padding columns on the right"),
        Attr("DilationH", int, 1, doc="row distance of neighbouring taps"),
        Attr("DilationW", int, 1, doc="column distance of neighbouring taps"),
        Attr("PadValue", int, 0, doc="the code of a padding element"),
        Attr("SIMD", int, 1, "SIMD", "channels per beat"),
        Attr("ElemBits", int, doc="bits of an element"),
    )
    lanes, channels = "SIMD", "C"
    folding_attrs = ("SIMD",)
    engine = Engine("sliding_window", ("sliding_window/sliding_window.sv",))
    formal = Formal(({"IFM_H": 2, "IFM_W": 2, "C": 1, "K": 2, "STRIDE": 1, "PAD": 0, "PAD_VALUE": 0, "SIMD": 1,
                      "ELEM_BITS": 1},), equiv=True)
    hls = HlsFunction("sliding_window", "sliding_window.h")
    finn_op = "ConvolutionInputGenerator_rtl"
    tb_frames = 4

    def dims(self):
        return tuple(self.attr(k) for k in ("IFM_H", "IFM_W", "C", "K", "Stride", "Pad"))

    def window(self) -> tuple:
        """((KH, KW), (SH, SW), (top, left, bottom, right) padding, (DH, DW)); the width,
        the other sides and the dilation default to the square, symmetric, dense window."""
        a = self.attr
        return ((a("K"), a("KW")), (a("Stride"), a("StrideW")), (a("Pad"), a("PadLeft"), a("PadBottom"), a("PadRight")),
                (a("DilationH"), a("DilationW")))

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
        return self.executor()(x)

    def conv_window(self) -> tuple:
        """(image (H, W, C), kernel, stride, pads, pad value, dilation): the windows as a
        convolution over the image takes them."""
        (h, w, c, *_), (k, s, p, d) = self.dims(), self.window()
        return (h, w, c), k, s, p, self.attr("PadValue"), d

    def executor(self):
        (h, w, c, *_), (k, s, p, d), pad_value = self.dims(), self.window(), self.attr("PadValue")
        return lambda x: sliding_window(x.reshape(x.shape[0], h, w, c), k, s, p, pad_value, d).reshape(x.shape[0], -1)

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
        if "BUF_BEATS" in self.rtl_params():  # a buffer deeper than the engine's default
            buf_bits = self.rtl_params()["BUF_BEATS"] * self.attr("SIMD") * self.attr("ElemBits")
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
        params = {"IFM_H": h, "IFM_W": w, "C": c, "K": k, "STRIDE": s, "PAD": p, "PAD_VALUE": self.attr("PadValue"),
                  "SIMD": self.attr("SIMD"), "ELEM_BITS": self.attr("ElemBits"), **self.window_params()}
        return {**params, **buffer_param(params)}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["SIMD"] * p["ELEM_BITS"]], [p["SIMD"] * p["ELEM_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        h, w, c, simd, eb = (p[n] for n in ("IFM_H", "IFM_W", "C", "SIMD", "ELEM_BITS"))
        k, s, pad, d = engine_window(p)
        x = rng.integers(0, 1 << eb, size=(frames, h, w, c))
        y = sliding_window(x, k, s, pad, p["PAD_VALUE"], d)
        return single_case(x, simd, eb, y, simd, eb, sliding_window_cycles(h, w, c, k, s, pad, simd, d))

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        k = pick(rng, 1, 4)
        pad = pick(rng, 0, min(k - 1, 2))
        h, w = pick(rng, max(1, k - 2 * pad), 7), pick(rng, max(1, k - 2 * pad), 7)
        simd, cf, eb = pick(rng, 1, 3), pick(rng, 1, 3), pick(rng, 1, 4)
        p = {"IFM_H": h, "IFM_W": w, "C": simd * cf, "K": k, "STRIDE": pick(rng, 1, 3), "PAD": pad,
             "PAD_VALUE": pick(rng, 0, (1 << eb) - 1), "SIMD": simd, "ELEM_BITS": eb}
        p = p if pick(rng, 0, 1) else {**p, **cls.random_window(rng, p)}
        return {**p, **buffer_param(p)}

    @staticmethod
    def random_window(rng: np.random.Generator, p: dict) -> dict:
        """A non-square window's engine parameters over the square draw p: the height's kernel,
        stride and padding stay p's; the width's kernel, stride, padding and dilation, and
        the height's dilation, are drawn to fit the image (padding less than the kernel)."""
        dh = 2 if p["IFM_H"] + 2 * p["PAD"] >= 2 * p["K"] - 1 else 1
        kw, dw = pick(rng, 1, 3), pick(rng, 1, 2)
        kw = min(kw, (p["IFM_W"] - 1) // dw + 1)
        pl, pr = pick(rng, 0, kw - 1), pick(rng, 0, kw - 1)
        return {"K_W": kw, "STRIDE_W": pick(rng, 1, 2), "PAD_LEFT": pl, "PAD_BOTTOM": p["PAD"], "PAD_RIGHT": pr,
                "DIL_H": pick(rng, 1, dh), "DIL_W": dw}

    def hls_stage(self) -> dict:
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


def buffer_param(p: dict) -> dict:
    """{"BUF_BEATS": n} where a sliding_window engine of parameters p needs a deeper line buffer
    than its default (line_buffer_beats), else {} (the generated source stays as it was)."""
    k, s, pads, d = engine_window(p)
    h, w, cf = p["IFM_H"], p["IFM_W"], p["C"] // p["SIMD"]
    beats = line_buffer_beats(h, w, cf, k, s, pads, d)
    default = pow2_at_least(((k[0] - 1) * d[0] + 1 + s[0]) * w * cf)
    return {"BUF_BEATS": beats} if beats > default else {}
