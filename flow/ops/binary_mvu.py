"""BinaryMVU: XNOR-popcount matrix-vector unit with optional threshold activation."""
from __future__ import annotations

import numpy as np

from flow.ops.base import bits_for, register
from flow.ops.mvu import MVUBase
from flow.ops.semantics import binary_mvu
from flow.codegen.rtlgen import mvu_weight_words


@register
class BinaryMVU(MVUBase):
    """MH neurons over MW binary inputs; PE neurons and SIMD inputs per cycle.

    Without thresholds it emits the popcount (0..MW); with T thresholds the number passed.
    """

    op_type = "BinaryMVU"
    rtl_module = "bnn_mvu"
    hls_function = "binary_mvu"

    def input_bits(self) -> int:
        return 1

    def out_bits(self) -> int:
        return bits_for(self.attr("NumThresholds")) if self.has_thresholds() else bits_for(self.attr("MW"))

    def acc_range(self) -> tuple[int, int]:
        return 0, self.attr("MW")  # the popcount

    def check_weights(self, w: np.ndarray) -> None:
        if not np.isin(w, (0, 1)).all():
            raise ValueError(f"{self.name}: weights must be (MH, MW) bits")

    def compute(self, x: np.ndarray, thr) -> np.ndarray:
        return binary_mvu(x, self.param("weights"), thr)

    def threshold_bits(self) -> int:
        return bits_for(self.attr("MW") + 1)

    def resources(self) -> dict:
        mw, mh, pe, simd = (self.attr(k) for k in ("MW", "MH", "PE", "SIMD"))
        acc = bits_for(mw)
        # XNOR folded into the first compressor level: ~1 LUT6 per lane plus the adder tree
        lanes = pe * simd
        lut = lanes + pe * (acc * 2) + (pe * self.attr("NumThresholds") * acc // 2)
        mem_bits = mw * mh
        depth = self.cycles() // self.vectors()
        bram = 0
        if depth > 1 and mem_bits > 16384:
            bram = -(-mem_bits // 36864)
        elif depth > 1:
            lut += -(-mem_bits // 64)
        return {"LUT": lut, "FF": pe * (acc + 1) * 2 + simd * 2 + 32, "BRAM": bram, "DSP": 0}

    def rtl_stage(self) -> dict:
        mw, mh, pe, simd = (self.attr(k) for k in ("MW", "MH", "PE", "SIMD"))
        t = self.attr("NumThresholds")
        tb = self.threshold_bits()
        memories = {"WEIGHTS_FILE": {"word_bits": pe * simd, "words": mvu_weight_words(self.param("weights"), pe, simd)},
                    **self.threshold_memory(tb)}
        return {
            "module": self.rtl_module,
            "name": self.name,
            "params": {"MW": mw, "MH": mh, "SIMD": simd, "PE": pe, "USE_THRESH": int(t > 0),
                       "T": max(t, 1), "TB": tb, "OUT_BITS": self.out_bits(),
                       "RAM_STYLE": self.attr("ram_style")},
            "in_bits": self.in_stream().width,
            "out_bits": self.out_stream().width,
            "memories": memories,
        }

    def hls_stage(self) -> dict:
        from flow.codegen.hlsgen import memory, stage

        r = self.rtl_stage()
        p, mems = r["params"], r["memories"]
        args = [p["MW"], p["MH"], p["SIMD"], p["PE"], self.vectors()]
        ram = self.attr("ram_style")
        memories = [memory("weights", ram_style=ram, **mems["WEIGHTS_FILE"])]
        if p["USE_THRESH"]:
            args += [p["T"], p["TB"]]
            memories.append(memory("thresholds", ram_style=ram, **mems["THRESH_FILE"]))
        return stage(self, [*args, p["OUT_BITS"]], memories)
