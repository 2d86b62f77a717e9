"""Images/s of the C simulation of the generated HLS top beside the numpy reference and the
Verilator RTL simulation, on BNN-PYNQ TFC-w1a1 and CNV-w1a1 (random weights and BatchNorm;
throughput does not depend on the weights), plus the g++ compile time per optimisation level.

    python benchmarks/bench_csim.py [--tfc-images 10000] [--cnv-images 20] [--opt-sweep]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def bench(name, shape, target, n, work: Path, rows: list) -> None:
    from _hls_helpers import brevitas_model, lower
    from _models import export

    from flow.sim.csim import compiled_csim, run_csim
    from flow.sim.execute import execute_numpy
    from flow.sim.simulate import compiled_sim, run_rtlsim

    d = work / name
    d.mkdir(parents=True)
    graph = lower(export(brevitas_model(name, seed=1), d / "m.onnx", shape), d, target)
    x = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)
    if shape == (1, 28, 28):
        from flow.train.data import load_dataset

        imgs, _ = load_dataset("mnist-subset")
        x = np.concatenate([imgs] * -(-n // len(imgs)))[:n]
    ref, t_np = _timed(lambda: execute_numpy(graph, x))
    (_sim, _info), t_cc = _timed(lambda: compiled_csim(graph, d))
    (c, stats), _t = _timed(lambda: run_csim(graph, d, x))
    _s, t_vc = _timed(lambda: compiled_sim(graph, d))
    (r, _st), t_rs = _timed(lambda: run_rtlsim(graph, d, x))
    assert np.array_equal(c, ref) and np.array_equal(r, ref), "engines disagree"
    rows.append((name, n, n / t_np, stats["frames_per_s"], stats["processes"], t_cc, n / t_rs, t_vc))


def opt_sweep(work: Path) -> None:
    from _hls_helpers import brevitas_model, lower
    from _models import export

    import flow.sim.csim as csim

    d = work / "sweep"
    d.mkdir(parents=True)
    graph = lower(export(brevitas_model("tfc_1w1a", seed=1), d / "m.onnx"), d, 128)
    x = np.random.default_rng(0).integers(0, 256, (4000, 1, 28, 28), dtype=np.uint8)
    print("\n| g++ level | compile s | images/s (1 process) |\n|---|---|---|")
    for opt in ("-O0", "-O1", "-O2"):
        csim.CXX_OPT = opt
        sim, _info = csim.compiled_csim(graph, d)
        _y, st = csim.run_csim(graph, d, x, processes=1)
        print(f"| {opt} | {sim.compile_seconds:.1f} | {st['frames_per_s']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfc-images", type=int, default=10000)
    ap.add_argument("--cnv-images", type=int, default=20)
    ap.add_argument("--opt-sweep", action="store_true", help="also time -O0/-O1/-O2 compiles of TFC-w1a1")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bnnflow-bench-csim-"))
    rows: list = []
    bench("tfc_1w1a", (1, 28, 28), 128, args.tfc_images, work, rows)
    if args.cnv_images:
        bench("cnv_1w1a", (3, 32, 32), 32768, args.cnv_images, work, rows)
    print("| model | images | numpy img/s | csim img/s (processes) | csim compile s | rtlsim img/s | rtlsim compile s |")
    print("|---|---|---|---|---|---|---|")
    for name, n, np_s, cs, procs, cc, rs, vc in rows:
        print(f"| {name} | {n} | {np_s:.0f} | {cs:.0f} ({procs}) | {cc:.1f} | {rs:.0f} | {vc:.1f} |")
    if args.opt_sweep:
        opt_sweep(work)


if __name__ == "__main__":
    main()
