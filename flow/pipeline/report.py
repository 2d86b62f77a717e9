"""report.json: the machine-readable record of a build (and report.html, the same for people)."""
from __future__ import annotations

from flow.core.builddir import atomic_write_json
from flow.core.tools import versions
from flow.passes.fifo import fifo_summary
from flow.pipeline.report_html import write_html
from flow.pipeline.state import BuildState, StepContext, config_dict
from flow.sim.simulate import design_hash
from flow.sim.verify import record_problem

ANALYTIC = "bnnflow analytic estimate"


def layer_rows(graph) -> list[dict]:
    rows = []
    for op in graph.ops():
        rows.append({**op.describe(), "cycles": op.cycles(), "resources": op.resources()})
    return rows


def _record(st: BuildState) -> dict | None:
    return st.verification.record if st.verification is not None else None


def verification_dict(st: BuildState) -> dict | None:
    """report.json's verification: the record of the verify step, with `netlist` where the
    board step simulated the synthesised netlist (never when it did not run)."""
    rec = _record(st)
    if rec is None or st.board is None or st.board.netlist is None:
        return rec
    return {**rec, "netlist": st.board.netlist.as_dict()}


def _verified(st: BuildState) -> bool:
    """The engines agree: the verification record passes (counted from its mismatches), so
    did the vendor RTL when it ran, and so did the synthesised netlist where one was written."""
    hls_rtl = st.hls_rtl_verification
    netlist_ok = st.board is None or st.board.netlist_problem() is None
    return record_problem(_record(st)) is None and (hls_rtl is None or hls_rtl["mismatches"] == 0) and netlist_ok


def status_of(ctx: StepContext, st: BuildState) -> str:
    """complete (verified), unverified (no verification for this design: --unverified) or
    verification_failed."""
    if _verified(st):
        return "complete"
    if _record(st) is None and ctx.cfg.unverified:
        return "unverified"
    return "verification_failed"


def _figures(ctx: StepContext, st: BuildState) -> dict:
    """The design's cycle and resource figures (analytic, measured, synthesised)."""
    g, v = st.graph, st.verification
    layers = layer_rows(g)
    extra = st.board.layer_extra if st.board is not None else {}
    for row in layers:  # per-layer figures of later steps (e.g. yosys resources of the board step)
        row.update(extra.get(row["name"], {}))
    totals = {k: sum(r["resources"][k] for r in layers) for k in ("LUT", "FF", "BRAM", "DSP")}
    est = max(r["cycles"] for r in layers)
    measured = v.measured_cycles_per_frame if v is not None else None
    built = st.board.record if st.board is not None and st.board.record.get("status") == "built" else {}
    clock = built.get("clock_mhz") or ctx.cfg.clock_mhz  # the clock the board's bitstream runs at, else the asked one
    return {
        "layers": layers,
        "fifo": fifo_summary(g),
        "estimated_cycles_per_frame": est,
        "measured_cycles_per_frame": measured,
        "cycles_error_pct": (abs(measured - est) / est * 100.0) if measured else None,
        "first_frame_latency_cycles": v.first_frame_latency_cycles if v is not None else None,
        "rtlsim": v.rtlsim_stats if v is not None else None,
        "estimated_fps_at_clock": {"clock_mhz": clock, "fps": clock * 1e6 / est},
        "resources": st.synthesis or {"tool": ANALYTIC, **totals},
        "resources_estimate": {"tool": ANALYTIC, **totals},
    }


def report_dict(ctx: StepContext, st: BuildState) -> dict:
    g, v, bb = st.graph, st.verification, st.board.record if st.board is not None else None
    return {
        "status": status_of(ctx, st),
        "model": ctx.cfg.model,
        "board": ctx.cfg.board,
        "design_hash": design_hash(g),
        "graph_hash": g.fingerprint(),  # the dataflow.onnx this report describes
        "config": config_dict(ctx.cfg),
        "input": g.meta("input"),
        "output": {**g.meta("output"), "top1": "argmax of integer logits, ties -> lowest index"}
        if g.meta("output").get("kind", "class") == "class" else g.meta("output"),
        **_figures(ctx, st),
        "verification": verification_dict(st),
        "hls_rtl_verification": st.hls_rtl_verification,
        "accuracy": v.accuracy if v is not None else None,
        "synthesis_error": st.synthesis_error,
        "netlist_error": st.board.netlist_error if st.board is not None else None,
        "fmax_mhz": bb.get("fmax_mhz") if bb else None,
        "bitstream": bb["bitstream"] if bb else None,
        "board_build": bb,
        "deploy": st.deploy,
        "tool_versions": versions(),
    }


def write_report(ctx: StepContext, st: BuildState) -> dict:
    report = report_dict(ctx, st)
    write_html(report, ctx.out / "report.html")  # before report.json, the complete marker
    atomic_write_json(ctx.out / "report.json", report)
    return report


def write_stopped_report(ctx: StepContext, st: BuildState, step: str) -> dict:
    """report.json of a build stopped after `step` (--to-step): status "stopped", the step,
    and the design's figures as far as the build got (none before the graph is a dataflow graph)."""
    if st.graph is not None:
        report = report_dict(ctx, st)
    else:
        report = {"model": ctx.cfg.model, "board": ctx.cfg.board, "config": config_dict(ctx.cfg),
                  "tool_versions": versions()}
    report.update(status="stopped", stopped_after=step)
    atomic_write_json(ctx.out / "report.json", report)
    return report
