"""FixedScale: per-channel fixed-point affine y = sat(round((x*mult + bias) >> shift)).

Used for the integer logits of multi-bit output layers (mult 1 or 2, a per-class bias)
and for QFX-style fixed-point BatchNorm and shortcut scaling.
"""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import HWOp, register
from flow.ops.semantics import fixed_scale


@register
class FixedScale(HWOp):
    op_type = "FixedScale"
    rtl_module = "fixed_scale"
    hls_function = "fixed_scale"
    folding_attrs = ("PE",)

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
        from flow.ops.int_mvu import signed_bits

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
        from flow.ops.semantics import khot_terms

        m = self.param("mult")
        for k in (1, 2):
            try:
                terms = khot_terms(m, k)
            except ValueError:
                continue
            return 0, k, max(1, int(terms[..., 1].max()).bit_length())
        return 1, 1, 1

    def rtl_stage(self) -> dict:
        from flow.codegen.rtlgen import fixed_scale_param_words

        pe, c = self.attr("PE"), self.attr("NumChannels")
        mb, bb = self._widths()
        mode, k, sb = self.mult_terms()
        words, word_bits = fixed_scale_param_words(self.param("mult"), self.param("bias"), pe, mb, bb, mode, k, sb)
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {"C": c, "PE": pe, "IN_BITS": self.attr("InputBits"), "IN_SIGNED": self.attr("InputSigned"),
                       "MULT_BITS": mb, "BIAS_BITS": bb, "SHIFT": self.attr("Shift"),
                       "OUT_BITS": self.attr("OutputBits"), "OUT_SIGNED": self.attr("OutputSigned"),
                       "ROUND": self.attr("Rounding"), "MULT_MODE": mode, "K": k, "SB": sb},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": {"PARAMS_FILE": {"word_bits": word_bits, "words": words}},
        }

    def acc_bits(self) -> int:
        """Two's complement bits of x*mult + bias (+ the rounding constant) for every input."""
        from flow.ops.int_mvu import signed_bits

        ib = self.attr("InputBits")
        xlo, xhi = (-(1 << (ib - 1)), (1 << (ib - 1)) - 1) if self.attr("InputSigned") else (0, (1 << ib) - 1)
        m, b = self.param("mult").astype(np.int64), self.param("bias").astype(np.int64)
        ends = np.stack([xlo * m + b, xhi * m + b])
        rnd = (1 << (self.attr("Shift") - 1)) if self.attr("Rounding") and self.attr("Shift") > 0 else 0
        return signed_bits(min(int(ends.min()), 0), max(int(ends.max()) + rnd, 0)) + 1

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import memory, stage

        r = self.rtl_stage()
        p = r["params"]
        ob, signed = p["OUT_BITS"], p["OUT_SIGNED"]
        lo, hi = (-(1 << (ob - 1)), (1 << (ob - 1)) - 1) if signed else (0, (1 << ob) - 1)
        args = [p["C"], p["PE"], self.vectors(), p["IN_BITS"], p["IN_SIGNED"], p["MULT_MODE"], p["MULT_BITS"],
                p["K"], p["SB"], p["BIAS_BITS"], p["SHIFT"], p["ROUND"], self.acc_bits(), lo, hi, ob]
        return stage(self, args, [memory("params", **r["memories"]["PARAMS_FILE"])], out_signed=bool(signed))

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.vectors(), self.attr("NumChannels")], "pe": self.attr("PE"),
                "simd": 1}
