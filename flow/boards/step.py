"""The `board` build step: behind the verification gate, the board's toolchain project and
(where the tools are at hand) its bitstream in BUILD/board/<board>/, plus yosys resource
figures per layer for the board's FPGA family.

It leaves in the build state: `board_build` (the record of the contract), `bitstream`,
`fmax_mhz` and `layer_extra` (per-layer fields merged into report.json's layers).
"""
from __future__ import annotations

from pathlib import Path

from flow.boards import ecp5, vivado
from flow.boards.catalog import load_board, verification_gate
from flow.boards.synth_layers import synthesize_layers
from flow.sim.simulate import TOP


def run_board(st, log=lambda m: None) -> dict:
    cfg = st.cfg
    board = load_board(cfg.board)
    gate = verification_gate(st.graph, cfg.out, cfg.unverified)
    if not gate["passed"]:
        log(f"{board.name}: the design is not verified; --unverified builds it anyway (recorded in the report)")
    if board.toolchain == "open-ecp5":
        rec = ecp5.build_bitstream(st.graph, cfg.out, board, log=log, gate=gate)
    else:
        rec = vivado.build_bitstream(st.graph, cfg.out, board, cfg.clock_mhz, log=log, gate=gate)
    _yosys_figures(st, board, rec, log)
    record = {"board": board.name, "part": board.part, **rec, "gate": gate}
    st.report["board_build"] = record
    st.report["bitstream"] = record["bitstream"]
    st.report["fmax_mhz"] = record.get("fmax_mhz")
    return record


def _yosys_figures(st, board, rec: dict, log) -> None:
    """Per-layer and total yosys figures for the board's family (Xilinx boards: the ECP5
    flow counts its own, shell included)."""
    if board.family == "ecp5":
        return
    log(f"{board.name}: yosys resource figures for {board.family} ({board.part})")
    try:
        res = synthesize_layers(Path(st.cfg.out) / "rtl", TOP, board.family)
    except RuntimeError as exc:  # a tool failure: keep the analytic figures and say why
        log(f"yosys could not synthesise the design; resources stay analytic ({exc})")
        st.report["synthesis_error"] = str(exc)[:2000]
        return
    rec["resources_yosys"] = {"tool": res["tool"], **res["total"]}
    rec["utilisation"] = {k: round(res["total"][k] / board.capacity[k.lower()], 4)
                          for k in ("LUT", "FF", "DSP") if board.capacity[k.lower()]}
    st.report["layer_extra"] = {name: {"resources_yosys": r} for name, r in res["layers"].items()}
    if st.report.get("synthesis") is None:
        st.report["synthesis"] = rec["resources_yosys"]


def summary(record: dict) -> str:
    """One line for the command line."""
    b = record["board"]
    if record["status"] == "built":
        fmax = f", Fmax {record['fmax_mhz']:.1f} MHz" if record.get("fmax_mhz") else ""
        timing = f" ({record['reason']})" if record.get("reason") else ""
        return f"{b}: bitstream {record['bitstream']}{fmax}{timing}"
    return f"{b}: bitstream not built: {record['reason']}"
