"""`bnnflow sweep` on 1 and 2 Dask workers: the same 8-point sweep, wall time side by side.

The points: a small binary MLP (64 inputs, 32 and 16 hidden, 10 classes; written as QONNX by
tests/_tiny_nets.py) folded for 4 targets (16, 32, 64, 128 cycles per frame) and verified on
200 or 2,000 images: 4 designs, each compiled once per run (every run starts from an empty
simulator cache and an empty sweep folder), 8 builds. Two sweeps of these 8 points: "verify"
(build and RTL verification only) and "verify + yosys" (each point also synthesised for xcup,
as a sweep that reports resources does). Each run is the command line a user types,
`bnnflow sweep SPEC --out DIR --workers N`, timed from start to exit (the embedded
LocalCluster's start and stop included).

    python benchmarks/bench_sweep.py [--workers 1 2] [--sweeps verify,synth] [--md FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

GRID = 'model = "mlp.onnx"\ntarget_cycles = [16, 32, 64, 128]\nverify_images = [200, 2000]\n'
SPECS = {"verify": ("verify", GRID), "synth": ("verify + yosys xcup", GRID + 'synth = "xcup"\n')}


def write_model(path: Path) -> Path:
    from _tiny_nets import Layer, TinyNet, save

    rng = np.random.default_rng(0)
    layers, mw = [], 64
    for mh in (32, 16):
        bn = (rng.random(mh) + 0.5, rng.standard_normal(mh), rng.standard_normal(mh) * 2, rng.random(mh) + 0.5)
        layers.append(Layer(np.where(rng.integers(0, 2, (mh, mw)) > 0, 1, -1), 0, 1.0, 0, bn, 0))
        mw = mh
    layers.append(Layer(np.where(rng.integers(0, 2, (10, mw)) > 0, 1, -1), 0, 1.0))
    return save(TinyNet(64, 0, layers), path)


def run(sweep: str, workers: int, tmp: Path) -> dict:
    out = tmp / f"sweep-{sweep}-{workers}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "flow.cli", "sweep", str(tmp / f"{sweep}.toml"), "--out", str(out),
                          "--workers", str(workers), "--quiet"], capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        raise SystemExit(f"sweep with {workers} workers failed:\n{res.stdout}\n{res.stderr}")
    summary = json.loads((out / "sweep.json").read_text())
    rows = summary["rows"]
    return {"sweep": SPECS[sweep][0], "workers": workers, "wall_s": wall, "points": len(rows), "counts": summary["counts"],
            "designs": len({r["design_hash"] for r in rows}),
            "point_s": sum(r["wall_s"] for r in rows), "mismatches": sum(r["mismatches"]["rtlsim"] for r in rows),
            "rows": [(r["params"]["target_cycles"], r["params"]["verify_images"], r["lut"], r["fps"]) for r in rows]}


def table(results: list[dict], load_start: float) -> str:
    lines = [f"`bnnflow sweep` of 8 points (4 designs x 2 verification sizes), {os.cpu_count()} cores "
             f"(load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)", "",
             "| sweep | workers | wall s | speed-up | points | designs compiled | sum of point wall s "
             "| rtlsim mismatches |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        base = next(b["wall_s"] for b in results if b["sweep"] == r["sweep"])
        lines.append(f"| {r['sweep']} | {r['workers']} | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}x | "
                     f"{r['counts'].get('complete', 0)}/{r['points']} complete | {r['designs']} | "
                     f"{r['point_s']:.1f} | {r['mismatches']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sweeps", default=",".join(SPECS), help=f"which sweeps ({', '.join(SPECS)})")
    ap.add_argument("--md", type=Path, help="also write the table to this markdown file")
    args = ap.parse_args()
    sweeps = [s for s in args.sweeps.split(",") if s]
    if any(s not in SPECS for s in sweeps):
        raise SystemExit(f"bench_sweep: --sweeps takes {', '.join(SPECS)}")
    results, load_start = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        write_model(tmp / "mlp.onnx")
        for sweep in sweeps:
            (tmp / f"{sweep}.toml").write_text(SPECS[sweep][1])
            for n in args.workers:
                results.append(run(sweep, n, tmp))
                print(f"{SPECS[sweep][0]}, {n} worker(s): {results[-1]['wall_s']:.1f} s", flush=True)
    if any(r["rows"] != b["rows"] for r in results for b in results if b["sweep"] == r["sweep"]):
        raise SystemExit("the same sweep gave different results on different numbers of workers")
    text = table(results, load_start)
    print(text)
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
