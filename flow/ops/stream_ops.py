"""Stream plumbing for branching graphs: Duplicate (fork) and AddStreams (residual join)."""
from __future__ import annotations

import numpy as np

from flow.ir.graph import Stream
from flow.ops.base import (Attr, EngineCase, Engine, Formal, HlsFunction, HWOp, beat_ints, pick, rand_int, register,
                           smallest_lanes, stage)
from flow.ops.semantics import add_streams


class _Plumbing(HWOp):
    """Stream plumbing folds to its producer's lanes where they meet the target."""

    lanes = "PE"
    folding_attrs = ("PE",)
    tb_frames = 150

    def fold_for(self, target: int, prev, nxt) -> None:
        n = self.attr(self.channels)
        self.set_attr("PE", smallest_lanes(n, 1, target, prev.out_stream().lanes if prev else None))


def _random_words(rng: np.random.Generator, width: int, frames: int) -> list[int]:
    return [int.from_bytes(rng.bytes(-(-width // 8)), "little") & ((1 << width) - 1) for _ in range(frames)]


@register
class Duplicate(_Plumbing):
    """One stream in, the same beats on two outputs."""

    op_type = "Duplicate"
    attrs = (
        Attr("NumElems", int, doc="elements per frame"),
        Attr("PE", int, 1, "PE", "elements per beat"),
        Attr("ElemBits", int, doc="bits of an element"),
    )
    channels = "NumElems"
    engine = Engine("duplicate", ("stream_ops/duplicate.sv",), outputs=("m0_axis", "m1_axis"))
    formal = Formal(({"WIDTH": 2},), capacity=1, equiv=True)  # the held beat
    hls = HlsFunction("duplicate", "stream_ops.h")
    finn_op = "DuplicateStreams_hls"
    finn_aliases = ("DuplicateStreams_Batch",)
    finn_port_fifos = True  # the shortcut FIFO, as FINN's per-port FIFO depths

    def in_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("ElemBits"), self.attr("NumElems"))

    def out_stream(self) -> Stream:
        return self.in_stream()

    def check(self) -> None:
        if self.attr("NumElems") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide {self.attr('NumElems')} elements")

    def execute(self, x: np.ndarray):
        return x, x

    def cycles(self) -> int:
        return self.in_stream().beats

    def resources(self) -> dict:
        return {"LUT": 4, "FF": 2, "BRAM": 0, "DSP": 0}

    def rtl_params(self) -> dict:
        return {"WIDTH": self.in_stream().width}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["WIDTH"]], [p["WIDTH"], p["WIDTH"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        v = _random_words(rng, p["WIDTH"], frames)
        return EngineCase({"s_axis": v}, {"m0_axis": list(v), "m1_axis": list(v)}, 1, 1, 1)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        return {"WIDTH": pick(rng, 1, 80)}

    def hls_stage(self) -> dict:
        s = self.in_stream()
        return stage(self, [s.width, s.beats])

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("NumElems")], "pe": self.attr("PE"), "simd": 1}


@register
class AddStreams(_Plumbing):
    """Element-wise sum of two integer streams (the residual join)."""

    op_type = "AddStreams"
    attrs = (
        Attr("NumElems", int, doc="elements per frame"),
        Attr("PE", int, 1, "PE", "elements per beat"),
        Attr("InBitsA", int, doc="bits of an element of input 0"),
        Attr("InBitsB", int, doc="bits of an element of input 1"),
        Attr("OutputBits", int, doc="bits of a sum"),
        Attr("Signed", int, 0, doc="inputs and sum in two's complement"),
    )
    channels = "NumElems"
    engine = Engine("add_streams", ("stream_ops/add_streams.sv",), inputs=("s0_axis", "s1_axis"))
    formal = Formal(({"PE": 1, "A_BITS": 2, "B_BITS": 2, "SIGNED": 1, "OUT_BITS": 3},), capacity=1, equiv=True)
    hls = HlsFunction("add_streams", "stream_ops.h")
    finn_op = "AddStreams_hls"
    finn_aliases = ("AddStreams_Batch",)
    n_inputs = 2

    def in_stream_of(self, port: int) -> Stream:
        bits = self.attr("InBitsA") if port == 0 else self.attr("InBitsB")
        return Stream(self.attr("PE"), bits, self.attr("NumElems"))

    def in_stream(self) -> Stream:
        return self.in_stream_of(0)

    def out_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("OutputBits"), self.attr("NumElems"))

    def check(self) -> None:
        if self.attr("NumElems") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide {self.attr('NumElems')} elements")

    def execute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return add_streams(a, b)

    def cycles(self) -> int:
        return self.out_stream().beats

    def resources(self) -> dict:
        pe, ob = self.attr("PE"), self.attr("OutputBits")
        return {"LUT": pe * ob + 4, "FF": pe * ob + 4, "BRAM": 0, "DSP": 0}

    def rtl_params(self) -> dict:
        return {"PE": self.attr("PE"), "A_BITS": self.attr("InBitsA"), "B_BITS": self.attr("InBitsB"),
                "SIGNED": self.attr("Signed"), "OUT_BITS": self.attr("OutputBits")}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["PE"] * p["A_BITS"], p["PE"] * p["B_BITS"]], [p["PE"] * p["OUT_BITS"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        pe, sg = p["PE"], bool(p["SIGNED"])
        a = rand_int(rng, p["A_BITS"], sg, (frames, pe))
        b = rand_int(rng, p["B_BITS"], sg, (frames, pe))
        y = add_streams(a, b)
        return EngineCase({"s0_axis": beat_ints(a, pe, p["A_BITS"]), "s1_axis": beat_ints(b, pe, p["B_BITS"])},
                          {"m_axis": beat_ints(y, pe, p["OUT_BITS"])}, 1, 1, 1)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        a, b = pick(rng, 1, 8), pick(rng, 1, 8)
        return {"PE": pick(rng, 1, 4), "A_BITS": a, "B_BITS": b, "SIGNED": pick(rng, 0, 1), "OUT_BITS": max(a, b) + 1}

    def hls_stage(self) -> dict:
        signed = self.attr("Signed")
        return stage(self, [self.attr("PE"), self.attr("InBitsA"), self.attr("InBitsB"), signed,
                            self.attr("OutputBits"), self.out_stream().beats], out_signed=bool(signed))

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("NumElems")], "pe": self.attr("PE"), "simd": 1}


@register
class StreamFIFO(_Plumbing):
    """A FIFO on the shortcut of a residual branch. Its depth in beats is `Depth` once the
    fifo step (flow.passes.fifo) has sized it, else a whole frame (DepthElems elements) plus 4."""

    op_type = "StreamFIFO"
    attrs = (
        Attr("Elems", int, doc="elements per frame"),
        Attr("ElemBits", int, doc="bits of an element"),
        Attr("PE", int, 1, "PE", "elements per beat"),
        Attr("DepthElems", int, doc="elements the frame-sized FIFO holds"),
        Attr("Depth", int, 0, "depth", "depth in beats (0: frame-sized)"),
        Attr("MinDepth", int, None, doc="the smallest deadlock-free depth (set by the fifo step)"),
    )
    channels = "Elems"
    engine = Engine("fifo", ("fifo/fifo.sv",), testbench="tb_engines")
    formal = Formal(({"DEPTH": 2, "WIDTH": 2, "SYNC_READ": 0, "RAM_STYLE": "auto"},
                     {"DEPTH": 2, "WIDTH": 2, "SYNC_READ": 1, "RAM_STYLE": "block"}),
                    capacity=lambda p: p["DEPTH"] + 2 * p["SYNC_READ"], equiv=True)  # + read and output registers
    hls = HlsFunction("fifo", "stream_ops.h")
    fifo_depth_attr = "Depth"
    # FINN's StreamingFIFO is plumbing a bnnflow folding file skips: no finn_op

    def in_stream(self) -> Stream:
        return Stream(self.attr("PE"), self.attr("ElemBits"), self.attr("Elems"))

    def out_stream(self) -> Stream:
        return self.in_stream()

    def match_lanes(self, prev, nxt, after_file: bool = False) -> None:
        """Before a join that reads its inputs in turns (a concat: some of its output beats take
        no beat of this input) with wider beats: the join's lanes, so that the width converter
        comes before the FIFO and the join can take a beat in every cycle of its turn (behind an
        upsizing converter it would wait on the producer's rate in each turn)."""
        if nxt is None or len(nxt.stream_inputs) < 2 or self.stream_outputs[0] not in nxt.stream_inputs:
            return
        port = nxt.stream_inputs.index(self.stream_outputs[0])
        lanes = nxt.in_stream_of(port).lanes
        if lanes > self.attr("PE") and self.attr("Elems") % lanes == 0 \
                and np.any(np.diff(nxt.beats_needed_of(port)) == 0):
            self.set_attr("PE", lanes)

    def frame_depth(self) -> int:
        return -(-self.attr("DepthElems") // self.attr("PE")) + 4

    def depth(self) -> int:
        return int(self.attr("Depth", 0)) or self.frame_depth()

    def bits(self) -> int:
        return self.depth() * self.in_stream().width

    def check(self) -> None:
        if self.attr("Elems") % self.attr("PE"):
            raise ValueError(f"{self.name}: PE={self.attr('PE')} does not divide {self.attr('Elems')} elements")

    def execute(self, x: np.ndarray) -> np.ndarray:
        return x

    def cycles(self) -> int:
        return self.in_stream().beats

    def resources(self) -> dict:
        bits = self.depth() * self.in_stream().width
        bram = -(-bits // 36864) if bits > 16384 else 0
        return {"LUT": 16 + (0 if bram else -(-bits // 64)), "FF": self.in_stream().width + 16, "BRAM": bram, "DSP": 0}

    def rtl_params(self) -> dict:
        w = self.in_stream().width
        big = self.depth() * w > 16384
        return {"DEPTH": self.depth(), "WIDTH": w, "SYNC_READ": int(big), "RAM_STYLE": "block" if big else "auto"}

    @classmethod
    def port_widths(cls, p: dict) -> tuple[list[int], list[int]]:
        return [p["WIDTH"]], [p["WIDTH"]]

    @classmethod
    def testbench_case(cls, p: dict, rng: np.random.Generator, frames: int):
        v = _random_words(rng, p["WIDTH"], frames)
        return EngineCase({"s_axis": v}, {"m_axis": list(v)}, 1, 1, 1 if p["DEPTH"] > 1 else 2)

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        sync = pick(rng, 0, 1)
        return {"DEPTH": pick(rng, 1, 9), "WIDTH": pick(rng, 1, 40), "SYNC_READ": sync,
                "RAM_STYLE": "block" if sync else "auto"}

    def hls_stage(self) -> dict:
        s = self.in_stream()
        # the sized depth follows the RTL engines' dependency curves; the HLS functions of the
        # long branch buffer differently, so their top keeps the frame-sized shortcut
        return {**stage(self, [s.width, s.beats]), "out_depth": self.frame_depth()}

    def describe(self) -> dict:
        return {**super().describe(), "shape": [self.attr("Elems")], "pe": self.attr("PE"), "simd": 1,
                "depth": self.depth(), "min_depth": self.attr("MinDepth", None), "frame_depth": self.frame_depth(),
                "fifo_bits": self.bits()}
