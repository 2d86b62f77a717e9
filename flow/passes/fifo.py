"""FIFO sizing: the FIFO depths of fork/join branches that cannot deadlock and keep the rate.

A fork (Duplicate) hands every beat to both its branches at once; a join (AddStreams,
StreamingConcat) takes beats from both its inputs in an order of its own (AddStreams one
from each at once, a concat a vector's beats of one input, then of the other). While one
branch fills (line buffers, whole input vectors of an MVU) the beats the fork hands the
other branch must wait somewhere, else the fork stalls both branches for good. Branches
that copy (the shortcut of a residual block) get a FIFO; when both branches compute, both
get one (`flow.passes.streamline`), and this step sizes every one.

Each op states its dependency as a curve (`HWOp.beats_needed`, per input port
`beats_needed_of`): the input beats of a frame that must be in before each output beat can
leave. Composing the curves along a branch and through the join's port gives, for every
beat j the join emits, the fork beats that branch needs first, N_b[j].

Deadlock freedom. Take any state in which the join waits to emit its beat j. The fork can
go on as long as every branch accepts its beats; to let the join emit beat j it has to
hand out F[j] = max over the other branches of N_b[j] beats. A branch b with a FIFO has
then taken all but the last of them (the duplicate holds that one), its ops before the FIFO
have made at most q_b(F[j] - 1) beats of them (q_b: the inverse of their composed curve),
and the ops after it have drawn what the join's beat j needs of this port (or, without
ops after the FIFO, all but that beat, which waits in the FIFO's output). The difference,
maximised over j, is the most the FIFO must ever hold: at that depth the fork never waits
on a full FIFO while the join waits on the fork, so no state is stuck (`MinDepth`). The
curves of the branch's own port never ask for more (q_b(N_b[j] - 1) is below what beat j
draws), so the maximum over the other branches suffices. A branch without a FIFO must
need no buffering at all by the same count (checked). The count credits no buffering
inside the ops (an MVU's input vector, register stages), so the bound is safe rather than
tight where the branch before a FIFO computes: on the Add of a 3x3 and a 1x1 convolution
branch (tests/test_branches.py, "add") the 1x1 branch's bound is 48 beats and the RTL runs
from 21 (an identity shortcut's bound is tight: one beat less deadlocks).
For full rate the other branch must also run ahead of the join by its pipeline (one output
block of every op, e.g. a whole output vector of an MVU, plus a few register stages), so
the depth adds the beats of that lead. Two frames are evaluated so that the overlap of
consecutive frames is covered. Everything is integer numpy over one frame's beats: CNV
sizes in milliseconds.

Fork/joins whose branches are chains (what `flow.passes.streamline` builds) are sized; any
other shape keeps the frame-sized FIFO (`StreamFIFO.frame_depth`), which cannot deadlock.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph

PIPELINE_BEATS = 2  # register stages each op of the other branch adds to its lead, in beats


@dataclass
class Diamond:
    fork: object       # the op with two stream outputs (Duplicate)
    join: object       # the op with two stream inputs both branches end in
    branches: list     # per join input port: the ops from the fork to the join, in stream order

    def fifo_of(self, port: int):
        """The FIFO on branch `port` (an op with a `fifo_depth_attr`), or None."""
        return next((o for o in self.branches[port] if o.fifo_depth_attr), None)

    @property
    def short(self) -> list:
        """The first branch with a FIFO (the shortcut of a residual block)."""
        return next(b for p, b in enumerate(self.branches) if self.fifo_of(p) is not None)

    @property
    def long(self) -> list:
        """The other branch."""
        short = self.short
        return next(b for b in self.branches if b is not short)


def _branch(graph: DataflowGraph, by_name: dict, tensor: str):
    """Walk up from `tensor` through one-in one-out ops to the fork (an op with several outputs) that feeds it:
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
    """Every fork/join whose two branches are chains from one fork with a FIFO on at least one."""
    ops = graph.ops()
    by_name = {o.name: o for o in ops}
    found = []
    for op in ops:
        if len(op.stream_inputs) != 2:
            continue
        a, b = (_branch(graph, by_name, t) for t in op.stream_inputs)
        if a is None or b is None or a[0].name != b[0].name:
            continue
        d = Diamond(a[0], op, [a[1], b[1]])
        if any(d.fifo_of(p) is not None for p in (0, 1)):
            found.append(d)
    return found


def path_beats_needed(path: list, frames: int = 1) -> np.ndarray:
    """Input beats of the path's first op needed before each output beat of its last op,
    over `frames` consecutive frames (later frames shifted by the first op's beats)."""
    need = None
    for op in reversed(path):
        n = _frames(op.beats_needed(), op.in_stream().beats, frames)
        need = n if need is None else _compose(n, need)
    return need


def _compose(inner: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Beats of `inner`'s input behind each entry of `need` (counts of `inner`'s output beats)."""
    return np.where(need > 0, inner[np.maximum(need, 1) - 1], 0)


def _frames(curve: np.ndarray, in_beats: int, frames: int) -> np.ndarray:
    return np.concatenate([curve + f * in_beats for f in range(frames)])


def _port_curve(join, port: int, frames: int = 2) -> np.ndarray:
    """Beats of the join's input `port` needed before each of its output beats."""
    return _frames(join.beats_needed_of(port), join.in_stream_of(port).beats, frames)


def _through(path: list, curve: np.ndarray) -> np.ndarray:
    """`curve` (beats of the path's output) as beats of the path's input, over 2 frames."""
    return _compose(path_beats_needed(path, 2), curve) if path else curve


def _lead(path: list, out_beats: int) -> int:
    """Beats (at the join) a branch must run ahead: one output block of every op (the
    output beats that one input step releases) plus its register stages."""
    lead = 0
    for op in path:
        curve = op.beats_needed()
        _, runs = np.unique(curve, return_counts=True)
        lead += -(-int(runs.max()) * out_beats // len(curve)) + PIPELINE_BEATS
    return lead


def _held(d: Diamond, port: int, k: int | None) -> tuple:
    """(q, taken): the FIFO input beats branch `port` makes of n fork beats, and the FIFO output
    beats drawn while the join waits for each of its beats; k: the FIFO's index in the branch
    (None: no FIFO, the whole branch counts as before it)."""
    ops = d.branches[port]
    pre, post = (ops, []) if k is None else (ops[:k], ops[k + 1:])
    curve = _port_curve(d.join, port)
    if pre:
        p_pre = path_beats_needed(pre, 3)

        def q(n):
            return np.searchsorted(p_pre, n, side="right")
    else:
        def q(n):
            return n
    # the ops after the FIFO (width converters) already hold the beat the join waits for
    taken = _through(post, curve) if post else np.maximum(curve - 1, 0)
    return q, taken


def branch_depths(d: Diamond, port: int) -> tuple[int, int]:
    """(smallest deadlock-free depth, sized depth) of the FIFO on branch `port`, in its beats."""
    ops = d.branches[port]
    k = next(i for i, o in enumerate(ops) if o.fifo_depth_attr)
    n_join = d.join.out_stream().beats
    others = [p for p in range(len(d.branches)) if p != port]
    # fork beats the other branches need per join beat, over 2 frames
    need = np.max([_through(d.branches[p], _port_curve(d.join, p)) for p in others], axis=0)
    q, taken = _held(d, port, k)
    if len(taken) != len(need):
        raise UserError(f"join {d.join.name}: its branches carry {len(need) // 2} and {len(taken) // 2} beats per frame")
    held = q(np.maximum(need - 1, 0)) - taken
    min_depth = max(1, int(held.max()))
    lead = min(max(_lead(d.branches[p], n_join) for p in others), n_join)
    ahead = need[np.minimum(np.arange(len(need)) + lead, len(need) - 1)]
    sized = max(min_depth, int((q(ahead) - taken)[:n_join + 1].max())) + PIPELINE_BEATS
    return min_depth, max(2, sized)


def shortcut_depths(d: Diamond) -> tuple[int, int]:
    """(smallest deadlock-free depth, sized depth) of the shortcut FIFO (the first branch with one)."""
    return branch_depths(d, next(p for p in range(len(d.branches)) if d.fifo_of(p) is not None))


def check_unbuffered(d: Diamond) -> None:
    """A branch without a FIFO must never have to hold beats while the other branch fills."""
    for port in range(len(d.branches)):
        if d.fifo_of(port) is not None:
            continue
        need = np.max([_through(d.branches[p], _port_curve(d.join, p)) for p in range(len(d.branches))
                       if p != port], axis=0)
        q, taken = _held(d, port, None)
        held = int((q(np.maximum(need - 1, 0)) - taken).max())
        if held > 0:
            first = d.branches[port][0].name if d.branches[port] else d.join.name
            raise UserError(f"join {d.join.name}: the branch from {d.fork.name} through {first} has no FIFO but "
                            f"must hold {held} beats while the other branch fills; it can deadlock")


def size_fifos(graph: DataflowGraph) -> DataflowGraph:
    """The fifo step: give every sized branch FIFO its `Depth` and `MinDepth` (beats).
    A depth set before (a folding file's inFIFODepths/outFIFODepths) is kept when it is
    deadlock-free and refused when it is not."""
    g = graph.copy()
    for d in diamonds(g):
        check_unbuffered(d)
        for port in range(len(d.branches)):
            fifo = d.fifo_of(port)
            if fifo is None:
                continue
            min_depth, sized = branch_depths(d, port)
            given = int(fifo.attr("Depth", 0))
            if given and given < min_depth:
                raise UserError(f"FIFO depth {given} of {fifo.name} (a branch of {d.join.name}) can deadlock: "
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
