"""One entry point to execute a dataflow graph: `execute(graph, images, engine=...)`.

Engines: "numpy" (the exact integer reference in flow.ops), "csim" (the generated HLS C++
compiled with g++) and "rtlsim" (the compiled Verilator model of the generated RTL). All take integer inputs
(N, *input shape) of the graph's input type (flow.core.intype; uint8 pixels by default) and return
top-1 indices (N,) int64, or integer logits (N, classes) int64 with `logits=True`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.core.errors import UserError
from flow.core.intype import from_meta
from flow.ir.graph import DataflowGraph

ENGINES = ("numpy", "csim", "rtlsim")


def check_images(graph: DataflowGraph, images) -> np.ndarray:
    """The integer batch (N, *input shape) the graph takes, N >= 1, every value of its input
    type; anything else is a UserError."""
    shape = graph.meta("input")["shape"][1:]
    images = np.asarray(images)
    if images.dtype.kind not in "iu":
        raise UserError(from_meta(graph.meta("input")).check(images))
    if tuple(images.shape[1:]) != tuple(shape) or images.ndim != len(shape) + 1:
        raise UserError(f"input images must be shaped (N, {', '.join(map(str, shape))}), got {tuple(images.shape)}")
    if len(images) == 0:
        raise UserError("no input images: the batch is empty")
    why = from_meta(graph.meta("input")).check(images)
    if why is not None:
        raise UserError(why)
    return images


def wire_axes(rank: int) -> list[int]:
    """Transpose of an (N, *shape) batch of `rank`-dimensional inputs into the wire order:
    channels last (NHWC for images, NLC for sequences), a vector as it is."""
    return [0, *range(2, rank + 1), 1] if rank >= 2 else list(range(rank + 1))


def to_wire(graph: DataflowGraph, images: np.ndarray) -> np.ndarray:
    """Inputs (N, *shape) -> (N, features) int64 input codes in the wire (channels-last) order."""
    x = check_images(graph, images)
    codes = from_meta(graph.meta("input")).to_codes(x)
    return codes.transpose(wire_axes(x.ndim - 1)).reshape(len(x), -1)


def image_chunks(graph: DataflowGraph, images, chunk_bytes: int):
    """Consecutive slices of the checked batch holding about `chunk_bytes` of pixels each
    (at least one image), so that the engines' wire-order copies stay bounded."""
    x = check_images(graph, images)
    per_image = max(1, int(np.prod(x.shape[1:])))
    step = max(1, int(chunk_bytes) // per_image)
    return [x[i:i + step] for i in range(0, len(x), step)]


def logits_ops(graph: DataflowGraph) -> list:
    """The ops that compute the integer logits (everything before the label select)."""
    ops = graph.ops()
    return [o for o in ops if o.op_type != "LabelSelect"]


def run_ops(ops, x: np.ndarray) -> np.ndarray:
    """Execute ops (in topological order) on one batch; return the last op's output."""
    env = {"global_in": x}
    y = x
    for op in ops:
        y = op.execute(*(env[t] for t in op.stream_inputs))
        outs = y if isinstance(y, tuple) else (y,)
        env.update(zip(op.stream_outputs, outs))
    return env[ops[-1].stream_outputs[0]]


def execute_numpy(graph: DataflowGraph, images: np.ndarray, logits: bool = False) -> np.ndarray:
    """Exact integer execution, a chunk of images at a time to bound memory."""
    ops = logits_ops(graph) if logits else graph.ops()
    biggest = max(max(o.in_stream().elems, o.out_stream().elems) for o in ops)
    outs = [np.asarray(run_ops(ops, to_wire(graph, part)), dtype=np.int64)
            for part in image_chunks(graph, images, (1 << 24) * graph_input_elems(graph) // biggest)]
    y = np.concatenate(outs)
    return y if logits else y[:, 0]


def graph_input_elems(graph: DataflowGraph) -> int:
    return int(np.prod(graph.meta("input")["shape"][1:]))


def execute(graph: DataflowGraph, images: np.ndarray, engine: str = "numpy", logits: bool = False,
            build_dir: Path | None = None, **kw) -> np.ndarray:
    if engine == "numpy":
        return execute_numpy(graph, images, logits)
    if engine == "rtlsim":
        from flow.sim.simulate import run_rtlsim

        if build_dir is None:
            raise ValueError("the rtlsim engine needs the build directory")
        out, _stats = run_rtlsim(graph, build_dir, images, logits=logits, **kw)
        return out
    if engine == "csim":
        from flow.sim.csim import run_csim

        if build_dir is None:
            raise ValueError("the csim engine needs the build directory")
        out, _stats = run_csim(graph, build_dir, images, logits=logits, **kw)
        return out
    raise UserError(f"unknown engine {engine!r}; supported: {', '.join(ENGINES)}")


def logits_to_float(graph: DataflowGraph, int_logits: np.ndarray) -> np.ndarray:
    """Map integer logits to the model's float32 logits through the exact output table."""
    return graph.initializer("output_table")[np.asarray(int_logits)]
