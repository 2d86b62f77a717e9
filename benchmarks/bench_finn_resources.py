"""bnnflow's resources at FINN's BNN-PYNQ throughput: the design built with FINN's own
folding file, synthesised by yosys for xcup (Ultra96/ZCU104 family), printed beside the
folding FINN used.

    python benchmarks/bench_finn_resources.py [--cnv]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cnv", action="store_true", help="also CNV-w1a1 (yosys takes minutes)")
    args = ap.parse_args()
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    from _models import export, randomize_norms
    from flow.cli import main as bnnflow

    cases = [("tfc_1w1a", (1, 28, 28), "finn_tfc_w1a1_folding.json", 64)]
    if args.cnv:
        cases.append(("cnv_1w1a", (3, 32, 32), "finn_cnv_w1a1_folding.json", 32768))
    tmp = Path(tempfile.mkdtemp(prefix="bnnflow-finnres-"))
    print(f"{'model':<10}{'FINN folding (MVU PE x SIMD)':<52}{'cycles FINN/ours':>18}"
          f"{'LUT':>8}{'FF':>8}{'BRAM':>6}{'DSP':>5}")
    for name, shape, fold, finn_cycles in cases:
        torch.manual_seed(0)
        model, _ = model_with_cfg(name, pretrained=False)
        path = export(randomize_norms(model, 1), tmp / f"{name}.onnx", shape)
        out = tmp / name
        rc = bnnflow(["build", str(path), "--out", str(out), "--quiet", "--folding", str(ROOT / "tests" / "data" / fold),
                      "--verify-images", "4", "--synth", "xcup"])
        r = json.loads((out / "report.json").read_text())
        mvus = " ".join(f"{l['pe']}x{l['simd']}" for l in r["layers"] if l["op"] in ("BinaryMVU", "IntMVU"))
        res = r["resources"]
        print(f"{name:<10}{mvus:<52}{finn_cycles:>9}/{r['measured_cycles_per_frame']:<8.0f}"
              f"{res['LUT']:>8}{res['FF']:>8}{res['BRAM']:>6}{res['DSP']:>5}   (rc {rc}, {res['tool']})")


if __name__ == "__main__":
    main()
