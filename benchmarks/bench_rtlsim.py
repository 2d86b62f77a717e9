"""RTL-simulation throughput of the compiled Verilator harness on two FINN-folded designs:
TFC-w1a1 (10,000 MNIST images, FINN's folding: 64 cycles per frame) and CNV-w1a1 (a few
CIFAR-sized random images, FINN's folding). Both are BNN-PYNQ's Brevitas models with random
weights and BatchNorm statistics. Reports the Verilator compile time, images/s and
simulated cycles/s (inside the harness and end to end through `run_rtlsim`), and checks
the outputs against the numpy reference. The harness is also timed when built without the
simulation-only stream handshake ports (the stall diagnosis), to show they cost nothing.

    python benchmarks/bench_rtlsim.py [--tfc-images 10000] [--cnv-images 20] [--md FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the Brevitas model fixtures

CASES = {
    "TFC-w1a1": ("tfc_1w1a", (1, 28, 28), "finn_tfc_w1a1_folding.json"),
    "CNV-w1a1": ("cnv_1w1a", (3, 32, 32), "finn_cnv_w1a1_folding.json"),
}


def _model(name: str, seed: int = 3):
    import torch
    from _models import randomize_norms
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    return randomize_norms(model, seed + 1)


def _images(shape, n: int) -> np.ndarray:
    if shape == (1, 28, 28):
        from flow.train.data import load_dataset

        pool, _ = load_dataset("mnist-subset")
        return np.concatenate([pool] * -(-n // len(pool)))[:n]
    return np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)


def bench(label: str, n_images: int, work: Path) -> dict:
    from _models import export

    from flow.pipeline.build import BuildConfig, build, load_build
    from flow.sim.execute import execute_numpy
    from flow.sim.simulate import compiled_sim, run_rtlsim

    name, shape, folding = CASES[label]
    out = work / name
    onnx = export(_model(name), work / f"{name}.onnx", shape)
    report = build(BuildConfig(model=str(onnx), out=out, folding=ROOT / "tests" / "data" / folding,
                               verify_images=2, progress=False))
    graph = load_build(out)
    shutil.rmtree(out / "sim")  # time a cold compile of the harness
    t0 = time.perf_counter()
    sim, _s_in, _s_out = compiled_sim(graph, out)
    compile_s = time.perf_counter() - t0

    images = _images(shape, n_images)
    t0 = time.perf_counter()
    y, stats = run_rtlsim(graph, out, images)
    total_s = time.perf_counter() - t0
    ref = execute_numpy(graph, images)
    plain_s = _harness_without_stream_debug(sim, graph, images)
    return {"plain_s": plain_s, "label": label, "images": n_images, "est": report["estimated_cycles_per_frame"],
            "meas": stats["cycles_per_frame"], "latency": stats["latency_cycles"], "cycles": stats["cycles"],
            "compile_s": compile_s, "verilator_s": sim.compile_seconds, "harness_s": stats["wall_s"],
            "total_s": total_s, "mismatches": int(np.sum(y != ref)),
            "luts": report["resources"]["LUT"], "layers": len(report["layers"])}


def _harness_without_stream_debug(sim, graph, images) -> float:
    """Harness wall time of the same design built without its dbg_tvalid/dbg_tready ports."""
    from flow.sim.execute import to_wire
    from flow.sim.rtlsim import RTLSim
    from flow.core.wire import pack_beats
    from flow.ir.reference import design_streams

    plain = RTLSim(sim.rtl_dir, sim.top, sim.in_bits, sim.out_bits, sim.out_bpf, sim.in_bpf, sim.cache_dir,
                   stream_debug=False)
    plain.build()
    s_in, _ = design_streams(graph, False)
    _, stats = plain.run(pack_beats(to_wire(graph, images), s_in.lanes, s_in.bits))
    return stats["wall_s"]


def markdown(rows: list[dict]) -> str:
    from flow.core.tools import versions

    v = versions()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        "# RTL simulation throughput",
        "",
        f"`python benchmarks/bench_rtlsim.py` on {os.cpu_count()} cores ({cpu}), Verilator {v.get('verilator')}.",
        "Designs: BNN-PYNQ TFC-w1a1 and CNV-w1a1 from brevitas_examples with random weights and BatchNorm",
        "statistics, folded with FINN's folding files (tests/data). Compile: a cold Verilator build of the",
        "stitched top and harness. Harness: wall time of the simulator process alone; end to end: `run_rtlsim`",
        "with packing and unpacking. Outputs are compared with the numpy reference. Harness s without",
        "stream debug: the same run on a build without the simulation-only handshake ports that name the",
        "stalled streams of a deadlock.",
        "",
        "| design | ops | LUT (est.) | cycles/frame est. / measured | first-frame latency | images | compile s "
        "| harness s | harness s without stream debug | images/s (harness) | M cycles/s (harness) "
        "| images/s (end to end) | mismatches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['layers']} | {r['luts']:,} | {r['est']:,} / {r['meas']:,.1f} | {r['latency']:,} "
            f"| {r['images']:,} | {r['compile_s']:.1f} | {r['harness_s']:.3f} | {r['plain_s']:.3f} "
            f"| {r['images'] / r['harness_s']:,.0f} "
            f"| {r['cycles'] / r['harness_s'] / 1e6:.2f} | {r['images'] / r['total_s']:,.0f} | {r['mismatches']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfc-images", type=int, default=10000)
    ap.add_argument("--cnv-images", type=int, default=20)
    ap.add_argument("--only", choices=sorted(CASES), help="one design only")
    ap.add_argument("--md", type=Path, help="also write the table to this markdown file")
    ap.add_argument("--work", type=Path, help="build directory (default: a temporary one)")
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bnnflow-rtlsim-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, n in (("TFC-w1a1", args.tfc_images), ("CNV-w1a1", args.cnv_images)):
        if args.only in (None, label):
            rows.append(bench(label, n, work))
            print(f"{label}: done", file=sys.stderr, flush=True)
    text = markdown(rows)
    print(text, end="")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text)


if __name__ == "__main__":
    main()
