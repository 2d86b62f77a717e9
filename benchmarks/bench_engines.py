"""Images/s of the three executors on the same model and images, side by side:
the compiled Verilator simulation of the generated RTL, bnnflow's numpy integer
reference, and qonnx's `execute_onnx` on the exported QONNX graph.

    python benchmarks/bench_engines.py [--model tfc-w1a1] [--images 10000] [--target-cycles 64]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tfc-w1a1", help="zoo name, checkpoint or .onnx")
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--qonnx-images", type=int, default=200, help="qonnx execute_onnx is slow: fewer images")
    ap.add_argument("--target-cycles", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from qonnx.core.onnx_exec import execute_onnx

    from flow.pipeline.build import BuildConfig, build, load_build
    from flow.train.data import load_dataset
    from flow.sim.execute import execute_numpy
    from flow.frontend.load import load_qonnx
    from flow.sim.simulate import run_rtlsim

    out = args.out or Path(tempfile.mkdtemp(prefix="bnnflow-bench-"))
    build(BuildConfig(model=args.model, out=out, target_cycles=args.target_cycles, verify_images=100, progress=False))
    graph = load_build(out)
    images, _ = load_dataset("mnist-subset")
    reps = -(-args.images // len(images))
    images = np.concatenate([images] * reps)[: args.images]

    t0 = time.perf_counter()
    ref = execute_numpy(graph, images)
    t_np = time.perf_counter() - t0

    run_rtlsim(graph, out, images[:10])  # compile (cached) outside the timing
    t0 = time.perf_counter()
    rtl, stats = run_rtlsim(graph, out, images)
    t_rtl = time.perf_counter() - t0

    onnx_path = out / "model.onnx" if (out / "model.onnx").exists() else Path(args.model)
    mw = load_qonnx(onnx_path)
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    nq = min(args.qonnx_images, len(images))
    t0 = time.perf_counter()
    q = np.array([np.argmax(execute_onnx(mw, {iname: im[None].astype(np.float32) / np.float32(255)})[oname])
                  for im in images[:nq]])
    t_q = time.perf_counter() - t0

    cyc = stats["cycles"]
    print(f"model {args.model}, folding target {args.target_cycles} cycles/frame "
          f"(measured {stats['cycles_per_frame']:.1f})")
    print(f"{'engine':<28}{'images':>8}{'seconds':>10}{'images/s':>12}{'mismatches':>12}")
    print(f"{'rtlsim (Verilator)':<28}{len(images):>8}{t_rtl:>10.3f}{len(images) / t_rtl:>12.0f}{int(np.sum(rtl != ref)):>12}")
    print(f"{'numpy reference':<28}{len(images):>8}{t_np:>10.3f}{len(images) / t_np:>12.0f}{'(ref)':>12}")
    print(f"{'qonnx execute_onnx':<28}{nq:>8}{t_q:>10.3f}{nq / t_q:>12.1f}{int(np.sum(q != ref[:nq])):>12}")
    print(f"rtlsim simulated {cyc} cycles in {stats['wall_s']:.3f} s inside the harness "
          f"({cyc / stats['wall_s'] / 1e6:.2f} M cycles/s)")


if __name__ == "__main__":
    main()
