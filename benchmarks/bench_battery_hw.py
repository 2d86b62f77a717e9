"""The battery's two big networks as hardware: ResNet18-4w4a (CIFAR-10 shape, brevitas_examples.bnn_pynq)
and MobileNet-v1-4b (224x224, brevitas_examples.imagenet_classification), random weights and
BatchNorm (tests/_battery.py), verified in RTL on 3 frames, with yosys figures for xcup (per layer
instance and summed: their memory files exceed the 4 MiB above which flow.boards.synth does not
try a whole-design run; ResNet18's 23 MB ran flat for over 23 minutes).

Foldings: ResNet18-4w4a at `--target-cycles` (finn-examples publishes no ResNet18 build);
MobileNet-v1-4b both at `--target-cycles` and at FINN's ZCU104 folding from finn-examples
(build/mobilenet-v1/folding_config/ZCU104_folding_config.json), its PE/SIMD transcribed below
and passed as a FINN-named `--folding` file: MatrixVectorActivation_k, Vector_Vector_Activate_Batch_k
and ConvolutionInputGenerator_k name the k-th MVU, VVU and sliding window of both designs. Left
out: FINN's Thresholding_Batch entries (bnnflow folds those thresholds into the MVUs and VVUs,
which take their PE), and its last ConvolutionInputGenerator + Pool_Batch (bnnflow's global pool
reads the stream directly). No FINN resource figures for these networks were at hand offline to
set beside these. Prints estimated and measured cycles per frame, LUT/FF/BRAM/DSP and the tool
that produced them.

    python benchmarks/bench_battery_hw.py [--models resnet18_4w4a,mobilenet_v1_4b,mobilenet_v1_4b@finn-zcu104] [--md FILE]
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

TARGET_CYCLES = 1_000_000
# FINN's ZCU104 folding of MobileNet-v1 (finn-examples): kind, attributes, values in the order of its layers
FINN_ZCU104_MOBILENET = (
    ("MatrixVectorActivation", ("PE", "SIMD"), [(16, 3), (8, 8), (16, 8), (32, 8), (16, 8), (32, 8), (16, 8), (32, 8),
                                                (32, 8), (32, 8), (32, 8), (32, 8), (16, 8), (32, 8), (1, 16)]),
    ("Vector_Vector_Activate_Batch", ("PE",), [16, 8, 16, 4, 8, 2, 4, 4, 4, 4, 4, 1, 2]),
    ("ConvolutionInputGenerator", ("SIMD",), [1, 16, 8, 16, 4, 8, 2, 4, 4, 4, 4, 4, 1, 2]),
    ("ChannelwiseOp_Batch", ("PE",), [1]),
    ("LabelSelect_Batch", ("PE",), [1]),
)


def finn_zcu104_mobilenet() -> dict:
    """FINN_ZCU104_MOBILENET as a FINN-named folding file."""
    spec: dict = {"Defaults": {}}
    for kind, attrs, values in FINN_ZCU104_MOBILENET:
        for k, v in enumerate(values):
            spec[f"{kind}_{k}"] = dict(zip(attrs, v if isinstance(v, tuple) else (v,)))
    return spec


# name -> (battery model, FINN folding file or None for --target-cycles TARGET_CYCLES)
CONFIGS = {"resnet18_4w4a": ("resnet18_4w4a", None),
           "mobilenet_v1_4b": ("mobilenet_v1_4b", None),
           "mobilenet_v1_4b@finn-zcu104": ("mobilenet_v1_4b", finn_zcu104_mobilenet)}
RTL_FRAMES = 3  # the measured interval takes the second half of the frames


def bench(name: str, tmp: Path) -> dict:
    from flow.cli import main as bnnflow

    model, folding_file = CONFIGS[name]
    entry = BATTERY[model](seed=0, small=False)
    path = tmp / f"{model}.onnx"
    if not path.exists():
        export(entry, path)
    if folding_file is None:
        folding, fold = f"target-cycles {TARGET_CYCLES}", ["--target-cycles", str(TARGET_CYCLES)]
    else:
        folding, spec = "FINN ZCU104 folding", tmp / f"{name.replace('@', '-')}.json"
        spec.write_text(json.dumps(folding_file(), indent=1))
        fold = ["--folding", str(spec)]
    out = tmp / name.replace("@", "-")
    t0 = time.monotonic()
    rc = bnnflow(["build", str(path), "--out", str(out), "--quiet", *fold,
                  "--verify-images", str(RTL_FRAMES), "--synth", "xcup", *entry.cli])
    r = json.loads((out / "report.json").read_text())
    res = r["resources"]
    return {"name": name, "folding": folding, "rc": rc, "est": r["estimated_cycles_per_frame"],
            "meas": r["measured_cycles_per_frame"],
            "mismatches": r["verification"]["rtlsim"]["mismatches"], "images": r["verification"]["rtlsim"]["images"],
            "wall": time.monotonic() - t0, "tool": res.get("tool"),
            **{k: res.get(k) for k in ("LUT", "LUTRAM", "FF", "BRAM", "DSP")}}


def markdown(rows: list[dict]) -> str:
    lines = ["# Battery networks as hardware", "",
             "`python benchmarks/bench_battery_hw.py` (tests/_battery.py, seed 0).", "",
             "| model | folding | cycles/frame est. / measured | RTL mismatches | LUT | LUTRAM | FF | BRAM | DSP "
             "| resources from | build s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        meas = f"{r['meas']:,.0f}" if r["meas"] is not None else "-"
        lines.append(f"| {r['name']} | {r['folding']} | {r['est']:,} / {meas} | {r['mismatches']}/{r['images']} | {r['LUT']:,} "
                     f"| {r['LUTRAM']} | {r['FF']:,} | {r['BRAM']} | {r['DSP']} | {r['tool']} | {r['wall']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(CONFIGS))
    ap.add_argument("--md", type=Path, help="also write the table to this markdown file")
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        sys.exit(f"bench_battery_hw: unknown model {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
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
