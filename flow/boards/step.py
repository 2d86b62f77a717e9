"""The `board` build step: behind the verification gate, the board's toolchain project and
(where the tools are at hand) its bitstream in BUILD/board/<board>/, plus yosys resource
figures per layer for the board's FPGA family.

It returns a BoardBuild: the record of the contract (report.json's `board_build`), the
per-layer fields merged into report.json's layers, and the yosys totals.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flow.boards import ecp5, vivado
from flow.boards.catalog import load_board, verification_gate
from flow.boards.synth_layers import synthesize_layers
from flow.core.errors import UserError
from flow.sim.netlist import NetlistCheck, NetlistVerification, verify_netlist
from flow.sim.simulate import TOP


@dataclass(frozen=True)
class BoardBuild:
    """What the board step made: report.json's `board_build` record (its `bitstream` and
    `fmax_mhz` are also report.json's top-level fields), per-layer fields merged into
    report.json's layers, and the yosys totals for the board's family (or why there are none)."""

    record: dict
    layer_extra: dict[str, dict] = field(default_factory=dict)
    synthesis: dict | None = None
    synthesis_error: str | None = None
    netlist: NetlistVerification | None = None  # the synthesised netlist simulated (report.json verification.netlist)
    netlist_error: str | None = None             # a netlist was written but could not be simulated

    def netlist_problem(self) -> str | None:
        """Why the synthesised netlist does not show a pass (None when it does or none was written)."""
        if self.netlist_error is not None:
            return f"its netlist could not be simulated: {self.netlist_error}"
        if self.netlist is not None and (self.netlist.mismatches or not self.netlist.array_equal):
            return f"its synthesised netlist has {self.netlist.mismatches} mismatches in {self.netlist.images} images"
        return None


class _NetlistRun:
    """The check the ECP5 flow calls between yosys and nextpnr: simulate the netlist and
    keep what was found (place and route goes on when it passed, or with --unverified)."""

    def __init__(self, graph, build_dir: Path, check: NetlistCheck, unverified: bool, log):
        self.graph, self.build_dir, self.check, self.unverified, self.log = graph, build_dir, check, unverified, log
        self.found: NetlistVerification | None = None
        self.error: str | None = None

    def __call__(self, netlist: Path, synthesis: str, synth_seconds: float) -> bool:
        try:
            self.found = verify_netlist(self.graph, self.build_dir, netlist, "ecp5", self.check, synthesis,
                                        synth_seconds, log=self.log)
        except UserError as exc:
            self.error = str(exc)[:2000]
            self.log(f"netlist simulation failed: {self.error}")
        passed = self.error is None and self.found.mismatches == 0 and self.found.array_equal
        if not passed and self.unverified:
            self.log("the netlist is not verified; --unverified goes on to place and route")
        return passed or self.unverified


def run_board(graph, build_dir: Path, board_name: str, clock_mhz: float, unverified: bool = False,
              log=lambda m: None, netlist: NetlistCheck | None = None, clock_search: bool = False) -> BoardBuild:
    """The board's project and bitstream; with `netlist` (ECP5), the core's synthesised
    netlist simulated on those images before place and route; with `clock_search` (ECP5), the
    highest clock from `clock_mhz` on that closes (flow.boards.ecp5_clock)."""
    board = load_board(board_name)
    gate = verification_gate(graph, build_dir, unverified)
    if not gate["passed"]:
        log(f"{board.name}: the design is not verified; --unverified builds it anyway (recorded in the report)")
    run = None
    if board.toolchain == "open-ecp5":
        run = _NetlistRun(graph, build_dir, netlist, unverified, log) if netlist is not None else None
        rec = ecp5.build_bitstream(graph, build_dir, board, log=log, gate=gate, check_netlist=run,
                                   clock_mhz=clock_mhz, search=clock_search)
    else:
        rec = vivado.build_bitstream(graph, build_dir, board, clock_mhz, log=log, gate=gate)
    figures = _yosys_figures(build_dir, board, rec, log)
    found = {"netlist": run.found, "netlist_error": run.error} if run is not None else {}
    return BoardBuild({"board": board.name, "part": board.part, **rec, "gate": gate}, **figures, **found)


def _yosys_figures(build_dir: Path, board, rec: dict, log) -> dict:
    """Per-layer and total yosys figures for the board's family (Xilinx boards: the ECP5
    flow counts its own, shell included), as BoardBuild fields."""
    if board.family == "ecp5":
        return {}
    log(f"{board.name}: yosys resource figures for {board.family} ({board.part})")
    try:
        res, reused = synthesize_layers(Path(build_dir) / "rtl", TOP, board.family, cache_dir=Path(build_dir) / "sim")
        if reused:
            log(f"{board.name}: yosys figures of identical sources reused (BUILD/sim/, content-keyed)")
    except RuntimeError as exc:  # a tool failure: keep the analytic figures and say why
        log(f"yosys could not synthesise the design; resources stay analytic ({exc})")
        return {"synthesis_error": str(exc)[:2000]}
    rec["resources_yosys"] = {"tool": res["tool"], **res["total"]}
    rec["utilisation"] = {k: round(res["total"][k] / board.capacity[k.lower()], 4)
                          for k in ("LUT", "FF", "DSP") if board.capacity[k.lower()]}
    return {"layer_extra": {name: {"resources_yosys": r} for name, r in res["layers"].items()},
            "synthesis": rec["resources_yosys"]}


def summary(record: dict) -> str:
    """One line for the command line."""
    b = record["board"]
    if record["status"] == "built":
        fmax = f", Fmax {record['fmax_mhz']:.1f} MHz" if record.get("fmax_mhz") else ""
        timing = f" ({record['reason']})" if record.get("reason") else ""
        return f"{b}: bitstream {record['bitstream']}{fmax}{timing}"
    return f"{b}: bitstream not built: {record['reason']}"
