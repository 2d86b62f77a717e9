"""Base class and registry of hardware ops."""
from __future__ import annotations

import numpy as np
from onnx import helper

from flow.graph import Stream

REGISTRY: dict[str, type["HWOp"]] = {}
_MISSING = object()


def register(cls: type["HWOp"]) -> type["HWOp"]:
    """Class decorator: make an op known to the compiler, executor and code generators."""
    REGISTRY[cls.op_type] = cls
    return cls


def clog2(n: int) -> int:
    """Bits to hold values 0..n-1 (at least 1)."""
    return max(1, int(n - 1).bit_length())


def bits_for(maxval: int) -> int:
    """Bits to hold unsigned values 0..maxval (at least 1)."""
    return max(1, int(maxval).bit_length())


class HWOp:
    """One node of the dataflow graph viewed as a hardware op."""

    op_type: str = ""
    rtl_module: str = ""
    hls_function: str = ""  # the stream function of hls_templates/ implementing the op
    folding_attrs: tuple[str, ...] = ()
    n_inputs: int = 1  # stream inputs come first in node.input, weights after them

    def __init__(self, node, graph):
        self.node = node
        self.graph = graph

    # -- attributes -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.node.name

    def attr(self, key: str, default=_MISSING):
        for a in self.node.attribute:
            if a.name == key:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        if default is not _MISSING:
            return default
        raise KeyError(f"{self.name}: missing attribute {key}")

    def set_attr(self, key: str, value) -> None:
        for i, a in enumerate(self.node.attribute):
            if a.name == key:
                del self.node.attribute[i]
                break
        self.node.attribute.append(helper.make_attribute(key, value))

    def param(self, key: str) -> np.ndarray:
        return self.graph.initializer(f"{self.name}_{key}")

    @property
    def stream_inputs(self) -> list[str]:
        return list(self.node.input[: self.n_inputs])

    @property
    def stream_outputs(self) -> list[str]:
        return list(self.node.output)

    def in_stream_of(self, port: int):
        """The stream type of input `port` (ops with one input ignore the port)."""
        return self.in_stream()

    def out_stream_of(self, port: int):
        return self.out_stream()

    # -- the contract every op fulfils ------------------------------------------------
    def in_stream(self) -> Stream:
        raise NotImplementedError(f"{self.op_type} lacks in_stream")

    def out_stream(self) -> Stream:
        raise NotImplementedError(f"{self.op_type} lacks out_stream")

    def execute(self, x: np.ndarray) -> np.ndarray:
        """Exact integer execution on a batch (N, in elems) -> (N, out elems)."""
        raise NotImplementedError(f"{self.op_type} lacks execute")

    def cycles(self) -> int:
        """Cycles per frame in steady state."""
        raise NotImplementedError(f"{self.op_type} lacks a cycle model")

    def beats_needed(self) -> np.ndarray:
        """Input beats of a frame (on each input port) that must have arrived before each
        output beat of the frame can leave: a non-decreasing int64 array, one entry per
        output beat. The default passes beats in proportion (element-wise ops, width
        converters, FIFOs); ops that wait for whole vectors, windows or frames override it.
        flow.fifo sizes the shortcut FIFOs of residual branches from these curves."""
        ib, ob = self.in_stream().beats, self.out_stream().beats
        return -(-np.arange(1, ob + 1, dtype=np.int64) * ib // ob)

    def resources(self) -> dict:
        """Analytic resource estimate (LUT, FF, BRAM, DSP)."""
        raise NotImplementedError(f"{self.op_type} lacks a resource model")

    def rtl_stage(self) -> dict:
        """Parameters and memory contents handed to its RTL engine."""
        raise NotImplementedError(f"{self.op_type} lacks an RTL stage")

    def hls_stage(self) -> dict:
        """Template arguments and memories handed to its HLS stream function (flow.hlsgen.stage)."""
        raise NotImplementedError(f"{self.op_type} lacks an HLS stage")

    def check(self) -> None:
        """Raise ValueError when the op's attributes are inconsistent."""

    def describe(self) -> dict:
        return {"name": self.name, "op": self.op_type}
