"""The battery's two big networks as hardware: ResNet18-4w4a (CIFAR-10 shape, brevitas_examples.bnn_pynq)
and MobileNet-v1-4b (224x224, brevitas_examples.imagenet_classification), random weights and
BatchNorm (tests/_battery.py), built with `--target-cycles` (no FINN folding file is published
for them in finn-examples' form that bnnflow reads), verified in RTL on 3 frames, with yosys
figures for xcup (per layer instance and summed: their memory files exceed the 4 MiB above which
flow.boards.synth does not try a whole-design run; ResNet18's 23 MB ran flat for over 23 minutes).
FINN's ZCU104 folding for MobileNet-v1 (finn-examples) names FMPadding_Batch and one
Thresholding_Batch per layer, which bnnflow's lowering folds into the MVUs, so it is not read
here; no FINN resource figures for these two networks were at hand offline to set beside these. Prints estimated and
measured cycles per frame, LUT/FF/BRAM/DSP and the tool that produced them.

    python benchmarks/bench_battery_hw.py [--models resnet18_4w4a,mobilenet_v1_4b] [--md FILE]
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

from _battery import BATTERY, export  # noqa: E402

TARGET_CYCLES = {"resnet18_4w4a": 1_000_000, "mobilenet_v1_4b": 1_000_000}
RTL_FRAMES = 3  # the measured interval takes the second half of the frames


def bench(name: str, tmp: Path) -> dict:
    from flow.cli import main as bnnflow

    entry = BATTERY[name](seed=0, small=False)
    path = tmp / f"{name}.onnx"
    export(entry, path)
    out = tmp / name
    t0 = time.monotonic()
    rc = bnnflow(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", str(TARGET_CYCLES[name]),
                  "--verify-images", str(RTL_FRAMES), "--synth", "xcup", *entry.cli])
    r = json.loads((out / "report.json").read_text())
    res = r["resources"]
    return {"name": name, "rc": rc, "est": r["estimated_cycles_per_frame"], "meas": r["measured_cycles_per_frame"],
            "mismatches": r["verification"]["rtlsim"]["mismatches"], "images": r["verification"]["rtlsim"]["images"],
            "wall": time.monotonic() - t0, "tool": res.get("tool"),
            **{k: res.get(k) for k in ("LUT", "LUTRAM", "FF", "BRAM", "DSP")}}


def markdown(rows: list[dict]) -> str:
    lines = ["# Battery networks as hardware", "",
             "`python benchmarks/bench_battery_hw.py` (tests/_battery.py, seed 0).", "",
             "| model | cycles/frame est. / measured | RTL mismatches | LUT | LUTRAM | FF | BRAM | DSP "
             "| resources from | build s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        meas = f"{r['meas']:,.0f}" if r["meas"] is not None else "-"
        lines.append(f"| {r['name']} | {r['est']:,} / {meas} | {r['mismatches']}/{r['images']} | {r['LUT']:,} "
                     f"| {r['LUTRAM']} | {r['FF']:,} | {r['BRAM']} | {r['DSP']} | {r['tool']} | {r['wall']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(TARGET_CYCLES))
    ap.add_argument("--md", type=Path, help="also write the table to this markdown file")
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(TARGET_CYCLES))
    if unknown:
        sys.exit(f"bench_battery_hw: unknown model {unknown[0]!r}; choose from {', '.join(TARGET_CYCLES)}")
    with tempfile.TemporaryDirectory(prefix="bnnflow-battery-hw-") as tmp:
        rows = []
        for name in names:
            rows.append(bench(name, Path(tmp)))
            print(f"{name}: done", file=sys.stderr, flush=True)
    text = markdown(rows)
    print(text, end="")
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
