"""bnn_popcount's adder tree equals $countones for every width a unit instantiates, proven by
yosys's SAT solver on a miter of the two. The whole-design simulations (flow/sim/rtlsim.py)
count with $countones (BNNFLOW_SIM_COUNTONES, rtl/common/bnn_popcount.sv); this proof carries
their results over to the tree that synthesis builds. The engine tests (cocotb) simulate the
tree itself."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from flow.core import tools
from flow.sim.rtlsim import VERILATOR_FLAGS

RTL = Path(__file__).resolve().parent.parent / "rtl"
WIDTHS = range(1, 33)  # bnn_mvu counts at most PC_GROUP = 32 lanes in one tree

REFERENCE = """module popcount_ref #(parameter int N = 8, parameter int CW = $clog2(N + 1)) (
    input logic [N-1:0] bits,
    output logic [CW-1:0] count
);
    assign count = CW'($countones(bits));
endmodule
"""


def _prove(work: Path, tree: str, widths) -> subprocess.CompletedProcess:
    """yosys: for each width N, a miter of bnn_popcount (source `tree`) and $countones, proven with SAT."""
    (work / "bnn_popcount.sv").write_text(tree)
    (work / "popcount_ref.sv").write_text(REFERENCE)
    steps = []
    for n in widths:
        cw = n.bit_length()  # $clog2(N + 1)
        steps += ["design -reset", "read_verilog -sv bnn_popcount.sv popcount_ref.sv",
                  f"chparam -set N {n} -set CW {cw} bnn_popcount popcount_ref", "hierarchy -check", "proc", "flatten",
                  "miter -equiv -flatten -make_assert bnn_popcount popcount_ref miter", "hierarchy -top miter",
                  "sat -verify -prove-asserts miter"]
    return subprocess.run([*tools.yosys_cmd(), "-p", "; ".join(steps)], capture_output=True, text=True, cwd=work)


def test_tree_equals_countones_for_every_width(tmp_path):
    res = _prove(tmp_path, (RTL / "common" / "bnn_popcount.sv").read_text(), WIDTHS)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert res.stdout.count("SAT proof finished - no model found: SUCCESS!") == len(WIDTHS)


def test_a_wrong_tree_fails_the_proof(tmp_path):
    tree = (RTL / "common" / "bnn_popcount.sv").read_text()
    wrong = tree.replace("b[0] ^ b[1] ^ b[2]", "b[0] ^ b[1] | b[2]")
    assert wrong != tree
    res = _prove(tmp_path, wrong, [7])
    assert res.returncode != 0 and "model found: FAIL!" in res.stdout


def test_the_proof_covers_every_tree_the_units_build():
    """Only bnn_mvu instantiates bnn_popcount, with at most PC_GROUP = 32 lanes per tree, and the
    simulator builds are the ones that count with $countones."""
    users = sorted(p.name for p in RTL.rglob("*.sv") if re.search(r"\bbnn_popcount\s*#", p.read_text())
                   and p.name != "bnn_popcount.sv")
    assert users == ["bnn_mvu.sv"]
    assert re.search(r"localparam int PC_GROUP = 32;", (RTL / "mvu_binary" / "bnn_mvu.sv").read_text())
    assert max(WIDTHS) == 32
    assert "+define+BNNFLOW_SIM_COUNTONES" in VERILATOR_FLAGS
