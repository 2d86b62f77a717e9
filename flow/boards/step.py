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


def run_board(graph, build_dir: Path, board_name: str, clock_mhz: float, unverified: bool = False,
              log=lambda m: None) -> BoardBuild:
    board = load_board(board_name)
    gate = verification_gate(graph, build_dir, unverified)
    if not gate["passed"]:
        log(f"{board.name}: the design is not verified; --unverified builds it anyway (recorded in the report)")
    if board.toolchain == "open-ecp5":
        rec = ecp5.build_bitstream(graph, build_dir, board, log=log, gate=gate)
    else:
        rec = vivado.build_bitstream(graph, build_dir, board, clock_mhz, log=log, gate=gate)
    figures = _yosys_figures(build_dir, board, rec, log)
    return BoardBuild({"board": board.name, "part": board.part, **rec, "gate": gate}, **figures)


def _yosys_figures(build_dir: Path, board, rec: dict, log) -> dict:
    """Per-layer and total yosys figures for the board's family (Xilinx boards: the ECP5
    flow counts its own, shell included), as BoardBuild fields."""
    if board.family == "ecp5":
        return {}
    log(f"{board.name}: yosys resource figures for {board.family} ({board.part})")
    try:
        res = synthesize_layers(Path(build_dir) / "rtl", TOP, board.family)
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
