"""StreamingConcat: two streams of quantized codes joined along channels (torch.cat on dim 1).

For each of `NumVectors` vectors (pixels in NHWC order, or one for a flat tensor) the
output carries the ChannelsA codes of input 0, then the ChannelsB codes of input 1; codes
of the narrower input are zero-extended to the wider bit width (both inputs share one
scale and code range, which the lowering checks). SIMD lanes per beat on all three ports.
"""
from __future__ import annotations

import math

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import Attr, Engine, Formal, EngineCase, HlsFunction, HWOp, beat_ints, register, smallest_lanes


def concat_channels(a: np.ndarray, b: np.ndarray, vectors: int) -> np.ndarray:
    """(N, vectors*Ca), (N, vectors*Cb) -> (N, vectors*(Ca+Cb)): per vector, a's channels then b's."""
    n = a.shape[0]
    return np.concatenate([a.reshape(n, vectors, -1), b.reshape(n, vectors, -1)], axis=2).reshape(n, -1)


def port_curves(a_beats: int, b_beats: int, vectors: int) -> tuple[np.ndarray, np.ndarray]:
    """Beats of each input needed before each output beat: per vector a_beats of input 0, then b_beats of input 1."""
    v, k = np.divmod(np.arange(vectors * (a_beats + b_beats), dtype=np.int64), a_beats + b_beats)
    from_a = k < a_beats
    need_a = np.where(from_a, v * a_beats + k + 1, (v + 1) * a_beats)
    need_b = np.where(from_a, v * b_beats, v * b_beats + k - a_beats + 1)
    return need_a, need_b


@register
class StreamingConcat(HWOp):
    op_type = "StreamingConcat"
    attrs = (
        Attr("NumVectors", doc="vectors per frame (pixels; 1 for a flat tensor)"),
        Attr("ChannelsA", doc="channels of input 0 per vector"),
        Attr("ChannelsB", doc="channels of input 1 per vector"),
        Attr("ElemBitsA", doc="code bits of input 0"),
        Attr("ElemBitsB", doc="code bits of input 1"),
        Attr("SIMD", default=1, finn="SIMD", doc="lanes per beat; divides ChannelsA and ChannelsB"),
    )
    lanes = "SIMD"
    channels = "ChannelsA"  # and ChannelsB too: fold_for folds over their common divisors, check() refuses others
    folding_attrs = ("SIMD",)
    engine = Engine("streaming_concat", ("stream_ops/streaming_concat.sv",), inputs=("s0_axis", "s1_axis"))
    # two beats of the first input, then one of the second: up to A_BEATS output beats leave before s1's share
    formal = Formal(({"SIMD": 1, "A_BEATS": 2, "B_BEATS": 1, "A_BITS": 2, "B_BITS": 1, "OUT_BITS": 2},),
                    leads=(("s1_axis", "A_BEATS"),), capacity=2, equiv=True)
    hls = HlsFunction("streaming_concat", "concat.h")
    finn_op = "StreamingConcat_hls"
    finn_aliases = ("StreamingConcat",)
    n_inputs = 2

    # -- streams -----------------------------------------------------------------------
    def _bits(self) -> int:
        return max(self.attr("ElemBitsA"), self.attr("ElemBitsB"))

    def in_stream_of(self, port: int) -> Stream:
        ch, bits = ("ChannelsA", "ElemBitsA") if port == 0 else ("ChannelsB", "ElemBitsB")
        return Stream(self.attr("SIMD"), self.attr(bits), self.attr("NumVectors") * self.attr(ch))

    def in_stream(self) -> Stream:
        return self.in_stream_of(0)

    def out_stream(self) -> Stream:
        c = self.attr("ChannelsA") + self.attr("ChannelsB")
        return Stream(self.attr("SIMD"), self._bits(), self.attr("NumVectors") * c)

    def check(self) -> None:
        s, ca, cb = self.attr("SIMD"), self.attr("ChannelsA"), self.attr("ChannelsB")
        if ca % s or cb % s:
            raise ValueError(f"{self.name}: SIMD={s} must divide both inputs' channels ({ca} and {cb})")

    def execute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return concat_channels(a, b, self.attr("NumVectors"))

    def cycles(self) -> int:
        return self.out_stream().beats

    # -- folding ------------------------------------------------------------------------
    def fold_for(self, target: int, prev, nxt) -> None:
        """The fewest lanes dividing both inputs' channels that meet the target, preferring the producer's."""
        ca, cb = self.attr("ChannelsA"), self.attr("ChannelsB")
        g = math.gcd(ca, cb)
        self.set_attr("SIMD", smallest_lanes(g, self.attr("NumVectors") * (ca + cb) // g, target,
                                             prev.out_stream().lanes if prev is not None else None))

    def beats_needed_of(self, port: int) -> np.ndarray:
        s = self.attr("SIMD")
        curves = port_curves(self.attr("ChannelsA") // s, self.attr("ChannelsB") // s, self.attr("NumVectors"))
        return curves[port]

    def beats_needed(self) -> np.ndarray:
        return self.beats_needed_of(0)

    def resources(self) -> dict:
        w = self.out_stream().width
        return {"LUT": w + 12, "FF": w + 10, "BRAM": 0, "DSP": 0}

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.out_stream().elems], "pe": self.attr("SIMD"),
                "simd": self.attr("SIMD")}

    # -- RTL engine (rtl/stream_ops/streaming_concat.sv) ---------------------------------------------
    def rtl_params(self) -> dict:
        s = self.attr("SIMD")
        return {"SIMD": s, "A_BEATS": self.attr("ChannelsA") // s, "B_BEATS": self.attr("ChannelsB") // s,
                "A_BITS": self.attr("ElemBitsA"), "B_BITS": self.attr("ElemBitsB"), "OUT_BITS": self._bits()}

    @classmethod
    def port_widths(cls, params: dict) -> tuple[list[int], list[int]]:
        s = params["SIMD"]
        return [s * params["A_BITS"], s * params["B_BITS"]], [s * params["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, params: dict, rng: np.random.Generator, frames: int) -> EngineCase:
        """One frame is one vector: A_BEATS beats of input 0, then B_BEATS of input 1."""
        s, na, nb = params["SIMD"], params["A_BEATS"], params["B_BEATS"]
        a = rng.integers(0, 1 << params["A_BITS"], size=(frames, na * s))
        b = rng.integers(0, 1 << params["B_BITS"], size=(frames, nb * s))
        y = concat_channels(a, b, 1)
        return EngineCase({"s0_axis": beat_ints(a, s, params["A_BITS"]), "s1_axis": beat_ints(b, s, params["B_BITS"])},
                          {"m_axis": beat_ints(y, s, params["OUT_BITS"])}, na, na + nb, na + nb, port_bpf={"s1_axis": nb})

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        a_bits, b_bits = (int(x) for x in rng.integers(1, 6, size=2))
        return {"SIMD": int(rng.integers(1, 4)), "A_BEATS": int(rng.integers(1, 5)), "B_BEATS": int(rng.integers(1, 5)),
                "A_BITS": a_bits, "B_BITS": b_bits, "OUT_BITS": max(a_bits, b_bits)}

    # -- HLS stream function (hls_templates/concat.h) ---------------------------------------
    def hls_config(self) -> dict:
        return {**self.rtl_params(), "VECTORS": self.attr("NumVectors")}
