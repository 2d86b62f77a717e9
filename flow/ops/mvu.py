"""What the binary and the integer matrix-vector units share: attributes, folding, streams,
the fold schedule's cycle count, execution over NumVectors input vectors, the threshold
memory, and the description in reports. Not an op itself (nothing is registered here)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import Attr, HWOp, divisors
from flow.ops.packing import thresh_words
from flow.ops.sliding_window import SlidingWindow

MVU_ATTRS = (
    Attr("MW", int, finn="MW", doc="inputs per vector (matrix width)"),
    Attr("MH", int, finn="MH", doc="neurons (matrix height)"),
    Attr("PE", int, 1, "PE", "neurons per cycle"),
    Attr("SIMD", int, 1, "SIMD", "inputs per cycle"),
    Attr("NumThresholds", int, 0, doc="thresholds per neuron (0: the accumulator leaves)"),
    Attr("NumVectors", int, 1, doc="input vectors per frame (output pixels of a convolution)"),
    Attr("ram_style", str, "auto", "ram_style", "weight memory: auto, block, distributed or ultra"),
)


def mvu_folding(mw: int, mh: int, target: int, vectors: int = 1, simd_choices=None) -> tuple[int, int]:
    """Fewest lanes PE*SIMD with vectors*(MH/PE)*(MW/SIMD) <= target; ties prefer wider SIMD."""
    best = None
    for simd in (simd_choices or divisors(mw)):
        for pe in divisors(mh):
            if vectors * (mh // pe) * (mw // simd) <= target:
                key = (pe * simd, pe)
                if best is None or key < best[0]:
                    best = (key, pe, simd)
                break  # larger PE for this SIMD only costs more lanes
    if best is None:
        simd = max(simd_choices or [mw])
        return mh, simd
    return best[1], best[2]


class MVUBase(HWOp):
    """MH neurons over MW inputs; PE neurons and SIMD inputs per cycle, NF*SF steps per vector."""

    lanes, channels = "PE", "MH"  # and SIMD lanes over MW inputs
    folding_attrs = ("PE", "SIMD")
    paces = True
    finn_op = "MVAU_hls"
    finn_aliases = ("MatrixVectorActivation", "StreamingFCLayer_Batch")
    signed_acc = False  # accumulators and thresholds in two's complement (else unsigned)

    def input_bits(self) -> int:
        raise NotImplementedError

    def out_bits(self) -> int:
        raise NotImplementedError

    def acc_range(self) -> tuple[int, int]:
        """Bounds of every accumulator value the unit can reach."""
        raise NotImplementedError

    def kernel(self, w: np.ndarray, thr):
        """The exact semantics as a function of (vectors, MW) inputs, weights w and thresholds
        thr (or None) prepared once."""
        raise NotImplementedError

    def conv_kernel(self, w: np.ndarray, thr, window):
        """`kernel` over the sliding windows of images (N, H*W*C) as one convolution
        (`flow.ops.semantics.mvu_conv_kernel`; window as `SlidingWindow.conv_window` gives it),
        or None."""
        return None

    def check_weights(self, w: np.ndarray) -> None:
        raise NotImplementedError

    def vectors(self) -> int:
        return self.attr("NumVectors", 1)

    def has_thresholds(self) -> bool:
        return self.attr("NumThresholds") > 0

    def in_stream(self) -> Stream:
        return Stream(self.attr("SIMD"), self.input_bits(), self.vectors() * self.attr("MW"))

    def out_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.out_bits(), self.vectors() * self.attr("MH"))

    def fold_for(self, target: int, prev, nxt) -> None:
        choices = prev.next_lane_choices() if prev is not None else None
        pe, simd = mvu_folding(self.attr("MW"), self.attr("MH"), target, self.vectors(), choices)
        self.set_attr("PE", pe)
        self.set_attr("SIMD", simd)

    def lanes_wanted(self) -> int:
        return self.attr("SIMD")

    def folding_cycles(self) -> set[int]:
        mw, mh, v = self.attr("MW"), self.attr("MH"), self.vectors()
        return {v * (mh // pe) * (mw // simd) for pe in divisors(mh) for simd in divisors(mw)}

    def check(self) -> None:
        mw, mh, pe, simd = (self.attr(k) for k in ("MW", "MH", "PE", "SIMD"))
        if mw % simd:
            raise ValueError(f"{self.name}: SIMD={simd} does not divide MW={mw}")
        if mh % pe:
            raise ValueError(f"{self.name}: PE={pe} does not divide MH={mh}")
        w = self.param("weights")
        if w.shape != (mh, mw):
            raise ValueError(f"{self.name}: weights must be (MH, MW)")
        self.check_weights(w)

    def execute(self, x: np.ndarray) -> np.ndarray:
        return self.executor()(x)

    def executor(self):
        thr = self.param("thresholds") if self.has_thresholds() else None
        run, mw = self.kernel(self.param("weights"), thr), self.attr("MW")
        return lambda x: run(x.reshape(-1, mw)).reshape(x.shape[0], -1)

    def executor_after(self, producer):
        """After the sliding windows of an image: one convolution over the image where the
        weights fit torch's int8 kernels (`conv_kernel`); the windows are written out only
        where torch is not at hand."""
        if not isinstance(producer, SlidingWindow):
            return None
        thr = self.param("thresholds") if self.has_thresholds() else None
        conv = self.conv_kernel(self.param("weights"), thr, producer.conv_window())
        if conv is None:
            return None
        windows, mvu = producer.executor(), self.executor()

        def run(x: np.ndarray) -> np.ndarray:
            y = conv(x)
            return mvu(windows(x)) if y is None else y
        return run

    def cycles(self) -> int:
        return self.vectors() * (self.attr("MH") // self.attr("PE")) * (self.attr("MW") // self.attr("SIMD"))

    def beats_needed(self) -> np.ndarray:
        """Every output beat of a vector waits for the whole input vector (MW/SIMD beats)."""
        nf, sf = self.attr("MH") // self.attr("PE"), self.attr("MW") // self.attr("SIMD")
        return (np.arange(self.vectors() * nf, dtype=np.int64) // nf + 1) * sf

    def stored_thresholds(self) -> np.ndarray:
        """The thresholds as the threshold memory holds them: clamped to [lo, hi + 1] of the
        accumulator range. Every reachable accumulator compares the same as with the given
        ones (one at or below lo is always reached, one above hi never), and the field
        holding them stays as narrow as the accumulator range allows."""
        lo, hi = self.acc_range()
        return np.clip(self.param("thresholds"), lo, hi + 1)

    def threshold_memory(self, tb: int) -> dict:
        """The THRESH_FILE memory entry ({} without thresholds)."""
        t, pe = self.attr("NumThresholds"), self.attr("PE")
        if not t:
            return {}
        words = thresh_words(self.stored_thresholds(), pe, tb, signed=self.signed_acc)
        return {"THRESH_FILE": {"word_bits": pe * t * tb, "words": words}}

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("MH"), self.attr("MW")], "vectors": self.vectors(),
                "pe": self.attr("PE"), "simd": self.attr("SIMD")}
