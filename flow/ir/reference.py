"""The exact integer reference: a dataflow graph executed op by op in numpy, and the input
batches every engine takes (checked values of the input type, wire order, bounded chunks).

Code generators (the HLS test vectors) and the simulators below `flow.sim.execute` read
these; the ops' own numpy semantics live in flow.ops.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from flow.core.errors import UserError
from flow.core.int8_gemm import torch_threads
from flow.core.intype import from_meta
from flow.ir.graph import DataflowGraph, Stream


# Elements of the widest stream in a chunk of images: a uint8 stream of 16 MiB. The chunks of
# the two cores then stay within the shared cache (32 MiB) where the sliding windows are written
# out; fewer images a chunk pay the per-chunk costs (Python, oneDNN's weight packing) more often,
# more gain nothing. Below glibc's largest mmap threshold (32 MiB), the chunks' arrays are
# reused rather than mapped afresh.
CHUNK_ELEMS = 1 << 24


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
    x = np.ascontiguousarray(x.transpose(wire_axes(x.ndim - 1)))  # reordered before it widens to int64
    return from_meta(graph.meta("input")).to_codes(x).reshape(len(x), -1)


def image_chunks(graph: DataflowGraph, images, chunk_bytes: int):
    """Consecutive slices of the checked batch holding about `chunk_bytes` of pixels each
    (at least one image), so that the engines' wire-order copies stay bounded."""
    x = check_images(graph, images)
    per_image = max(1, int(np.prod(x.shape[1:])))
    step = max(1, int(chunk_bytes) // per_image)
    return [x[i:i + step] for i in range(0, len(x), step)]


def graph_input_elems(graph: DataflowGraph) -> int:
    return int(np.prod(graph.meta("input")["shape"][1:]))


def design_ops(graph: DataflowGraph, logits: bool = False) -> list:
    """The ops of the design: all of them, or for logits everything before the label select."""
    ops = graph.ops()
    return [o for o in ops if not o.label_head] if logits else ops


def design_streams(graph: DataflowGraph, logits: bool = False) -> tuple[Stream, Stream]:
    """(input stream, output stream) of the design (top-1 or logits variant)."""
    ops = design_ops(graph, logits)
    first = [o for o in ops if "global_in" in o.stream_inputs][0]
    return first.in_stream(), ops[-1].out_stream()


def plan(ops) -> list[tuple]:
    """The steps that execute ops (in topological order): (input streams, output streams,
    executor, names), an op that can take over the op feeding its one input stream
    (`HWOp.executor_after`) doing both in one step when nothing else reads that stream (and
    that op is a step of its own)."""
    readers = Counter(t for op in ops for t in op.stream_inputs)
    last = ops[-1].stream_outputs[0] if ops else None
    steps: list[tuple] = []  # and the step's one op (None for two)
    for op in ops:
        ins = list(op.stream_inputs)
        prev = steps[-1] if steps else None
        if prev and prev[4] and len(ins) == 1 and prev[1] == ins and readers[ins[0]] == 1 and ins[0] != last:
            both = op.executor_after(prev[4])
            if both is not None:
                steps[-1] = (prev[0], list(op.stream_outputs), both, f"{prev[3]}+{op.name}", None)
                continue
        steps.append((ins, list(op.stream_outputs), op.executor(), op.name, op))
    return [s[:4] for s in steps]


def run_ops(ops, x: np.ndarray, steps=None) -> np.ndarray:
    """Execute ops (in topological order) on one batch; return the last op's output. steps:
    their `plan`, when prepared once for many batches."""
    env = {"global_in": x}
    for ins, outs, run, _ in steps or plan(ops):
        y = run(*(env[t] for t in ins))
        env.update(zip(outs, y if isinstance(y, tuple) else (y,)))
    return env[ops[-1].stream_outputs[0]]


def execute_numpy(graph: DataflowGraph, images: np.ndarray, logits: bool = False) -> np.ndarray:
    """Exact integer execution, a chunk of images at a time to bound memory (CHUNK_ELEMS
    elements of the widest stream). The chunks run side by side on the cores (numpy and torch
    leave the interpreter lock in their loops), each GEMM on one BLAS or torch thread."""
    ops = design_ops(graph, logits)
    biggest = max(max(o.in_stream().elems, o.out_stream().elems) for o in ops)
    parts = image_chunks(graph, images, CHUNK_ELEMS * graph_input_elems(graph) // biggest)

    steps = plan(ops)  # weights and thresholds prepared once for all chunks

    def run(part: np.ndarray) -> np.ndarray:
        return np.asarray(run_ops(ops, to_wire(graph, part), steps), dtype=np.int64)

    with threadpool_limits(1, user_api="blas"), torch_threads(1):
        if len(parts) == 1:
            outs = [run(parts[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(len(parts), usable_cores())) as pool:
                outs = list(pool.map(run, parts))
    return frame_outputs(graph, np.concatenate(outs), logits)


def frame_outputs(graph: DataflowGraph, y: np.ndarray, logits: bool) -> np.ndarray:
    """What an engine returns for its (N, elements) output words: the logits as they are, the
    top-1 (N,) of a label select, the codes of a final quantizer ((N,) for a single one)."""
    if logits or (not graph.ops()[-1].label_head and y.shape[1] > 1):
        return y
    return y[:, 0]


def count_mismatches(a: np.ndarray, b: np.ndarray) -> int:
    """Images (rows) on which two engines' outputs differ."""
    a, b = np.asarray(a), np.asarray(b)
    return int(np.sum(np.any(a.reshape(len(a), -1) != b.reshape(len(b), -1), axis=1)))


def logits_to_float(graph: DataflowGraph, int_logits: np.ndarray) -> np.ndarray:
    """Map integer logits (or final codes) to the model's float32 values through the exact output table."""
    try:
        table = graph.initializer("output_table")
    except KeyError:
        raise UserError("this design's logit range is too long for an exact table; its float logits are "
                        "scale * logits + bias within the report's max_affine_error") from None
    return table[np.asarray(int_logits)]
