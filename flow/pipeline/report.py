"""report.json: the machine-readable record of a build (and report.html, the same for people)."""
from __future__ import annotations


def layer_rows(graph) -> list[dict]:
    rows = []
    for op in graph.ops():
        rows.append({**op.describe(), "cycles": op.cycles(), "resources": op.resources()})
    return rows


def _verified(r: dict) -> bool:
    """The engines agree: the verification record passes (counted from its mismatches), and
    so did the vendor RTL when it ran."""
    from flow.sim.verify import record_problem

    hls_rtl = r.get("hls_rtl_verification")
    return record_problem(r.get("verification")) is None and (hls_rtl is None or hls_rtl["mismatches"] == 0)


def status_of(st) -> str:
    """complete (verified), unverified (no verification for this design: --unverified) or
    verification_failed."""
    if _verified(st.report):
        return "complete"
    if st.report.get("verification") is None and st.cfg.unverified:
        return "unverified"
    return "verification_failed"


def write_report(st) -> dict:
    from flow.pipeline.build import config_dict
    from flow.passes.fifo import fifo_summary
    from flow.sim.simulate import design_hash
    from flow.core.tools import versions

    g = st.graph
    layers = layer_rows(g)
    for row in layers:  # per-layer figures of later steps (e.g. yosys resources of the board step)
        row.update(st.report.get("layer_extra", {}).get(row["name"], {}))
    totals = {k: sum(r["resources"][k] for r in layers) for k in ("LUT", "FF", "BRAM", "DSP")}
    est = max(r["cycles"] for r in layers)
    measured = st.report.get("measured_cycles_per_frame")
    clock = st.cfg.clock_mhz
    report = {
        "status": status_of(st),
        "model": st.cfg.model,
        "board": st.cfg.board,
        "design_hash": design_hash(g),
        "graph_hash": g.fingerprint(),  # the dataflow.onnx this report describes
        "config": config_dict(st.cfg),
        "input": g.meta("input"),
        "output": {**g.meta("output"), "top1": "argmax of integer logits, ties -> lowest index"}
        if g.meta("output").get("kind", "class") == "class" else g.meta("output"),
        "layers": layers,
        "fifo": fifo_summary(g),
        "estimated_cycles_per_frame": est,
        "measured_cycles_per_frame": measured,
        "cycles_error_pct": (abs(measured - est) / est * 100.0) if measured else None,
        "first_frame_latency_cycles": st.report.get("first_frame_latency_cycles"),
        "rtlsim": st.report.get("rtlsim_stats"),
        "estimated_fps_at_clock": {"clock_mhz": clock, "fps": clock * 1e6 / est},
        "verification": st.report.get("verification"),
        "hls_rtl_verification": st.report.get("hls_rtl_verification"),
        "accuracy": st.report.get("accuracy"),
        "resources": st.report.get("synthesis") or {"tool": "bnnflow analytic estimate", **totals},
        "resources_estimate": {"tool": "bnnflow analytic estimate", **totals},
        "synthesis_error": st.report.get("synthesis_error"),
        "fmax_mhz": st.report.get("fmax_mhz"),
        "bitstream": st.report.get("bitstream"),
        "board_build": st.report.get("board_build"),
        "deploy": st.report.get("deploy"),
        "tool_versions": versions(),
    }
    from flow.pipeline.report_html import write_html

    from flow.core.builddir import atomic_write_json

    write_html(report, st.cfg.out / "report.html")  # before report.json, the complete marker
    atomic_write_json(st.cfg.out / "report.json", report)
    st.report = report
    return report
