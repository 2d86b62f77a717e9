"""Folding: choose PE/SIMD per op for a target cycles-per-frame, for a LUT budget, or from
a folding file; then insert data-width converters where neighbouring streams differ in lanes."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


MVU_TYPES = ("BinaryMVU", "IntMVU")
ELEMENTWISE = {"Thresholding": "NumChannels", "MaxPool": "C", "FixedScale": "NumChannels", "GlobalAccPool": "C"}


def mvu_folding(mw: int, mh: int, target: int, vectors: int = 1, simd_choices=None) -> tuple[int, int]:
    """Fewest lanes PE*SIMD with vectors*(MH/PE)*(MW/SIMD) <= target; ties prefer wider SIMD."""
    best = None
    for simd in (simd_choices or divisors(mw)):
        for pe in divisors(mh):
            if vectors * (mh // pe) * (mw // simd) <= target:
                key = (pe * simd, pe)
                if best is None or key < best[0]:
                    best = (key, pe, simd)
                break  # larger PE for this SIMD only costs more lanes
    if best is None:
        simd = max(simd_choices or [mw])
        return mh, simd
    return best[1], best[2]


def _smallest_lanes(n: int, beats_per_lane: int, target: int, prefer: int | None = None) -> int:
    """PE for an element-wise op over n channels: `prefer` if it divides n and meets the
    target, else the smallest divisor that meets it."""
    if prefer and n % prefer == 0 and beats_per_lane * n // prefer <= target:
        return prefer
    for d in divisors(n):
        if beats_per_lane * n // d <= target:
            return d
    return n


def fold_for_target(graph: DataflowGraph, target_cycles: int) -> DataflowGraph:
    """Set every op's folding so that no op needs more than `target_cycles` per frame."""
    if target_cycles < 1:
        raise UserError(f"target cycles per frame must be at least 1, got {target_cycles}")
    g = graph.copy()
    ops = g.ops()
    prev_of, next_of = _neighbours(g, ops)
    for op in ops:
        if op.op_type in MVU_TYPES:
            prev = prev_of.get(op.name)
            choices = divisors(prev.attr("C")) if prev is not None and prev.op_type == "SlidingWindow" else None
            pe, simd = mvu_folding(op.attr("MW"), op.attr("MH"), target_cycles, op.vectors(), choices)
            op.set_attr("PE", pe)
            op.set_attr("SIMD", simd)
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
    for op in graph.ops():
        if op.op_type in MVU_TYPES:
            mw, mh, v = op.attr("MW"), op.attr("MH"), op.vectors()
            found.update(v * (mh // pe) * (mw // simd) for pe in divisors(mh) for simd in divisors(mw))
            most = max(most, v * mh * mw)
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
    """Lanes of the ops between MVUs: as few as meet the target, preferring a neighbour's."""
    prev_of, next_of = _neighbours(g, ops)
    for op in ops:
        if op.name in skip:
            continue
        nxt, prev = next_of.get(op.name), prev_of.get(op.name)
        if op.op_type == "SlidingWindow" and nxt is not None:
            op.set_attr("SIMD", nxt.attr("SIMD"))
        elif op.op_type in ELEMENTWISE:
            n = op.attr(ELEMENTWISE[op.op_type])
            vec = op.in_stream().elems // n
            prefer = None
            if nxt is not None and nxt.op_type in MVU_TYPES + ("SlidingWindow",):
                prefer = nxt.attr("SIMD")
            elif prev is not None:
                prefer = prev.out_stream().lanes
            op.set_attr("PE", _smallest_lanes(n, vec, target_cycles, prefer))
        elif op.op_type == "StreamingConcat":
            ca, cb = op.attr("ChannelsA"), op.attr("ChannelsB")
            g = math.gcd(ca, cb)
            op.set_attr("SIMD", _smallest_lanes(g, op.attr("NumVectors") * (ca + cb) // g, target_cycles,
                                                prev.out_stream().lanes if prev else None))
        elif op.op_type in ("Duplicate", "AddStreams", "StreamFIFO"):
            n = op.attr("NumElems") if op.op_type != "StreamFIFO" else op.attr("Elems")
            op.set_attr("PE", _smallest_lanes(n, 1, target_cycles, prev.out_stream().lanes if prev else None))


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
    """Sliding windows take their MVU's SIMD and label selects their producer's lanes;
    after a folding file, thresholding units it does not name take their MVU's SIMD."""
    prev_of, next_of = _neighbours(g, ops)
    for op in ops:
        if op.name in skip:
            continue
        nxt, prev = next_of.get(op.name), prev_of.get(op.name)
        if thresholds and op.op_type == "Thresholding" and nxt is not None and nxt.op_type in MVU_TYPES:
            op.set_attr("PE", nxt.attr("SIMD"))
        if op.op_type == "SlidingWindow" and nxt is not None:
            op.set_attr("SIMD", nxt.attr("SIMD"))
        if op.op_type == "LabelSelect" and prev is not None:
            lanes = prev.out_stream().lanes
            op.set_attr("PE", lanes if op.attr("Labels") % lanes == 0 else 1)


_FINN_KINDS = {
    MVU_TYPES: re.compile(r"^(MVAU|MatrixVectorActivation|StreamingFCLayer_Batch)(_hls|_rtl)?_(\d+)$"),
    ("Thresholding",): re.compile(r"^(Thresholding|Thresholding_Batch)(_hls|_rtl)?_(\d+)$"),
    ("LabelSelect",): re.compile(r"^(LabelSelect|LabelSelect_Batch)(_hls|_rtl)?_(\d+)$"),
    ("SlidingWindow",): re.compile(r"^(ConvolutionInputGenerator)(_hls|_rtl)?_(\d+)$"),
    ("MaxPool",): re.compile(r"^(StreamingMaxPool|StreamingMaxPool_Batch|Pool|Pool_Batch)(_hls|_rtl)?_(\d+)$"),
    ("FixedScale",): re.compile(r"^(ChannelwiseOp|ChannelwiseOp_Batch)(_hls|_rtl)?_(\d+)$"),
    ("Duplicate",): re.compile(r"^(DuplicateStreams|DuplicateStreams_Batch)(_hls|_rtl)?_(\d+)$"),
    ("AddStreams",): re.compile(r"^(AddStreams|AddStreams_Batch)(_hls|_rtl)?_(\d+)$"),
    ("StreamingConcat",): re.compile(r"^(StreamingConcat)(_hls|_rtl)?_(\d+)$"),
}
_FIFO_KEYS = ("inFIFODepths", "outFIFODepths")
FINN_NO_FIFO = 2  # FINN's depth for an edge without a FIFO of its own


def apply_folding_file(graph: DataflowGraph, path: Path) -> DataflowGraph:
    """Apply a JSON folding file. Keys are our node names or FINN names (the i-th
    `MVAU_hls_i` is the i-th BinaryMVU in graph order, and so on); flow.passes.folding_file
    refuses what it cannot apply."""
    from flow.passes.folding_file import check_entry, read_folding_file, resolve_keys

    spec = read_folding_file(path)
    g = graph.copy()
    ops = g.ops()
    by_name = {o.name: o for o in ops}
    explicit: set[str] = set()
    for key, op, val in resolve_keys(spec, ops, _FINN_KINDS, path):
        attrs = check_entry(key, op, val, path)
        _apply_fifo_depths(g, by_name, op, val, path)
        for attr, value in attrs.items():
            op.set_attr(attr, value)
            if attr != "ram_style":
                explicit.add(op.name)
    _match_neighbours(g, ops, skip=explicit, thresholds=True)
    _fold_elementwise(g, ops, max(o.cycles() for o in ops if o.op_type in MVU_TYPES), skip=explicit)
    _match_neighbours(g, ops, skip=explicit)
    for op in ops:
        try:
            op.check()
        except ValueError as exc:
            raise UserError(f"folding file {path}: {exc}") from None
    return g


def _port_fifos(g: DataflowGraph, by_name: dict, op) -> dict[str, list]:
    """The StreamFIFO on each input and output port of `op` (a direct neighbour), or None."""
    def fifo(node):
        return by_name[node.name] if node is not None and node.op_type == "StreamFIFO" else None

    ins = [fifo(g.producer(t)) for t in op.stream_inputs]
    outs = []
    for t in op.stream_outputs:
        cons = g.consumers(t)
        outs.append(fifo(cons[0]) if len(cons) == 1 else None)
    return {"inFIFODepths": ins, "outFIFODepths": outs}


def _apply_fifo_depths(g: DataflowGraph, by_name: dict, op, val: dict, path) -> None:
    """FINN's inFIFODepths/outFIFODepths (one depth per port): a depth above FINN's 2 sets the
    Depth of the StreamFIFO on that port; ports without a FIFO in this design are skipped."""
    from flow.passes.folding_file import check_depths

    fifos = _port_fifos(g, by_name, op)
    for key in _FIFO_KEYS:
        depths = val.get(key)
        if depths is None:
            continue
        check_depths(f"{op.name}.{key}", depths, path)
        for fifo, depth in zip(fifos[key], depths):
            if fifo is not None and depth > FINN_NO_FIFO:
                fifo.set_attr("Depth", depth)


def _fifo_depth_entry(g: DataflowGraph, by_name: dict, op) -> dict:
    """{"inFIFODepths": [...], "outFIFODepths": [...]} of an op with a StreamFIFO beside it."""
    fifos = _port_fifos(g, by_name, op)
    if not any(f is not None for side in fifos.values() for f in side):
        return {}
    return {k: [f.depth() if f is not None else FINN_NO_FIFO for f in side] for k, side in fifos.items()}


_FINN_NAMES = {"BinaryMVU": "MVAU_hls", "IntMVU": "MVAU_hls", "Thresholding": "Thresholding_hls",
               "SlidingWindow": "ConvolutionInputGenerator_rtl", "MaxPool": "StreamingMaxPool_hls",
               "FixedScale": "ChannelwiseOp_hls", "LabelSelect": "LabelSelect_hls",
               "Duplicate": "DuplicateStreams_hls", "AddStreams": "AddStreams_hls",
               "StreamingConcat": "StreamingConcat_hls"}


def folding_config(graph: DataflowGraph, finn_names: bool = True) -> dict:
    """The graph's folding as a folding file: FINN's key names (the i-th op of a kind is
    `<FINN kind>_i`), so FINN and `--folding` both read it; or bnnflow's node names."""
    out: dict = {"Defaults": {}}
    counts: dict[str, int] = {}
    ops = graph.ops()
    by_name = {o.name: o for o in ops}
    for op in ops:
        if not op.folding_attrs or (finn_names and op.op_type not in _FINN_NAMES):
            continue
        entry = {a: op.attr(a) for a in op.folding_attrs}
        if op.op_type in MVU_TYPES:
            entry["ram_style"] = op.attr("ram_style")
        if op.op_type == "Duplicate":  # the shortcut FIFO, as FINN's per-port FIFO depths
            entry.update(_fifo_depth_entry(graph, by_name, op))
        if finn_names:
            kind = _FINN_NAMES[op.op_type]
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
                    dwc = out.add_node("DataWidthConverter", f"DataWidthConverter_{n_dwc}",
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
