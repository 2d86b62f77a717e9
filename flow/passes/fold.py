"""Folding: choose PE/SIMD per op for a target cycles-per-frame, for a LUT budget, or from
a folding file; then insert data-width converters where neighbouring streams differ in lanes."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph
from flow.ir.registry import registry
from flow.ops.base import divisors, smallest_lanes  # noqa: F401  (re-exported)
from flow.ops.dwc import DataWidthConverter
from flow.ops.mvu import mvu_folding  # noqa: F401  (re-exported)

from flow.passes.folding_file import check_depths, check_entry, read_folding_file, resolve_keys

DWC = DataWidthConverter.op_type  # the op this pass inserts


def pacing(ops) -> list:
    """The ops whose folding sets the design's pace (the MVUs: `paces`)."""
    return [o for o in ops if o.paces]


def fold_for_target(graph: DataflowGraph, target_cycles: int) -> DataflowGraph:
    """Set every op's folding so that no op needs more than `target_cycles` per frame."""
    if target_cycles < 1:
        raise UserError(f"target cycles per frame must be at least 1, got {target_cycles}")
    g = graph.copy()
    ops = g.ops()
    prev_of, next_of = _neighbours(g, ops)
    for op in pacing(ops):
        op.fold_for(target_cycles, prev_of.get(op.name), next_of.get(op.name))
    _fold_elementwise(g, ops, target_cycles)
    _match_neighbours(g, ops)
    return g


def total_luts(graph: DataflowGraph) -> int:
    """Analytic LUT estimate of a folded design, width converters included."""
    return sum(op.resources()["LUT"] for op in insert_width_converters(graph).ops())


def candidate_targets(graph: DataflowGraph) -> list[int]:
    """Cycles-per-frame targets worth trying, ascending: every cycle count an MVU can take
    and the powers of two up to the most folded design."""
    found: set[int] = set()
    most = 1
    for op in pacing(graph.ops()):
        cycles = op.folding_cycles()
        found.update(cycles)
        most = max([most, *cycles])
    found.update(1 << k for k in range(most.bit_length() + 1))
    return sorted(t for t in found if t <= max(most, 1))


def fold_for_lut_budget(graph: DataflowGraph, lut_budget: int) -> tuple[DataflowGraph, int]:
    """The fastest folding whose analytic LUT estimate fits the budget: the smallest
    candidate target cycles per frame whose `fold_for_target` design needs at most
    `lut_budget` LUTs. Returns (folded graph, target)."""
    if lut_budget < 1:
        raise UserError(f"--lut-budget must be a positive number of LUTs, got {lut_budget}")
    need = None
    for target in candidate_targets(graph):
        g = fold_for_target(graph, target)
        luts = total_luts(g)
        if luts <= lut_budget:
            return g, target
        need = luts if need is None else min(need, luts)
    raise UserError(f"even the most folded design needs {need} LUTs (analytic estimate), more than the "
                    f"--lut-budget of {lut_budget}")


def _fold_elementwise(g: DataflowGraph, ops, target_cycles: int, skip=frozenset()) -> None:
    """Lanes of the ops between the pacing ones (each op's `fold_for`), in graph order."""
    prev_of, next_of = _neighbours(g, ops)
    for op in ops:
        if op.name not in skip and not op.paces:
            op.fold_for(target_cycles, prev_of.get(op.name), next_of.get(op.name))


def _neighbours(g: DataflowGraph, ops):
    """(op name -> producer of its first input, op name -> first consumer of its first output)."""
    by_name = {o.name: o for o in ops}
    prev_of, next_of = {}, {}
    for o in ops:
        p = g.producer(o.stream_inputs[0])
        if p is not None:
            prev_of[o.name] = by_name[p.name]
        cons = g.consumers(o.stream_outputs[0])
        if cons:
            next_of[o.name] = by_name[cons[0].name]
    return prev_of, next_of


def _match_neighbours(g: DataflowGraph, ops, skip=frozenset(), thresholds: bool = False) -> None:
    """Each op's `match_lanes` (sliding windows take their MVU's SIMD, label selects their
    producer's lanes); `thresholds`: after a folding file, for the ops it does not name."""
    prev_of, next_of = _neighbours(g, ops)
    for op in ops:
        if op.name not in skip:
            op.match_lanes(prev_of.get(op.name), next_of.get(op.name), after_file=thresholds)


def finn_kinds() -> dict[tuple[str, ...], re.Pattern]:
    """FINN's op kinds in folding files: (op types sharing a `finn_op`) -> the pattern of
    their keys `<name>[_hls|_rtl]_<i>` (names: the finn_op without suffix and its aliases)."""
    groups: dict[str, list] = {}
    for cls in registry().values():
        if cls.finn_op:
            groups.setdefault(cls.finn_op, []).append(cls)
    out = {}
    for finn_op, classes in groups.items():
        names = dict.fromkeys([re.sub(r"_(hls|rtl)$", "", finn_op), *(a for c in classes for a in c.finn_aliases)])
        out[tuple(c.op_type for c in classes)] = re.compile(rf"^({'|'.join(map(re.escape, names))})(_hls|_rtl)?_(\d+)$")
    return out


_FIFO_KEYS = ("inFIFODepths", "outFIFODepths")
FINN_NO_FIFO = 2  # FINN's depth for an edge without a FIFO of its own


def apply_folding_file(graph: DataflowGraph, path: Path) -> DataflowGraph:
    """Apply a JSON folding file. Keys are our node names or FINN names (the i-th
    `MVAU_hls_i` is the i-th BinaryMVU in graph order, and so on); flow.passes.folding_file
    refuses what it cannot apply."""
    spec = read_folding_file(path)
    g = graph.copy()
    ops = g.ops()
    by_name = {o.name: o for o in ops}
    explicit: set[str] = set()
    for key, op, val in resolve_keys(spec, ops, finn_kinds(), path):
        attrs = check_entry(key, op, val, path)
        _apply_fifo_depths(g, by_name, op, val, path)
        for attr, value in attrs.items():
            op.set_attr(attr, value)
            if attr != "ram_style":
                explicit.add(op.name)
    _match_neighbours(g, ops, skip=explicit, thresholds=True)
    _fold_elementwise(g, ops, max(o.cycles() for o in pacing(ops)), skip=explicit)
    _match_neighbours(g, ops, skip=explicit)
    for op in ops:
        try:
            op.check()
        except ValueError as exc:
            raise UserError(f"folding file {path}: {exc}") from None
    return g


def _port_fifos(g: DataflowGraph, by_name: dict, op) -> dict[str, list]:
    """The FIFO (an op with a `fifo_depth_attr`) on each input and output port of `op` (a
    direct neighbour), or None."""
    def fifo(node):
        return by_name[node.name] if node is not None and by_name[node.name].fifo_depth_attr else None

    ins = [fifo(g.producer(t)) for t in op.stream_inputs]
    outs = []
    for t in op.stream_outputs:
        cons = g.consumers(t)
        outs.append(fifo(cons[0]) if len(cons) == 1 else None)
    return {"inFIFODepths": ins, "outFIFODepths": outs}


def _apply_fifo_depths(g: DataflowGraph, by_name: dict, op, val: dict, path) -> None:
    """FINN's inFIFODepths/outFIFODepths (one depth per port): a depth above FINN's 2 sets the
    Depth of the StreamFIFO on that port; ports without a FIFO in this design are skipped."""
    fifos = _port_fifos(g, by_name, op)
    for key in _FIFO_KEYS:
        depths = val.get(key)
        if depths is None:
            continue
        check_depths(f"{op.name}.{key}", depths, path)
        for fifo, depth in zip(fifos[key], depths):
            if fifo is not None and depth > FINN_NO_FIFO:
                fifo.set_attr(fifo.fifo_depth_attr, depth)


def _fifo_depth_entry(g: DataflowGraph, by_name: dict, op) -> dict:
    """{"inFIFODepths": [...], "outFIFODepths": [...]} of an op with a StreamFIFO beside it."""
    fifos = _port_fifos(g, by_name, op)
    if not any(f is not None for side in fifos.values() for f in side):
        return {}
    return {k: [f.depth() if f is not None else FINN_NO_FIFO for f in side] for k, side in fifos.items()}


def folding_config(graph: DataflowGraph, finn_names: bool = True) -> dict:
    """The graph's folding as a folding file: FINN's key names (the i-th op of a kind is
    `<FINN kind>_i`), so FINN and `--folding` both read it; or bnnflow's node names."""
    out: dict = {"Defaults": {}}
    counts: dict[str, int] = {}
    ops = graph.ops()
    by_name = {o.name: o for o in ops}
    for op in ops:
        if not op.folding_attrs or (finn_names and not op.finn_op):
            continue
        entry = {a: op.attr(a) for a in op.folding_attrs}
        if "ram_style" in op.schema():
            entry["ram_style"] = op.attr("ram_style")
        if op.finn_port_fifos:
            entry.update(_fifo_depth_entry(graph, by_name, op))
        if finn_names:
            kind = op.finn_op
            key = f"{kind}_{counts.get(kind, 0)}"
            counts[kind] = counts.get(kind, 0) + 1
        else:
            key = op.name
        out[key] = entry
    return out


def edges(graph: DataflowGraph):
    """(producer op, output port, consumer op, input port) for every stream between ops."""
    ops = graph.ops()
    prod = {t: (o, k) for o in ops for k, t in enumerate(o.stream_outputs)}
    for o in ops:
        for i, t in enumerate(o.stream_inputs):
            if t in prod:
                yield (*prod[t], o, i)


def insert_width_converters(graph: DataflowGraph) -> DataflowGraph:
    """Rebuild the graph with a DataWidthConverter on every edge whose lane counts differ."""
    src = graph.ops()
    prod = {t: (o, k) for o in src for k, t in enumerate(o.stream_outputs)}
    out = DataflowGraph.empty(graph.model.graph.name)
    for p in graph.model.metadata_props:
        out.set_meta(p.key, json.loads(p.value))
    for init in graph.model.graph.initializer:
        if init.name == "output_table":
            out.model.graph.initializer.append(init)
    n_dwc = 0
    for op in src:
        inputs = []
        for i, t in enumerate(op.stream_inputs):
            if t not in prod:
                inputs.append(t)
                continue
            p, k = prod[t]
            a, b = p.out_stream_of(k), op.in_stream_of(i)
            if a.bits != b.bits or a.elems != b.elems:
                raise UserError(f"stream {p.name} -> {op.name} carries {a.elems}x{a.bits}-bit elements but "
                                f"{b.elems}x{b.bits} are expected")
            lanes = [a.lanes]
            if a.lanes % b.lanes and b.lanes % a.lanes:
                lanes.append(math.gcd(a.lanes, b.lanes))
            lanes.append(b.lanes)
            for la, lb in zip(lanes, lanes[1:]):
                if la != lb:
                    dwc = out.add_node(DWC, f"{DWC}_{n_dwc}",
                                       {"InLanes": la, "OutLanes": lb, "ElemBits": a.bits, "Elems": a.elems}, {},
                                       inputs=[t])
                    t = dwc.output[0]
                    n_dwc += 1
            inputs.append(t)
        node = out.add_node(op.op_type, op.name, {}, {}, inputs=inputs, outputs=len(op.stream_outputs))
        del node.output[:]
        node.output.extend(op.stream_outputs)
        node.attribute.extend(op.node.attribute)
        for inp in op.node.input[op.n_inputs:]:
            out.model.graph.initializer.append(_find_init(graph, inp))
            node.input.append(inp)
    out.finalize_io()
    return out


def _find_init(graph: DataflowGraph, name: str):
    for init in graph.model.graph.initializer:
        if init.name == name:
            return init
    raise KeyError(name)
