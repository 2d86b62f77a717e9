"""The check that runs the RTL exported by Vitis HLS through the stitched design's Verilator
harness (flow.sim.hls_rtl).

No Vitis HLS is installed here, so these tests exercise the check on a folder that has the
shape of an exported one: bnnflow's own RTL of the same design behind a module with the
port names and byte-padded TDATA widths that Vitis gives an `axis` interface. What is
tested is the adapter and the comparison, not Vitis' output."""
from __future__ import annotations

import pytest

from _hls_helpers import brevitas_model, lower
from _models import export, mnist_images
from flow.core.errors import UserError
from flow.sim.hls_rtl import render_wrapper, verify_vendor_rtl
from flow.ir.reference import design_streams
from flow.sim.simulate import TOP, generate_rtl

pytestmark = pytest.mark.sim


def _hls_named_top(in_bits: int, out_bits: int) -> str:
    ib, ob = -(-in_bits // 8) * 8, -(-out_bits // 8) * 8
    return f"""module hls_named_top (
    input  logic ap_clk, input logic ap_rst_n,
    input  logic [{ib - 1}:0] s_axis_TDATA, input logic s_axis_TVALID, output logic s_axis_TREADY,
    output logic [{ob - 1}:0] m_axis_TDATA, output logic m_axis_TVALID, input logic m_axis_TREADY);
    logic [{out_bits - 1}:0] y;
    {TOP} u (.ap_clk, .ap_rst_n, .s_axis_tdata(s_axis_TDATA[{in_bits - 1}:0]), .s_axis_tvalid(s_axis_TVALID),
             .s_axis_tready(s_axis_TREADY), .m_axis_tdata(y), .m_axis_tvalid(m_axis_TVALID),
             .m_axis_tready(m_axis_TREADY));
    assign m_axis_TDATA = {{{ob - out_bits}'d0, y}};
endmodule
"""


def test_vendor_shaped_rtl_is_checked_bit_exactly(tmp_path):
    graph = lower(export(brevitas_model("tfc_1w1a", seed=21), tmp_path / "m.onnx"), tmp_path / "b", 256)
    verilog = tmp_path / "verilog"
    generate_rtl(graph, verilog)
    s_in, s_out = design_streams(graph, logits=False)
    assert s_out.width % 8 != 0  # the class index is padded to a byte, as Vitis pads TDATA
    (verilog / "hls_named_top.sv").write_text(_hls_named_top(s_in.width, s_out.width))
    rec = verify_vendor_rtl(graph, verilog, tmp_path / "work", mnist_images(40), top="hls_named_top")
    assert rec["images"] == 40 and rec["mismatches"] == 0
    assert rec["cycles_per_frame"] == max(op.cycles() for op in graph.ops())


def test_wrapper_pads_to_bytes():
    text = render_wrapper("bnnflow_top", 12, 4)
    assert ".s_axis_TDATA({4'd0, s_axis_tdata})" in text
    assert "logic [7:0] m_tdata;" in text and "assign m_axis_tdata = m_tdata[3:0];" in text


def test_missing_vendor_rtl_is_a_clear_error(tmp_path):
    graph = lower(export(brevitas_model("tfc_1w1a", seed=21), tmp_path / "m.onnx"), tmp_path / "b", 256)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no Verilog"):
        verify_vendor_rtl(graph, tmp_path / "empty", tmp_path / "work", mnist_images(2))
