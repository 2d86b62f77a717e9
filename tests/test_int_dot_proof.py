"""int_dot's adder tree (each level only as wide as its sums can be, rtl/mvu_int/int_dot.sv)
equals the plain sum of the lane products mod 2**ACC_BITS, for every weight realisation and
input signedness, at the extremes included: a miter of the two proven by yosys's SAT solver.
The engine simulations (tests/test_cocotb_engines.py) draw random values, which rarely reach
the widest sums; this proof covers every input."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flow.core import tools

RTL = Path(__file__).resolve().parent.parent / "rtl"

REFERENCE = """module int_dot_ref #(
    parameter int SIMD = 2, parameter int IN_BITS = 4, parameter int IN_SIGNED = 1, parameter int W_MODE = 0,
    parameter int WB = 1, parameter int W_BITS = 4, parameter int K = 2, parameter int SB = 3,
    parameter int ACC_BITS = 12
) (
    input  logic [SIMD*IN_BITS-1:0] x,
    input  logic [SIMD*WB-1:0]      w,
    output logic [ACC_BITS-1:0]     dot
);
    logic signed [ACC_BITS-1:0] prod [SIMD];
    for (genvar i = 0; i < SIMD; i++) begin : g_lane
        wire [IN_BITS-1:0] v = x[i*IN_BITS +: IN_BITS];
        wire signed [ACC_BITS-1:0] xe = (IN_SIGNED != 0) ? ACC_BITS'($signed(v)) : ACC_BITS'($unsigned(v));
        lane_product #(.W_MODE(W_MODE), .WB(WB), .PW(ACC_BITS), .K(K), .SB(SB)) u_prod (
            .x(xe), .w(w[i*WB +: WB]), .p(prod[i]));
    end
    always_comb begin
        logic signed [ACC_BITS-1:0] s;
        s = '0;
        for (int i = 0; i < SIMD; i++) s = s + prod[i];
        dot = s;
    end
endmodule
"""

# (SIMD, IN_BITS, IN_SIGNED, W_MODE, W_BITS, K, SB, ACC_BITS): odd and even lane counts, each
# weight realisation, ACC_BITS above the tree's widths and below them (wrapping)
CASES = [
    (7, 3, 1, 0, 1, 1, 1, 8), (8, 2, 0, 0, 1, 1, 1, 7), (5, 3, 0, 0, 1, 1, 1, 4),
    (6, 2, 1, 1, 2, 2, 2, 12), (3, 3, 0, 1, 2, 3, 1, 9), (4, 2, 1, 1, 2, 1, 2, 6),
    (5, 3, 1, 2, 3, 2, 2, 10), (4, 3, 0, 2, 3, 2, 2, 5),
]


def weight_bits(mode: int, w_bits: int, k: int, sb: int) -> int:
    return 1 if mode == 0 else k * (2 + sb) if mode == 1 else w_bits


def _prove(work: Path, dot_text: str, cases) -> subprocess.CompletedProcess:
    (work / "int_dot.sv").write_text(dot_text)
    (work / "lane_product.sv").write_text((RTL / "common" / "lane_product.sv").read_text())
    (work / "int_dot_ref.sv").write_text(REFERENCE)
    steps = []
    for n, (simd, ib, sg, mode, wbits, k, sb, acc) in enumerate(cases):
        wb = weight_bits(mode, wbits, k, sb)
        params = (f"#(.SIMD({simd}), .IN_BITS({ib}), .IN_SIGNED({sg}), .W_MODE({mode}), .WB({wb}), "
                  f".W_BITS({wbits}), .K({k}), .SB({sb}), .ACC_BITS({acc}))")
        ports = f"(input logic [{simd * ib - 1}:0] x, input logic [{simd * wb - 1}:0] w, output logic [{acc - 1}:0] dot)"
        (work / f"case{n}.sv").write_text(
            f"module dut{n} {ports}; int_dot {params} u (.x, .w, .dot); endmodule\n"
            f"module ref{n} {ports}; int_dot_ref {params} u (.x, .w, .dot); endmodule\n")
        steps += ["design -reset", f"read_verilog -sv int_dot.sv lane_product.sv int_dot_ref.sv case{n}.sv",
                  "hierarchy -check", "proc", "flatten",
                  f"miter -equiv -flatten -make_assert dut{n} ref{n} miter", "hierarchy -top miter",
                  "sat -verify -prove-asserts miter"]
    return subprocess.run([*tools.yosys_cmd(), "-p", "; ".join(steps)], capture_output=True, text=True, cwd=work)


def test_tree_equals_the_plain_sum(tmp_path):
    res = _prove(tmp_path, (RTL / "mvu_int" / "int_dot.sv").read_text(), CASES)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert res.stdout.count("SAT proof finished - no model found: SUCCESS!") == len(CASES)


@pytest.mark.parametrize("right,wrong", [
    ("? XB + 1 ", "? XB "),                      # a product width one bit short
    ("WO'(a) + WO'(b)", "WO'(a) + WO'(a)"),     # a wrong operand
])
def test_a_wrong_tree_fails_the_proof(tmp_path, right, wrong):
    text = (RTL / "mvu_int" / "int_dot.sv").read_text()
    assert right in text
    res = _prove(tmp_path, text.replace(right, wrong, 1), CASES[:3])
    assert res.returncode != 0 and "model found: FAIL!" in res.stdout
