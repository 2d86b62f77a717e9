"""RTL generation and whole-design Verilator simulation of a dataflow graph."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from flow.codegen.rtlgen import render_graph
from flow.core.assets import asset_path
from flow.core.wire import pack_beats, unpack_beats
from flow.ir.graph import DataflowGraph
from flow.ir.reference import design_ops, design_streams, frame_outputs, image_chunks, to_wire
from flow.passes.fold import edges
from flow.sim.rtlsim import RTLSim

TOP = "bnnflow_top"
# pixels handed to a simulator per run: bounds the packed beats and wire-order copies of a batch
SIM_CHUNK_BYTES = 8 << 20


def rtl_stages(graph: DataflowGraph, logits: bool = False) -> list[dict]:
    """The stage list handed to the RTL generator (the label select dropped for logits)."""
    return [o.rtl_stage() for o in design_ops(graph, logits)]


def generate_rtl(graph: DataflowGraph, rtl_dir: Path, logits: bool = False) -> dict:
    """Render the stitched top of the design's stream graph (a chain is the simplest one)."""
    ops = design_ops(graph, logits)
    stages = [o.rtl_stage() for o in ops]
    names = {o.name for o in ops}
    links = [["in", o.name] for o in ops if "global_in" in o.stream_inputs]
    for a, k, b, i in edges(graph):
        if a.name in names and b.name in names:
            links.append([[a.name, k], [b.name, i]])
    links.append([ops[-1].name, "out"])
    return render_graph(stages, links, Path(rtl_dir), TOP)


def design_hash(graph: DataflowGraph, logits: bool = False) -> str:
    """Hash of the design parameters and of the RTL library sources."""
    h = hashlib.sha256(graph.model.SerializeToString(deterministic=True))
    h.update(b"logits" if logits else b"top1")
    for f in sorted(asset_path("rtl").rglob("*")):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def compiled_sim(graph: DataflowGraph, build_dir: Path, logits: bool = False):
    """Render the RTL (for logits: a variant without label select) and compile it, cached."""
    build_dir = Path(build_dir)
    rtl_dir = build_dir / ("rtl_logits" if logits else "rtl")
    info = generate_rtl(graph, rtl_dir, logits)
    s_in, s_out = design_streams(graph, logits)
    sim = RTLSim(rtl_dir, info["top"], s_in.width, s_out.width, s_out.beats, s_in.beats,
                 build_dir / "sim")
    sim.build()
    return sim, s_in, s_out


def run_rtlsim(graph: DataflowGraph, build_dir: Path, images: np.ndarray, logits: bool = False,
               stall_seed: int | None = None, watchdog: int | None = None,
               chunk_bytes: int | None = None) -> tuple[np.ndarray, dict]:
    """Stream uint8 images through the compiled design; return (outputs, stats). A design
    with no output for `watchdog` cycles (default: 10 frames at the estimated rate, at
    least 100,000) stops with a UserError naming its stalled streams. Images go to the
    simulator in chunks of about `chunk_bytes` pixels (default SIM_CHUNK_BYTES), so that
    memory stays bounded whatever the batch; the outputs do not depend on the chunking."""
    chunks = image_chunks(graph, images, chunk_bytes or SIM_CHUNK_BYTES)
    sim, s_in, s_out = compiled_sim(graph, build_dir, logits)
    return stream_chunks(graph, sim, s_in, s_out, chunks, logits, stall_seed, watchdog)


def stream_chunks(graph: DataflowGraph, sim: RTLSim, s_in, s_out, chunks, logits: bool = False,
                  stall_seed: int | None = None, watchdog: int | None = None) -> tuple[np.ndarray, dict]:
    """Stream image chunks through a compiled top with the design's wire streams; return
    (outputs, stats) as run_rtlsim does."""
    if watchdog is None:
        watchdog = default_watchdog(graph)
    outs, runs = [], []
    for part in chunks:
        x = to_wire(graph, part)
        out_beats, stats = sim.run(pack_beats(x, s_in.lanes, s_in.bits), stall_seed=stall_seed, watchdog=watchdog)
        outs.append(unpack_beats(out_beats, s_out.lanes, s_out.bits).reshape(len(x), -1)[:, : s_out.elems])
        runs.append(stats)
    y = np.concatenate(outs).astype(np.int64)
    return frame_outputs(graph, y, logits), merge_run_stats(runs)


def default_watchdog(graph: DataflowGraph) -> int:
    """Cycles without output after which a simulation stops: 10 frames at the estimated rate, at least 100,000."""
    return max(100_000, 10 * max(o.cycles() for o in graph.ops()))


def merge_run_stats(runs: list[dict]) -> dict:
    """One stats dict for consecutive simulator runs: cycles, frames, wall and CPU time add up,
    frame_done continues the first run's cycle count, latency is the first run's and cycles
    per frame the frame-weighted mean of the runs that measured it."""
    if len(runs) == 1:
        return runs[0]
    done, offset = [], 0
    for r in runs:
        done.extend(c + offset for c in r["frame_done"])
        offset += r["cycles"]
    rated = [r for r in runs if r["cycles_per_frame"] is not None]
    cpf = (sum(r["cycles_per_frame"] * r["frames"] for r in rated) / sum(r["frames"] for r in rated)) if rated else None
    return {"cycles": offset, "frames": sum(r["frames"] for r in runs), "wall_s": sum(r["wall_s"] for r in runs),
            "cpu_s": sum(r["cpu_s"] for r in runs), "frame_done": done, "latency_cycles": runs[0]["latency_cycles"],
            "cycles_per_frame": cpf, "chunks": len(runs)}
