"""RTL-simulation throughput of the compiled Verilator harness on two FINN-folded designs:
TFC-w1a1 (10,000 MNIST images, FINN's folding: 64 cycles per frame) and CNV-w1a1 (a few
CIFAR-sized random images, FINN's folding: 32,768 cycles per frame). Both are BNN-PYNQ's
Brevitas models with random weights and BatchNorm statistics. Reports the Verilator compile
(wall and CPU seconds), the simulator binary's size, images/s and simulated cycles/s inside the
harness (per wall second and per CPU second of the simulator process) and end to end through
`run_rtlsim`, and checks the outputs against the numpy reference.

CPU seconds are those of the child processes this script waits for (resource.getrusage
RUSAGE_CHILDREN around the compile and around the run, whose only child is the simulator): on
a machine shared with other jobs they stay put where wall time does not. The load average is
printed beside the numbers.

    python benchmarks/bench_rtlsim.py [--tfc-images 10000] [--cnv-images 20] [--md FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
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


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


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
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _children_cpu()
    sim, _s_in, _s_out = compiled_sim(graph, out)
    compile_s, compile_cpu = time.perf_counter() - t0, _children_cpu() - c0

    images = _images(shape, n_images)
    t0, c0 = time.perf_counter(), _children_cpu()
    y, stats = run_rtlsim(graph, out, images)
    total_s, cpu_s = time.perf_counter() - t0, _children_cpu() - c0
    ref = execute_numpy(graph, images)
    return {"label": label, "images": n_images, "est": report["estimated_cycles_per_frame"],
            "meas": stats["cycles_per_frame"], "latency": stats["latency_cycles"], "cycles": stats["cycles"],
            "compile_s": compile_s, "compile_cpu": compile_cpu, "binary_mb": sim.binary.stat().st_size / 1e6,
            "harness_s": stats["wall_s"], "cpu_s": cpu_s, "total_s": total_s, "mismatches": int(np.sum(y != ref)),
            "luts": report["resources"]["LUT"], "layers": len(report["layers"]),
            "load": (load + os.getloadavg()[0]) / 2}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown(rows: list[dict]) -> str:
    """The table of `rows` and a line naming the date, the machine and the Verilator version."""
    from flow.core.tools import versions

    v = versions()
    lines = [
        "# RTL simulation throughput",
        "",
        "`python benchmarks/bench_rtlsim.py`. Designs: BNN-PYNQ TFC-w1a1 and CNV-w1a1 from brevitas_examples with",
        "random weights and BatchNorm statistics, folded with FINN's folding files (tests/data). Compile: a cold",
        "Verilator build of the stitched top and harness, wall seconds (CPU seconds of the compiler processes).",
        "Harness: the simulator process alone, wall seconds (its CPU seconds); M cycles/s per CPU second is the",
        "rate on a core of its own, which a machine shared with other jobs does not give the wall clock. End to",
        "end: `run_rtlsim` with packing and unpacking. Outputs are compared with the numpy reference. Load",
        "average: the machine's 1-minute load average around the design's compile and run.",
        "",
        "| design | ops | LUT (est.) | cycles/frame est. / measured | first-frame latency | images | compile s (CPU s) "
        "| binary MB | harness s (CPU s) | images/s (harness) | M cycles/s (harness, wall) | M cycles/s (per CPU s) "
        "| images/s (end to end) | load average | mismatches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['layers']} | {r['luts']:,} | {r['est']:,} / {r['meas']:,.1f} | {r['latency']:,} "
            f"| {r['images']:,} | {r['compile_s']:.1f} ({r['compile_cpu']:.1f}) | {r['binary_mb']:.2f} "
            f"| {r['harness_s']:.3f} ({r['cpu_s']:.3f}) | {r['images'] / r['harness_s']:,.0f} "
            f"| {r['cycles'] / r['harness_s'] / 1e6:.2f} | {r['cycles'] / r['cpu_s'] / 1e6:.2f} "
            f"| {r['images'] / r['total_s']:,.0f} | {r['load']:.1f} | {r['mismatches']} |")
    lines += ["", f"{date.today().isoformat()}, {os.cpu_count()} cores ({_cpu_name()}), Verilator {v.get('verilator')}."]
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
    try:
        for label, n in (("TFC-w1a1", args.tfc_images), ("CNV-w1a1", args.cnv_images)):
            if args.only in (None, label):
                rows.append(bench(label, n, work))
                print(f"{label}: done", file=sys.stderr, flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text = markdown(rows)
    print(text, end="")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text)


if __name__ == "__main__":
    main()
