"""Verify the RTL that Vitis HLS exports from the generated C++ with the stitched design's
test bench: the compiled Verilator harness of flow.sim.rtlsim, the same images and the same
numpy reference.

Vitis names the AXI-Stream ports of `bnnflow_top` `s_axis_TDATA/TVALID/TREADY` and
`m_axis_TDATA/...`, with TDATA padded to whole bytes. A generated wrapper gives them the
names and widths of the RTL top, so the harness drives both designs the same way.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from flow.codegen.hlsgen import TOP
from flow.core.errors import UserError
from flow.core.wire import pack_beats, unpack_beats
from flow.ir.graph import DataflowGraph
from flow.ir.reference import count_mismatches, design_streams, execute_numpy, frame_outputs, to_wire
from flow.sim.rtlsim import RTLSim

WRAPPER = "bnnflow_hls_wrap"


def vendor_rtl_dir(hls_dir: Path) -> Path:
    """Where `csynth_design` of run_hls.tcl leaves the Verilog of the top."""
    return Path(hls_dir) / f"{TOP}_hls" / "sol1" / "syn" / "verilog"


def _bytes_bits(bits: int) -> int:
    return 8 * max(1, -(-bits // 8))


def render_wrapper(top: str, in_bits: int, out_bits: int) -> str:
    """SystemVerilog adapter: RTL-top port names and widths around the HLS top `top`."""
    ib, ob = _bytes_bits(in_bits), _bytes_bits(out_bits)
    pad_in = f"{{{ib - in_bits}'d0, s_axis_tdata}}" if ib > in_bits else "s_axis_tdata"
    return f"""// {WRAPPER}: the AXI-Stream ports of the Vitis HLS top {top} ({ib}-bit TDATA in,
// {ob}-bit TDATA out) under the names and widths of the bnnflow RTL top.
module {WRAPPER} (
    input  logic                 ap_clk,
    input  logic                 ap_rst_n,
    input  logic [{in_bits - 1}:0] s_axis_tdata,
    input  logic                 s_axis_tvalid,
    output logic                 s_axis_tready,
    output logic [{out_bits - 1}:0] m_axis_tdata,
    output logic                 m_axis_tvalid,
    input  logic                 m_axis_tready
);
    logic [{ob - 1}:0] m_tdata;
    {top} u_hls (
        .ap_clk(ap_clk),
        .ap_rst_n(ap_rst_n),
        .s_axis_TDATA({pad_in}),
        .s_axis_TVALID(s_axis_tvalid),
        .s_axis_TREADY(s_axis_tready),
        .m_axis_TDATA(m_tdata),
        .m_axis_TVALID(m_axis_tvalid),
        .m_axis_TREADY(m_axis_tready)
    );
    assign m_axis_tdata = m_tdata[{out_bits - 1}:0];
endmodule
"""


def verify_vendor_rtl(graph: DataflowGraph, verilog_dir: Path, work_dir: Path, images: np.ndarray,
                      top: str | None = None) -> dict:
    """Stream `images` through the Verilog in `verilog_dir` (the HLS top `top`) in Verilator;
    return {"images", "mismatches", "cycles_per_frame", ...} against the numpy reference."""
    verilog_dir = Path(verilog_dir)
    sources = sorted(p.name for p in verilog_dir.iterdir() if p.suffix in (".v", ".sv"))
    if not sources:
        raise UserError(f"{verilog_dir} holds no Verilog; run `vitis_hls -f run_hls.tcl` in the HLS folder first")
    work_dir = Path(work_dir)
    rtl = work_dir / "rtl"
    if rtl.exists():
        shutil.rmtree(rtl)
    shutil.copytree(verilog_dir, rtl)  # sources and the ROM data files they read at run time
    s_in, s_out = design_streams(graph, logits=False)
    (rtl / f"{WRAPPER}.sv").write_text(render_wrapper(top or TOP, s_in.width, s_out.width))
    sim = RTLSim(rtl, WRAPPER, s_in.width, s_out.width, s_out.beats, s_in.beats, work_dir / "sim",
                 files=[*sources, f"{WRAPPER}.sv"])
    sim.build()
    x = to_wire(graph, images)
    out_beats, stats = sim.run(pack_beats(x, s_in.lanes, s_in.bits))
    got = unpack_beats(out_beats, s_out.lanes, s_out.bits).reshape(len(x), -1)[:, : s_out.elems].astype(np.int64)
    want = execute_numpy(graph, images)
    return {"images": int(len(images)), "mismatches": count_mismatches(frame_outputs(graph, got, False), want),
            "reference": "numpy",
            "cycles_per_frame": stats.get("cycles_per_frame"), "latency_cycles": stats.get("latency_cycles"),
            "rtl": str(verilog_dir)}
