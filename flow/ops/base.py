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
- `finn_op`: FINN's op class of the same hardware (folding files), with `finn_aliases`;
- folding: `paces` (the MVUs, folded first from the target alone), `fold_for(target, prev,
  nxt)`, `match_lanes(...)`, `lanes_wanted()`, `next_lane_choices()`, `folding_cycles()`;
  `fifo_depth_attr` / `finn_port_fifos` (FIFO depths of folding files), `label_head`;
- `formal`: the smallest engine configurations and bounds of its formal proofs (`Formal`).
Code generators, folding and the testbenches read these; none of them keeps a per-op table.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import helper

from flow.core.naf import naf_digits
from flow.core.wire import pack_beats
from flow.ir.graph import Stream
from flow.ir.registry import REGISTRY, register  # noqa: F401  (re-exported for the op modules)

_MISSING = object()
REQUIRED = _MISSING


@dataclass(frozen=True)
class Attr:
    """One node attribute: its name, Python type (int, float, str, list), default and FINN name.
    `like` names an attribute declared before it whose value it takes when absent (a window's
    width defaulting to its height, say); such an attribute has no default of its own."""

    name: str
    type: type = int
    default: object = REQUIRED
    finn: str | None = None
    doc: str = ""
    like: str | None = None


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


@dataclass(frozen=True)
class Formal:
    """How `bnnflow prove` (flow.sim.prove) checks the op's engine with SymbiYosys: `configs`, the
    engine parameters (as `random_params` gives them, memory-file names included) of the smallest
    configurations; `depth`, the BMC depth in cycles; `capacity`, the most input beats the engine
    holds in flight (measured: the smallest bound the proof accepts; None: the no-beat-lost check
    is left out); `leads`, input port -> output beats
    a frame may send before that port's share of input (a concat's second input); `equiv`, also
    check the output beats against the op's semantics on the stimulus of `testbench_case(seed)`.
    A value may be an int, the name of an engine parameter, or a function of the parameters."""

    configs: tuple[dict, ...]
    depth: int = 12
    capacity: object = None
    leads: tuple[tuple[str, object], ...] = ()
    equiv: bool = False
    seed: int = 0

    @staticmethod
    def value(v, params: dict) -> int:
        """An int, a parameter name or a function of the parameters, for one configuration."""
        if callable(v):
            return int(v(params))
        return int(params[v]) if isinstance(v, str) else int(v)

    def lead_of(self, port: str, params: dict) -> int:
        return next((self.value(v, params) for p, v in self.leads if p == port), 0)

    def capacity_of(self, params: dict) -> int | None:
        return None if self.capacity is None else self.value(self.capacity, params)


@dataclass
class EngineCase:
    """Stimulus and expected output of one engine instance (the cocotb testbenches of sim/)."""

    ins: dict[str, list[int]]            # input port prefix -> beats
    outs: dict[str, list[int]]           # output port prefix -> expected beats
    in_bpf: int                          # beats per frame on each input port
    out_bpf: int                         # beats per frame on each output port
    ideal_cpf: int                       # cycles per frame when never stalled (the engine's formula)
    memories: dict[str, str] = field(default_factory=dict)   # file name -> $readmemh text
    port_bpf: dict[str, int] = field(default_factory=dict)   # input ports whose beats per frame differ from in_bpf

    def in_bpf_of(self, port: str) -> int:
        """Beats per frame on input `port`."""
        return self.port_bpf.get(port, self.in_bpf)

    @property
    def in_beats(self) -> list[int]:
        return next(iter(self.ins.values()))

    @property
    def out_beats(self) -> list[int]:
        return next(iter(self.outs.values()))


def beat_ints(values, lanes: int, elem_bits: int) -> list[int]:
    """(N, E) elements -> the beats of the wire format, each as one integer."""
    return [int.from_bytes(row.tobytes(), "little") for row in pack_beats(values, lanes, elem_bits)]


def single_case(x, x_lanes: int, x_bits: int, y, y_lanes: int, y_bits: int, cpf: int,
                memories: dict | None = None) -> EngineCase:
    """The case of a one-input, one-output engine: frames x in, frames y out."""
    x, y = np.asarray(x), np.asarray(y)
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    return EngineCase({"s_axis": beat_ints(x, x_lanes, x_bits)}, {"m_axis": beat_ints(y, y_lanes, y_bits)},
                      x.shape[1] // x_lanes, y.shape[1] // y_lanes, cpf, memories or {})


def rand_int(rng: np.random.Generator, bits: int, signed: bool, size) -> np.ndarray:
    """Uniform integers of a `bits`-bit field (two's complement when signed)."""
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    return rng.integers(lo, hi, size=size)


def rand_khot(rng: np.random.Generator, k: int, sb: int, size) -> np.ndarray:
    """Sums of up to k signed powers of two with shifts < 2**sb - 1, kept where their
    non-adjacent form has at most k terms with shifts < 2**sb, else 0 (a sum can carry past
    the top shift: 1 + 1 + 1 = 4 - 1)."""
    top = max(1, (1 << sb) - 1)
    sign = rng.integers(-1, 2, size=tuple(size) + (k,))
    shift = rng.integers(0, top, size=tuple(size) + (k,))
    w = (sign * (1 << shift)).sum(axis=-1)
    digits = naf_digits(w, min_digits=1 << sb)
    fits = (np.count_nonzero(digits, axis=-1) <= k) & ~np.any(digits[..., 1 << sb:] != 0, axis=-1)
    return np.where(fits, w, 0)


def sorted_thresholds(rng: np.random.Generator, rows: int, t: int, lo: int, hi: int) -> np.ndarray:
    """(rows, t) thresholds in [lo, hi), ascending per row."""
    return np.sort(rng.integers(lo, hi, size=(rows, t)), axis=1)


def pick(rng: np.random.Generator, lo: int, hi: int) -> int:
    """One integer of [lo, hi] (both ends included)."""
    return int(rng.integers(lo, hi + 1))


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def smallest_lanes(n: int, beats_per_lane: int, target: int, prefer: int | None = None) -> int:
    """Lanes for an op over n channels: `prefer` if it divides n and meets the target
    cycles, else the smallest divisor of n that meets it (n when none does)."""
    if prefer and n % prefer == 0 and beats_per_lane * n // prefer <= target:
        return prefer
    for d in divisors(n):
        if beats_per_lane * n // d <= target:
            return d
    return n


def width_converter_luts(lanes: int, elem_bits: int) -> int:
    """Analytic LUTs of a data-width converter whose wider side has `lanes` elements."""
    return lanes * elem_bits + 8


def memory(key: str, word_bits: int, words: list[int], ram_style: str = "auto") -> dict:
    """A memory handed to an HLS stream function (hls_stage helper)."""
    return {"key": key, "word_bits": int(word_bits), "words": words, "ram_style": ram_style}


def stage(op, args: list, memories: list[dict] = (), out_signed: bool = False) -> dict:
    """The description of one op's call in the generated HLS top (hls_stage helper)."""
    return {"function": op.hls.function, "name": op.name, "op": op.op_type, "args": [int(a) for a in args],
            "memories": list(memories), "out_signed": bool(out_signed)}


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
    finn_aliases: tuple[str, ...] = ()  # other FINN names of the same op (without _hls/_rtl)
    n_inputs: int = 1  # stream inputs come first in node.input, weights after them
    paces: bool = False  # its folding sets the design's pace (the MVUs): folded first, from the target alone
    fifo_depth_attr: str | None = None  # a FIFO: the attribute a folding file's FIFO depths set
    finn_port_fifos: bool = False  # its folding-file entry carries FINN's in/outFIFODepths of the FIFOs beside it
    label_head: bool = False  # turns the logits into the label (integer-logits runs leave it out)
    tb_frames: int = 8  # frames per random testbench configuration
    formal: Formal | None = None  # the formal proofs of its engine (`bnnflow prove`)

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
            elif a.like is not None:
                out[name] = out[a.like]
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
        if key in schema and schema[key].like is not None:
            return self.attr(schema[key].like)
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

    def executor(self):
        """A function of the input streams that does what `execute` does, with what does not
        depend on them (weights, thresholds, attributes) read and prepared once: the reference
        runs every chunk of a batch through it."""
        return self.execute

    def executor_after(self, producer: "HWOp"):
        """An executor of the producer's input streams that does what the producer and then
        this op do, where this op can do both in one step (it then reads the producer's
        inputs); else None. The reference offers it the op feeding its one input stream when
        nothing else reads that stream."""
        return None

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

    # -- folding (flow.passes.fold) ----------------------------------------------------
    def fold_for(self, target: int, prev, nxt) -> None:
        """Set this op's lanes so that a frame takes at most `target` cycles; `prev` / `nxt`
        are the ops on its first input and output (None at the ends). Pacing ops are folded
        first, the others after them in graph order. The default: the fewest lanes dividing
        `channels` that meet the target, preferring the lanes the consumer fixes itself,
        else the producer's (no width converter between them), unless those lanes cost more
        than twice the fewest lanes and the converter together (analytic LUT estimates: a
        255-threshold input quantizer at an MVU's SIMD of 196 is 275 k LUT, at one lane 1 k)."""
        if self.lanes is None or self.channels is None:
            return
        n = self.attr(self.channels)
        beats = self.in_stream().elems // n
        prefer = nxt.lanes_wanted() if nxt is not None else None
        if prefer is None and prev is not None:
            prefer = prev.out_stream().lanes
        lanes, fewest = smallest_lanes(n, beats, target, prefer), smallest_lanes(n, beats, target)
        if lanes != fewest:
            bits = max(self.in_stream().bits, self.out_stream().bits)
            self.set_attr(self.lanes, fewest)
            cheap = self.resources()["LUT"] + width_converter_luts(max(lanes, fewest), bits)
            self.set_attr(self.lanes, lanes)
            if self.resources()["LUT"] > 2 * cheap:
                lanes = fewest
        self.set_attr(self.lanes, lanes)

    def lanes_wanted(self) -> int | None:
        """The input lanes this op fixes itself (its producer should match them), or None."""
        return None

    def next_lane_choices(self) -> list[int] | None:
        """The input lanes its consumer may take when this op copies its lanes from the
        consumer (None: any)."""
        return None

    def match_lanes(self, prev, nxt, after_file: bool = False) -> None:
        """Adjust the lanes to the neighbours once the others are folded; `after_file`: after a
        folding file, for the ops it does not name. The default changes nothing."""

    def folding_cycles(self) -> set[int]:
        """Every cycles-per-frame a pacing op can be folded to."""
        return set()

    # -- RTL engine -----------------------------------------------------------------
    def rtl_params(self) -> dict:
        """The engine's SystemVerilog parameters (memory-file parameters excluded)."""
        raise NotImplementedError(f"{self.op_type} lacks RTL parameters")

    def memories(self) -> dict:
        """Memory-file parameter -> {"word_bits": int, "words": [int]}: the packed contents."""
        return {}

    def port_bits(self) -> tuple:
        """Stream widths of the engine instance (input, output): an int for a side with one
        port, a list (in port order) for a side with several."""
        ins = [self.in_stream_of(k).width for k in range(len(self.engine.inputs))]
        outs = [self.out_stream_of(k).width for k in range(len(self.engine.outputs))]
        return (ins if len(ins) > 1 else ins[0]), (outs if len(outs) > 1 else outs[0])

    def rtl_stage(self) -> dict:
        """Everything the RTL top generator needs of this op's engine instance."""
        in_bits, out_bits = self.port_bits()
        return {"module": self.engine.module, "name": self.name, "params": self.rtl_params(),
                "in_bits": in_bits, "out_bits": out_bits, "memories": self.memories()}

    @classmethod
    def port_widths(cls, params: dict) -> tuple[list[int], list[int]]:
        """Stream widths in bits (input ports, output ports) of an engine instance with `params`."""
        raise NotImplementedError(f"{cls.op_type} lacks port widths")

    @classmethod
    def testbench_case(cls, params: dict, rng: np.random.Generator, frames: int):
        """Stimulus and expected output (an EngineCase) of the engine with `params`."""
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
