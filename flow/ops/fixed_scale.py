"""FixedScale: per-channel fixed-point affine y = sat(round((x*mult + bias) >> shift)).

Used for the integer logits of multi-bit output layers (mult 1 or 2, a per-class bias)
and for QFX-style fixed-point BatchNorm and shortcut scaling.
"""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import (Attr, Engine, Formal, HlsFunction, HWOp, memory, pick, rand_int, rand_khot, register, single_case,
                           stage)
from flow.ops.int_mvu import signed_bits
from flow.ops.packing import khot_fields, mem_text
from flow.ops.semantics import fixed_scale, khot_terms


def fixed_scale_param_words(mult, bias, pe: int, mult_bits: int, bias_bits: int, mult_mode: int = 1,
                            k: int = 1, sb: int = 1) -> tuple[list[int], int]:
    """fixed_scale.sv parameter memory -> (words, word bits = PE*LW): word nf, lane p at
    [p*LW +: LW] for channel nf*PE+p, LW = MF + bias_bits; the low MF bits hold mult
    (MULT_MODE 0: K-hot field, MF = k*(2+sb); MULT_MODE 1: mult_bits two's complement,
    MF = mult_bits), the bias (two's complement) above."""
    mult = np.asarray(mult, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    c = mult.shape[0]
    if c % pe or bias.shape != mult.shape:
        raise ValueError(f"PE={pe} must divide C={c}; mult and bias must have the same shape")
    blo, bhi = -(1 << (bias_bits - 1)), (1 << (bias_bits - 1)) - 1
    if bias.min(initial=0) < blo or bias.max(initial=0) > bhi:
        raise ValueError(f"bias does not fit in {bias_bits} bits")
    if mult_mode == 0:
        mf, mfield = k * (2 + sb), khot_fields(mult, k, sb)
    elif mult_mode == 1:
        lo, hi = -(1 << (mult_bits - 1)), (1 << (mult_bits - 1)) - 1
        if mult.min(initial=0) < lo or mult.max(initial=0) > hi:
            raise ValueError(f"mult does not fit in {mult_bits} bits")
        mf, mfield = mult_bits, mult & ((1 << mult_bits) - 1)
    else:
        raise ValueError(f"mult_mode must be 0 or 1, got {mult_mode}")
    lw = mf + bias_bits
    words = []
    for nf in range(c // pe):
        word = 0
        for p in range(pe):
            ch = nf * pe + p
            lane = int(mfield[ch]) | ((int(bias[ch]) & ((1 << bias_bits) - 1)) << mf)
            word |= lane << (p * lw)
        words.append(word)
    return words, pe * lw


def fixed_scale_lane_bits(mult_mode: int, mult_bits: int, bias_bits: int, k: int = 1, sb: int = 1) -> int:
    """Bits of one lane (LW) in the fixed_scale parameter memory."""
    return (k * (2 + sb) if mult_mode == 0 else mult_bits) + bias_bits


@register
class FixedScale(HWOp):
    op_type = "FixedScale"
    attrs = (
        Attr("NumChannels", int, finn="NumChannels", doc="channels C"),
        Attr("PE", int, 1, "PE", "channels per beat"),
        Attr("NumVectors", int, 1, doc="vectors of C channels per frame"),
        Attr("InputBits", int, doc="bits of an input element"),
        Attr("InputSigned", int, 0, doc="inputs in two's complement"),
        Attr("OutputBits", int, doc="bits of an output element (saturated)"),
        Attr("OutputSigned", int, 0, doc="outputs in two's complement"),
        Attr("Shift", int, 0, doc="right shift after x*mult + bias"),
        Attr("Rounding", int, 0, doc="1: round half up, 0: floor"),
    )
    lanes, channels = "PE", "NumChannels"
    folding_attrs = ("PE",)
    engine = Engine("fixed_scale", ("common/lane_product.sv", "fixed_scale/fixed_scale.sv"))
    formal = Formal(({"C": 2, "PE": 1, "IN_BITS": 2, "IN_SIGNED": 1, "MULT_BITS": 3, "BIAS_BITS": 3, "SHIFT": 1,
                      "OUT_BITS": 3, "OUT_SIGNED": 1, "ROUND": 1, "MULT_MODE": 1, "K": 1, "SB": 1, "PARAMS_FILE": "p.mem",
                      "RAM_STYLE": "auto"},), capacity=2, equiv=True)
    hls = HlsFunction("fixed_scale", "fixed_scale.h")
    finn_op = "ChannelwiseOp_hls"
    finn_aliases = ("ChannelwiseOp_Batch",)
    tb_frames = 30

    def vectors(self) -> int:
        return self.attr("NumVectors", 1)

    def in_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("InputBits"), self.vectors() * self.attr("NumChannels"))

    def out_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("OutputBits"), self.vectors() * self.attr("NumChannels"))

    def check(self) -> None:
        if self.attr("NumChannels") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide NumChannels={self.attr('NumChannels')}")

    def execute(self, x: np.ndarray) -> np.ndarray:
        c = self.attr("NumChannels")
        n = x.shape[0]
        y = fixed_scale(x.reshape(-1, c), self.param("mult"), self.param("bias"), self.attr("Shift"),
                        self.attr("OutputBits"), bool(self.attr("OutputSigned")),
                        "half_up" if self.attr("Rounding") else "floor")
        return y.reshape(n, -1)

    def cycles(self) -> int:
        return self.in_stream().beats

    def _widths(self) -> tuple[int, int]:
        m, b = self.param("mult"), self.param("bias")
        return signed_bits(int(m.min()), int(m.max())), signed_bits(int(b.min()), int(b.max()))

    def resources(self) -> dict:
        pe, ib = self.attr("PE"), self.attr("InputBits")
        mb, bb = self._widths()
        mode, k, _sb = self.mult_terms()
        dsp = pe if mode == 1 else 0
        return {"LUT": pe * (k * ib + bb) + 16, "FF": pe * self.attr("OutputBits") + 16, "BRAM": 0, "DSP": dsp}

    def mult_terms(self) -> tuple[int, int, int]:
        """(MULT_MODE, K, SB): shift-add when every multiplier has at most 2 power-of-two terms."""
        m = self.param("mult")
        for k in (1, 2):
            try:
                terms = khot_terms(m, k)
            except ValueError:
                continue
            return 0, k, max(1, int(terms[..., 1].max()).bit_length())
        return 1, 1, 1

    def rtl_params(self) -> dict:
        mb, bb = self._widths()
        mode, k, sb = self.mult_terms()
        return {"C": self.attr("NumChannels"), "PE": self.attr("PE"), "IN_BITS": self.attr("InputBits"),
                "IN_SIGNED": self.attr("InputSigned"), "MULT_BITS": mb, "BIAS_BITS": bb, "SHIFT": self.attr("Shift"),
                "OUT_BITS": self.attr("OutputBits"), "OUT_SIGNED": self.attr("OutputSigned"),
                "ROUND": self.attr("Rounding"), "MULT_MODE": mode, "K": k, "SB": sb}

    def memories(self) -> dict:
        mb, bb = self._widths()
        mode, k, sb = self.mult_terms()
        words, word_bits = fixed_scale_param_words(self.param("mult"), self.param("bias"), self.attr("PE"), mb, bb,
                                                   mode, k, sb)
        return {"PARAMS_FILE": {"word_bits": word_bits, "words": words}}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["PE"] * p["IN_BITS"]], [p["PE"] * p["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        c, pe, ib = p["C"], p["PE"], p["IN_BITS"]
        x = rand_int(rng, ib, bool(p["IN_SIGNED"]), (frames, c))
        if p["MULT_MODE"] == 0:
            mult = rand_khot(rng, p["K"], p["SB"], (c,))
        else:
            mult = rand_int(rng, p["MULT_BITS"], True, (c,))
        bias = rand_int(rng, p["BIAS_BITS"], True, (c,))
        y = fixed_scale(x, mult, bias, p["SHIFT"], p["OUT_BITS"], bool(p["OUT_SIGNED"]),
                        # fixed_scale rejects "half_up" with shift 0 (the same as floor there)
                        "half_up" if p["ROUND"] and p["SHIFT"] > 0 else "floor")
        words, word_bits = fixed_scale_param_words(mult, bias, pe, p["MULT_BITS"], p["BIAS_BITS"], p["MULT_MODE"],
                                                   p["K"], p["SB"])
        lw = fixed_scale_lane_bits(p["MULT_MODE"], p["MULT_BITS"], p["BIAS_BITS"], p["K"], p["SB"])
        assert word_bits == pe * lw
        return single_case(x, pe, ib, y, pe, p["OUT_BITS"], c // pe, {p["PARAMS_FILE"]: mem_text(words, pe * lw)})

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        pe = pick(rng, 1, 3)
        return {"C": pe * pick(rng, 1, 3), "PE": pe, "IN_BITS": pick(rng, 1, 8), "IN_SIGNED": pick(rng, 0, 1),
                "MULT_BITS": pick(rng, 2, 8), "BIAS_BITS": pick(rng, 2, 10), "SHIFT": pick(rng, 0, 6),
                "OUT_BITS": pick(rng, 1, 8), "OUT_SIGNED": pick(rng, 0, 1), "ROUND": pick(rng, 0, 1),
                "MULT_MODE": pick(rng, 0, 1), "K": pick(rng, 1, 3), "SB": pick(rng, 1, 3), "PARAMS_FILE": "p.mem",
                "RAM_STYLE": str(rng.choice(["auto", "block"]))}

    def acc_bits(self) -> int:
        """Two's complement bits of x*mult + bias (+ the rounding constant) for every input."""
        ib = self.attr("InputBits")
        xlo, xhi = (-(1 << (ib - 1)), (1 << (ib - 1)) - 1) if self.attr("InputSigned") else (0, (1 << ib) - 1)
        m, b = self.param("mult").astype(np.int64), self.param("bias").astype(np.int64)
        ends = np.stack([xlo * m + b, xhi * m + b])
        rnd = (1 << (self.attr("Shift") - 1)) if self.attr("Rounding") and self.attr("Shift") > 0 else 0
        return signed_bits(min(int(ends.min()), 0), max(int(ends.max()) + rnd, 0)) + 1

    def hls_stage(self) -> dict:
        p = self.rtl_params()
        ob, signed = p["OUT_BITS"], p["OUT_SIGNED"]
        lo, hi = (-(1 << (ob - 1)), (1 << (ob - 1)) - 1) if signed else (0, (1 << ob) - 1)
        args = [p["C"], p["PE"], self.vectors(), p["IN_BITS"], p["IN_SIGNED"], p["MULT_MODE"], p["MULT_BITS"],
                p["K"], p["SB"], p["BIAS_BITS"], p["SHIFT"], p["ROUND"], self.acc_bits(), lo, hi, ob]
        return stage(self, args, [memory("params", **self.memories()["PARAMS_FILE"])], out_signed=bool(signed))

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.vectors(), self.attr("NumChannels")], "pe": self.attr("PE"),
                "simd": 1}
