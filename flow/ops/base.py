"""The op contract: what every hardware op declares, and the base class that derives the rest.

An op class declares, next to its numpy semantics and models:
- `attrs`: its node attributes as a typed schema (`Attr`: name, type, default, FINN's name);
  `lanes` names the folding attribute that sets its stream lanes and `channels` the attribute
  the lanes must divide; `folding_attrs` the attributes a folding file may set;
- `engine`: its hand-written RTL engine (`Engine`: module, library sources, stream ports);
  `rtl_params()` the engine's SystemVerilog parameters and `memories()` its packed memory
  contents; classmethods `port_widths(params)` and `testbench_case(params, rng, frames)` let
  the cocotb testbenches drive the engine without a graph, and `random_params(rng)` draws
  configurations for the random tier;
- `hls`: its stream function of hls_templates/ (`HlsFunction`: function, header) and
  `hls_config()` the *named* fields of the function's config struct;
- `finn_op`: FINN's op class of the same hardware (folding files), with `finn_aliases`.
Code generators, folding and the testbenches read these; none of them keeps a per-op table.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper

from flow.ir.graph import Stream
from flow.ir.registry import REGISTRY, register  # noqa: F401  (re-exported for the op modules)

_MISSING = object()
REQUIRED = _MISSING


@dataclass(frozen=True)
class Attr:
    """One node attribute: its name, Python type (int, float, str, list), default and FINN name."""

    name: str
    type: type = int
    default: object = REQUIRED
    finn: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class Engine:
    """An op's hand-written RTL engine: module name, library sources (relative to rtl/, in
    compile order) and its stream port prefixes (inputs, outputs), in port order."""

    module: str
    sources: tuple[str, ...]
    inputs: tuple[str, ...] = ("s_axis",)
    outputs: tuple[str, ...] = ("m_axis",)
    testbench: str = "tb_batch"  # the cocotb testbench module of sim/ that drives it


@dataclass(frozen=True)
class HlsFunction:
    """An op's stream function in hls_templates/: its name and the header that defines it."""

    function: str
    header: str


def clog2(n: int) -> int:
    """Bits to hold values 0..n-1 (at least 1)."""
    return max(1, int(n - 1).bit_length())


def bits_for(maxval: int) -> int:
    """Bits to hold unsigned values 0..maxval (at least 1)."""
    return max(1, int(maxval).bit_length())


class HWOp:
    """One node of the dataflow graph viewed as a hardware op."""

    op_type: str = ""
    attrs: tuple[Attr, ...] = ()  # the attribute schema (empty: not declared yet)
    lanes: str | None = None  # the folding attribute that sets the stream lanes (PE, SIMD)
    channels: str | None = None  # the attribute `lanes` must divide
    folding_attrs: tuple[str, ...] = ()
    engine: Engine | None = None
    hls: HlsFunction | None = None
    finn_op: str | None = None  # FINN's op class (folding-file keys `<finn_op>_<i>`)
    finn_aliases: tuple[str, ...] = ()  # older FINN names of the same op
    n_inputs: int = 1  # stream inputs come first in node.input, weights after them

    @classmethod
    def schema(cls) -> dict[str, Attr]:
        return {a.name: a for a in cls.attrs}

    @classmethod
    def make_attrs(cls, values: dict) -> dict:
        """Checked node attributes: unknown names and missing required ones raise ValueError;
        defaults are filled in and values coerced to the declared type."""
        schema = cls.schema()
        unknown = sorted(set(values) - set(schema))
        if schema and unknown:
            raise ValueError(f"{cls.op_type}: unknown attribute(s) {', '.join(unknown)}; declared: {', '.join(schema)}")
        out = {}
        for name, a in schema.items():
            if name in values:
                out[name] = a.type(values[name]) if a.type in (int, float, str) else values[name]
            elif a.default is not REQUIRED:
                out[name] = a.default
            else:
                raise ValueError(f"{cls.op_type}: attribute {name} is required")
        return out or dict(values)

    def __init__(self, node, graph):
        self.node = node
        self.graph = graph

    # -- attributes -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.node.name

    def attr(self, key: str, default=_MISSING):
        """A node attribute; with a declared schema, only declared names, defaults from it."""
        schema = self.schema()
        if schema and key not in schema:
            raise KeyError(f"{self.op_type} has no attribute {key!r}; declared: {', '.join(schema)}")
        for a in self.node.attribute:
            if a.name == key:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        if default is not _MISSING:
            return default
        if key in schema and schema[key].default is not REQUIRED:
            return schema[key].default
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
        flow.passes.fifo sizes the shortcut FIFOs of residual branches from these curves."""
        ib, ob = self.in_stream().beats, self.out_stream().beats
        return -(-np.arange(1, ob + 1, dtype=np.int64) * ib // ob)

    def beats_needed_of(self, port: int) -> np.ndarray:
        """`beats_needed` of input `port` (ops whose inputs are read in turns, as a concat, override it)."""
        return self.beats_needed()

    def resources(self) -> dict:
        """Analytic resource estimate (LUT, FF, BRAM, DSP)."""
        raise NotImplementedError(f"{self.op_type} lacks a resource model")

    # -- RTL engine -----------------------------------------------------------------
    def rtl_params(self) -> dict:
        """The engine's SystemVerilog parameters (memory-file parameters excluded)."""
        raise NotImplementedError(f"{self.op_type} lacks RTL parameters")

    def memories(self) -> dict:
        """Memory-file parameter -> {"word_bits": int, "words": [int]}: the packed contents."""
        return {}

    def rtl_stage(self) -> dict:
        """Everything the RTL top generator needs of this op's engine instance."""
        ins = [self.in_stream_of(k).width for k in range(len(self.engine.inputs))]
        outs = [self.out_stream_of(k).width for k in range(len(self.engine.outputs))]
        return {"module": self.engine.module, "name": self.name, "params": self.rtl_params(),
                "in_bits": ins if len(ins) > 1 else ins[0], "out_bits": outs if len(outs) > 1 else outs[0],
                "memories": self.memories()}

    @classmethod
    def port_widths(cls, params: dict) -> tuple[list[int], list[int]]:
        """Stream widths in bits (input ports, output ports) of an engine instance with `params`."""
        raise NotImplementedError(f"{cls.op_type} lacks port widths")

    @classmethod
    def testbench_case(cls, params: dict, rng: np.random.Generator, frames: int):
        """Stimulus and expected output of the engine with `params` (sim/engine_cases.Case)."""
        raise NotImplementedError(f"{cls.op_type} lacks a testbench case")

    @classmethod
    def random_params(cls, rng: np.random.Generator) -> dict:
        """One random legal engine configuration (the random cocotb tier)."""
        raise NotImplementedError(f"{cls.op_type} lacks random configurations")

    # -- HLS stream function ----------------------------------------------------------
    def hls_config(self) -> dict:
        """Named fields of the stream function's config struct (field -> int)."""
        raise NotImplementedError(f"{self.op_type} lacks an HLS config")

    def hls_stage(self) -> dict:
        """Template arguments and memories handed to its HLS stream function (flow.codegen.hlsgen.stage)."""
        raise NotImplementedError(f"{self.op_type} lacks an HLS stage")

    def check(self) -> None:
        """Raise ValueError when the op's attributes are inconsistent."""

    def describe(self) -> dict:
        return {"name": self.name, "op": self.op_type}
