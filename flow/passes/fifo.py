"""FIFO sizing: shortcut depths of residual branches that cannot deadlock and keep the rate.

A residual block forks a stream (Duplicate) into a shortcut and a long branch and joins
them again (AddStreams), which takes one beat from each side at once. While the long
branch fills (line buffers, whole input vectors of an MVU) every beat the duplicate hands
it is also queued on the shortcut, so the shortcut FIFO must hold those beats or the fork
stalls both branches for good.

Each op states its dependency as a curve (`HWOp.beats_needed`): the input beats of a frame
that must be in before each output beat can leave. Composing the curves along a branch
gives, for every beat j the join takes, the fork beats the long branch needs first,
P_long[j]; the shortcut has then taken all but the last of them (the duplicate holds it)
and passed on what beat j needs (the FIFO's own output, or a converter's register after it).
The largest difference is the smallest depth that cannot deadlock (`MinDepth`).
For full rate the long branch must also run ahead of the join by its pipeline (one output
block of every op, e.g. a whole output vector of an MVU, plus a few register stages), so
the depth adds the beats of that lead. Two frames are evaluated so that the overlap of
consecutive frames is covered. Everything is integer numpy over one frame's beats: CNV
sizes in milliseconds.

Diamonds whose branches are chains (what `flow.passes.streamline` builds) are sized; any other
shape keeps the frame-sized FIFO (`StreamFIFO.frame_depth`), which cannot deadlock.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph

PIPELINE_BEATS = 2  # register stages each op of the long branch adds to its lead, in beats


@dataclass
class Diamond:
    fork: object       # the Duplicate
    join: object       # the AddStreams
    short: list        # ops from the fork to the join on the shortcut (the StreamFIFO among them)
    long: list         # ops from the fork to the join on the other branch


def _branch(graph: DataflowGraph, by_name: dict, tensor: str):
    """Walk up from `tensor` through one-in one-out ops to the Duplicate that feeds it:
    (duplicate op, ops in stream order), or None when the branch is not such a chain."""
    path = []
    while True:
        node = graph.producer(tensor)
        if node is None:
            return None
        op = by_name[node.name]
        if len(op.stream_outputs) > 1:  # the fork
            return op, path
        if len(op.stream_inputs) != 1 or len(op.stream_outputs) != 1:
            return None
        path.insert(0, op)
        tensor = op.stream_inputs[0]


def diamonds(graph: DataflowGraph) -> list[Diamond]:
    """Every residual fork/join whose two branches are chains and whose shortcut has a FIFO."""
    ops = graph.ops()
    by_name = {o.name: o for o in ops}
    found = []
    for op in ops:
        if len(op.stream_inputs) != 2:  # not a join
            continue
        a, b = (_branch(graph, by_name, t) for t in op.stream_inputs)
        if a is None or b is None or a[0].name != b[0].name:
            continue
        fifo_a = [o for o in a[1] if o.fifo_depth_attr]
        fifo_b = [o for o in b[1] if o.fifo_depth_attr]
        if len(fifo_a) + len(fifo_b) != 1:
            continue
        short, long = (a[1], b[1]) if fifo_a else (b[1], a[1])
        found.append(Diamond(a[0], op, short, long))
    return found


def path_beats_needed(path: list, frames: int = 1) -> np.ndarray:
    """Input beats of the path's first op needed before each output beat of its last op,
    over `frames` consecutive frames (later frames shifted by the first op's beats)."""
    need = None
    for op in reversed(path):
        n = _frames(op.beats_needed(), op.in_stream().beats, frames)
        need = n if need is None else np.where(need > 0, n[np.maximum(need, 1) - 1], 0)
    return need


def _frames(curve: np.ndarray, in_beats: int, frames: int) -> np.ndarray:
    return np.concatenate([curve + f * in_beats for f in range(frames)])


def _lead(path: list, out_beats: int) -> int:
    """Beats (at the join) the long branch must run ahead: one output block of every op
    (the output beats that one input step releases) plus its register stages."""
    lead = 0
    for op in path:
        curve = op.beats_needed()
        _, runs = np.unique(curve, return_counts=True)
        lead += -(-int(runs.max()) * out_beats // len(curve)) + PIPELINE_BEATS
    return lead


def shortcut_depths(d: Diamond) -> tuple[int, int]:
    """(smallest deadlock-free depth, sized depth) of the shortcut FIFO, in its beats."""
    k = next(i for i, o in enumerate(d.short) if o.fifo_depth_attr)
    fifo, pre, post = d.short[k], d.short[:k], d.short[k + 1:]
    n_join = d.join.in_stream().beats
    # fork beats the long branch needs per join beat, over 2 frames (a bare edge passes them on)
    p_long = path_beats_needed(d.long, 2) if d.long else np.arange(1, 2 * d.fork.out_stream().beats + 1)
    # FIFO input beats the shortcut has made of n fork beats
    if pre:
        p_pre = path_beats_needed(pre, 3)

        def q(n):
            return np.searchsorted(p_pre, n, side="right")
    else:
        def q(n):
            return n
    # FIFO output beats gone while the join waits for its beat j: the ops after the FIFO
    # (width converters) already hold shortcut beat j in their output register
    taken = path_beats_needed(post, 2) if post else np.arange(2 * fifo.out_stream().beats)
    if len(taken) != len(p_long):
        raise UserError(f"residual join {d.join.name}: its branches carry {len(p_long) // 2} and "
                        f"{len(taken) // 2} beats per frame")
    held = q(np.maximum(p_long - 1, 0)) - taken
    min_depth = max(1, int(held.max()))
    lead = min(_lead(d.long, n_join), n_join)
    ahead = p_long[np.minimum(np.arange(len(p_long)) + lead, len(p_long) - 1)]
    sized = max(min_depth, int((q(ahead) - taken)[:n_join + 1].max())) + PIPELINE_BEATS
    return min_depth, max(2, sized)


def size_fifos(graph: DataflowGraph) -> DataflowGraph:
    """The fifo step: give every sized shortcut FIFO its `Depth` and `MinDepth` (beats).
    A depth set before (a folding file's inFIFODepths/outFIFODepths) is kept when it is
    deadlock-free and refused when it is not."""
    g = graph.copy()
    for d in diamonds(g):
        fifo = next(o for o in d.short if o.fifo_depth_attr)
        min_depth, sized = shortcut_depths(d)
        given = int(fifo.attr("Depth", 0))
        if given and given < min_depth:
            raise UserError(f"FIFO depth {given} of {fifo.name} (the shortcut of {d.join.name}) can deadlock: "
                            f"the branch needs at least {min_depth} beats there")
        fifo.set_attr("MinDepth", min_depth)
        fifo.set_attr("Depth", given or sized)
    return g


def fifo_summary(graph: DataflowGraph) -> dict:
    """report.json's `fifo`: every FIFO's depth beside its deadlock bound and the frame-sized
    depth it replaces, and the total FIFO bits before and after sizing."""
    rows = []
    for op in graph.ops():
        if not op.fifo_depth_attr:
            continue
        w = op.in_stream().width
        rows.append({"name": op.name, "width": w, "depth": op.depth(), "min_depth": op.attr("MinDepth", None),
                     "frame_depth": op.frame_depth(), "bits": op.depth() * w, "frame_bits": op.frame_depth() * w})
    return {"fifos": rows, "total_bits": sum(r["bits"] for r in rows),
            "frame_sized_bits": sum(r["frame_bits"] for r in rows)}
