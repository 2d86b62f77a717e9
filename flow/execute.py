"""One entry point to execute a dataflow graph: `execute(graph, images, engine=...)`.

Engines: "numpy" (the exact integer reference in flow.ops), "csim" (the generated HLS C++
compiled with g++) and "rtlsim" (the compiled Verilator model of the generated RTL). All take uint8 images (N, C, H, W) and return
top-1 indices (N,) int64, or integer logits (N, classes) int64 with `logits=True`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.errors import UserError
from flow.graph import DataflowGraph

ENGINES = ("numpy", "csim", "rtlsim")


def to_wire(graph: DataflowGraph, images: np.ndarray) -> np.ndarray:
    """uint8 images (N, C, H, W) -> (N, features) int64 in the wire (NHWC) order."""
    shape = graph.meta("input")["shape"][1:]
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise UserError(f"input images must be uint8 pixels, got dtype {images.dtype}")
    if tuple(images.shape[1:]) != tuple(shape):
        raise UserError(f"input images must be shaped (N, {', '.join(map(str, shape))}), got {tuple(images.shape)}")
    x = images.astype(np.int64)
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(len(x), -1)


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
    x_all = to_wire(graph, images)
    ops = logits_ops(graph) if logits else graph.ops()
    biggest = max(max(o.in_stream().elems, o.out_stream().elems) for o in ops)
    chunk = max(1, (1 << 24) // biggest)
    outs = []
    for i in range(0, max(len(x_all), 1), chunk):
        outs.append(np.asarray(run_ops(ops, x_all[i:i + chunk]), dtype=np.int64))
    y = np.concatenate(outs) if outs else np.zeros((0, 1), np.int64)
    return y if logits else y[:, 0]


def execute(graph: DataflowGraph, images: np.ndarray, engine: str = "numpy", logits: bool = False,
            build_dir: Path | None = None, **kw) -> np.ndarray:
    if engine == "numpy":
        return execute_numpy(graph, images, logits)
    if engine == "rtlsim":
        from flow.simulate import run_rtlsim

        if build_dir is None:
            raise ValueError("the rtlsim engine needs the build directory")
        out, _stats = run_rtlsim(graph, build_dir, images, logits=logits, **kw)
        return out
    if engine == "csim":
        from flow.csim import run_csim

        if build_dir is None:
            raise ValueError("the csim engine needs the build directory")
        out, _stats = run_csim(graph, build_dir, images, logits=logits, **kw)
        return out
    raise UserError(f"unknown engine {engine!r}; supported: {', '.join(ENGINES)}")


def logits_to_float(graph: DataflowGraph, int_logits: np.ndarray) -> np.ndarray:
    """Map integer logits to the model's float32 logits through the exact output table."""
    return graph.initializer("output_table")[np.asarray(int_logits)]
