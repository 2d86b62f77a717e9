"""BinaryMVU: XNOR-popcount matrix-vector unit with optional threshold activation."""
from __future__ import annotations

import numpy as np

from flow.ops.base import (Engine, Formal, HlsFunction, bits_for, memory, pick, register, single_case, sorted_thresholds,
                           stage)
from flow.ops.mvu import MVU_ATTRS, MVUBase
from flow.ops.packing import mem_text, thresh_words
from flow.ops.semantics import binary_mvu, binary_mvu_kernel, mvu_conv_kernel


def mvu_weight_words(w_bits, pe: int, simd: int) -> list[int]:
    """Binary MVU weight memory: word nf*SF+sf, bit p*SIMD+s = w[nf*PE+p, sf*SIMD+s]."""
    w = np.asarray(w_bits, dtype=np.uint8)
    mh, mw = w.shape
    if mh % pe or mw % simd:
        raise ValueError(f"PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
    nf, sf = mh // pe, mw // simd
    # (nf, pe, sf, simd) -> (nf, sf, pe, simd): bit index p*SIMD+s within a word
    blocks = w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    return [int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little") for row in blocks]


@register
class BinaryMVU(MVUBase):
    """MH neurons over MW binary inputs; PE neurons and SIMD inputs per cycle.

    Without thresholds it emits the popcount (0..MW); with T thresholds the number passed.
    """

    op_type = "BinaryMVU"
    attrs = MVU_ATTRS
    engine = Engine("bnn_mvu", ("common/bnn_popcount.sv", "common/bnn_popcount_leaf.sv", "common/bnn_popcount_stage.sv",
                                "common/bnn_popcount_counter.sv", "common/bnn_popcount_add3.sv", "common/bnn_popcount_tree4.sv",
                                "common/bnn_popcount_ripple.sv", "common/bnn_popcount_fa.sv",
                                "common/bnn_popcount_add2.sv", "common/mvu_sequencer.sv", "common/thresh_count.sv",
                                "common/mvu_output.sv", "common/mvu_pipeline.sv", "mvu_binary/bnn_mvu.sv"),
                    testbench="tb_engines")
    # two input beats (SIMD 2) by two output beats (PE 1), one threshold on the popcounts; capacity:
    # 8 input beats, one of them held by the output's skid register (rtl/common/mvu_output.sv)
    formal = Formal(({"MW": 4, "MH": 2, "SIMD": 2, "PE": 1, "USE_THRESH": 1, "T": 1, "TB": 3, "OUT_BITS": 1,
                      "WEIGHTS_FILE": "weights.mem", "THRESH_FILE": "thresh.mem", "RAM_STYLE": "auto"},),
                    capacity=8, equiv=True)
    hls = HlsFunction("binary_mvu", "mvu_binary.h")

    def input_bits(self) -> int:
        return 1

    def out_bits(self) -> int:
        return bits_for(self.attr("NumThresholds")) if self.has_thresholds() else bits_for(self.attr("MW"))

    def acc_range(self) -> tuple[int, int]:
        return 0, self.attr("MW")  # the popcount

    def check_weights(self, w: np.ndarray) -> None:
        if not np.isin(w, (0, 1)).all():
            raise ValueError(f"{self.name}: weights must be (MH, MW) bits")

    def kernel(self, w: np.ndarray, thr):
        return binary_mvu_kernel(w, thr)

    def conv_kernel(self, w: np.ndarray, thr, window):
        return mvu_conv_kernel(True, w, thr, window)

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

    def rtl_params(self) -> dict:
        t = self.attr("NumThresholds")
        return {"MW": self.attr("MW"), "MH": self.attr("MH"), "SIMD": self.attr("SIMD"), "PE": self.attr("PE"),
                "USE_THRESH": int(t > 0), "T": max(t, 1), "TB": self.threshold_bits(), "OUT_BITS": self.out_bits(),
                "RAM_STYLE": self.attr("ram_style")}

    def memories(self) -> dict:
        pe, simd = self.attr("PE"), self.attr("SIMD")
        return {"WEIGHTS_FILE": {"word_bits": pe * simd, "words": mvu_weight_words(self.param("weights"), pe, simd)},
                **self.threshold_memory(self.threshold_bits())}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["SIMD"]], [p["PE"] * p["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        mw, mh, simd, pe = p["MW"], p["MH"], p["SIMD"], p["PE"]
        x = rng.integers(0, 2, size=(frames, mw), dtype=np.uint8)
        w = rng.integers(0, 2, size=(mh, mw), dtype=np.uint8)
        mems = {p["WEIGHTS_FILE"]: mem_text(mvu_weight_words(w, pe, simd), pe * simd)}
        thr = None
        if p["USE_THRESH"]:
            thr = sorted_thresholds(rng, mh, p["T"], 0, mw + 2)
            mems[p["THRESH_FILE"]] = mem_text(thresh_words(thr, pe, p["TB"]), pe * p["T"] * p["TB"])
        y = binary_mvu(x, w, thr)
        return single_case(x, simd, 1, y, pe, p["OUT_BITS"], (mh // pe) * (mw // simd), mems)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        simd, sf, pe, nf = pick(rng, 1, 16), pick(rng, 1, 4), pick(rng, 1, 4), pick(rng, 1, 3)
        if pick(rng, 0, 3) == 0:  # above 32 lanes the popcount is grouped and takes one more stage
            simd = pick(rng, 33, 200)
        mw = simd * sf
        use_thresh, t = pick(rng, 0, 1), pick(rng, 1, 4)
        return {"MW": mw, "MH": pe * nf, "SIMD": simd, "PE": pe, "USE_THRESH": use_thresh, "T": t,
                "TB": bits_for(mw + 1) + pick(rng, 0, 1), "OUT_BITS": bits_for(t) if use_thresh else bits_for(mw),
                "WEIGHTS_FILE": "weights.mem", "THRESH_FILE": "thresh.mem" if use_thresh else "",
                "RAM_STYLE": str(rng.choice(["auto", "block", "distributed"]))}

    def hls_stage(self) -> dict:
        p, mems = self.rtl_params(), self.memories()
        args = [p["MW"], p["MH"], p["SIMD"], p["PE"], self.vectors()]
        ram = self.attr("ram_style")
        memories = [memory("weights", ram_style=ram, **mems["WEIGHTS_FILE"])]
        if p["USE_THRESH"]:
            args += [p["T"], p["TB"]]
            memories.append(memory("thresholds", ram_style=ram, **mems["THRESH_FILE"]))
        return stage(self, [*args, p["OUT_BITS"]], memories)
