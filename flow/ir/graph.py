"""The dataflow graph: an ONNX model whose nodes are hardware ops (domain `flow.ops`).

Design parameters (PE, SIMD, weights, thresholds, stream widths) live here as node
attributes and initializers; build artefacts (paths, compiled simulators) never do.
The graph is a plain `onnx.ModelProto`, so every step's graph opens in Netron.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from flow.core.errors import UserError
from flow.ir.registry import make_op

DOMAIN = "flow.ops"


@dataclass(frozen=True)
class Stream:
    """A typed stream edge: `lanes` elements of `bits` bits per beat, `elems` per frame."""

    lanes: int
    bits: int
    elems: int

    @property
    def width(self) -> int:
        return self.lanes * self.bits

    @property
    def beats(self) -> int:
        return self.elems // self.lanes


class DataflowGraph:
    """A DAG of hardware ops with their parameters, backed by ONNX (nodes are kept in
    topological order; `global_in` is the accelerator's input stream)."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model

    # -- construction -------------------------------------------------------------
    @classmethod
    def empty(cls, name: str = "bnnflow") -> "DataflowGraph":
        graph = helper.make_graph([], name, [], [])
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
            producer_name="bnnflow",
        )
        model.ir_version = 8
        return cls(model)

    def add_node(self, op_type: str, name: str, attrs: dict, inits: dict[str, np.ndarray],
                 inputs: list[str] | None = None, outputs: int = 1) -> onnx.NodeProto:
        """Append a node; its stream inputs default to the last node's first output, and
        `inits` become its weight inputs."""
        g = self.model.graph
        if inputs is None:
            inputs = [g.node[-1].output[0] if len(g.node) else "global_in"]
        init_names = []
        for key, arr in inits.items():
            tname = f"{name}_{key}"
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr), tname))
            init_names.append(tname)
        outs = [f"{name}_out"] if outputs == 1 else [f"{name}_out{i}" for i in range(outputs)]
        node = helper.make_node(op_type, [*inputs, *init_names], outs, name=name, domain=DOMAIN, **attrs)
        g.node.append(node)
        return g.node[-1]  # protobuf appends a copy

    # -- access ---------------------------------------------------------------------
    @property
    def nodes(self) -> list[onnx.NodeProto]:
        return list(self.model.graph.node)

    def ops(self) -> list:
        return [make_op(n, self) for n in self.model.graph.node]

    def initializer(self, name: str) -> np.ndarray:
        for init in self.model.graph.initializer:
            if init.name == name:
                return numpy_helper.to_array(init)
        raise KeyError(name)

    def set_initializer(self, name: str, arr: np.ndarray) -> None:
        g = self.model.graph
        for i, init in enumerate(g.initializer):
            if init.name == name:
                g.initializer[i].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr), name))
                return
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))

    def remove_initializer(self, name: str) -> None:
        g = self.model.graph
        for i, init in enumerate(g.initializer):
            if init.name == name:
                del g.initializer[i]
                return

    def meta(self, key: str, default=None):
        for p in self.model.metadata_props:
            if p.key == key:
                return json.loads(p.value)
        return default

    def set_meta(self, key: str, value) -> None:
        text = json.dumps(value, sort_keys=True)
        for p in self.model.metadata_props:
            if p.key == key:
                p.value = text
                return
        entry = self.model.metadata_props.add()
        entry.key, entry.value = key, text

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [n for n in self.model.graph.node if tensor in n.input]

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        for n in self.model.graph.node:
            if tensor in n.output:
                return n
        return None

    def output_tensor(self) -> str:
        """The one stream no node consumes."""
        g = self.model.graph
        used = {i for n in g.node for i in n.input}
        outs = [o for n in g.node for o in n.output if o not in used]
        if len(outs) != 1:
            raise ValueError(f"the dataflow graph has {len(outs)} unconsumed streams; exactly one output is required")
        return outs[0]

    def finalize_io(self) -> None:
        """(Re)declare the graph input and output streams."""
        g = self.model.graph
        ops = self.ops()
        del g.input[:]
        del g.output[:]
        first = [o for o in ops if "global_in" in o.node.input][0]
        out = self.output_tensor()
        last = [o for o in ops if out in o.node.output][0]
        g.input.append(helper.make_tensor_value_info("global_in", onnx.TensorProto.INT64, [1, first.in_stream().elems]))
        g.output.append(helper.make_tensor_value_info(out, onnx.TensorProto.INT64, [1, last.out_stream().elems]))

    # -- persistence ----------------------------------------------------------------
    def save(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(self.model, str(path))

    @classmethod
    def load(cls, path: Path) -> "DataflowGraph":
        return cls(onnx.load(str(path)))

    def copy(self) -> "DataflowGraph":
        m = onnx.ModelProto()
        m.CopyFrom(self.model)
        return DataflowGraph(m)

    def fingerprint(self) -> str:
        """A hash of every design parameter (used as the design hash)."""
        return hashlib.sha256(self.model.SerializeToString(deterministic=True)).hexdigest()[:16]


def load_dataflow(path: Path) -> DataflowGraph:
    """A build's dataflow graph, checked to be one: readable ONNX, bnnflow's input
    description, and registered hardware ops with consistent attributes (else a UserError)."""
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError) as exc:
        raise UserError(f"{path} is not a readable ONNX file ({type(exc).__name__}); rebuild with `bnnflow build`") from None
    g = DataflowGraph(model)
    try:
        info = g.meta("input")
        if not isinstance(info, dict) or "shape" not in info:
            raise ValueError("no bnnflow input description in its metadata")
        shape = info["shape"]
        if not (isinstance(shape, list) and shape and all(isinstance(d, int) and d > 0 for d in shape)):
            raise ValueError(f"input shape {shape!r} is not a list of positive sizes")
        ops = g.ops()
        if not ops or not any("global_in" in o.stream_inputs for o in ops):
            raise ValueError("no op reads the input stream")
        for op in ops:
            op.check()
        g.output_tensor()
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not a bnnflow dataflow graph ({reason}); rebuild with `bnnflow build`") from None
    return g
