"""bnn_popcount's trees (LUT_INPUTS 6: the compressor tree; 4: the ECP5 adder tree) equal
$countones of the lanes where x and w agree, for every width a unit instantiates, proven by
yosys's SAT solver on a miter of the two. The whole-design simulations (flow/sim/rtlsim.py)
count with $countones (BNNFLOW_SIM_COUNTONES, rtl/common/bnn_popcount.sv); this proof carries
their results over to the trees that synthesis builds. The engine tests (cocotb,
tests/test_popcount.py) simulate the trees themselves."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from flow.core import tools
from flow.ir.registry import engines
from flow.sim.rtlsim import VERILATOR_FLAGS

RTL = Path(__file__).resolve().parent.parent / "rtl"
WIDTHS = range(1, 33)  # bnn_mvu counts at most PC_GROUP = 32 lanes in one tree

REFERENCE = """module popcount_ref #(parameter int N = 8, parameter int CW = $clog2(N + 1)) (
    input logic [N-1:0] x,
    input logic [N-1:0] w,
    output logic [CW-1:0] count
);
    logic [N-1:0] m;
    assign m = ~(x ^ w);
    assign count = CW'($countones(m));
endmodule
"""


def tree_sources() -> dict[str, str]:
    """bnn_popcount's files (the binary MVU engine's popcount sources): name -> text."""
    paths = [RTL / s for s in engines()["bnn_mvu"].engine.sources if Path(s).name.startswith("bnn_popcount")]
    return {p.name: p.read_text() for p in paths}


def _prove(work: Path, sources: dict[str, str], widths, lut: int) -> subprocess.CompletedProcess:
    """yosys: for each width N, a miter of bnn_popcount (LUT_INPUTS = lut) and $countones, proven
    with SAT. The trees' cells are kept hierarchies for synthesis: flattened here."""
    for name, text in sources.items():
        (work / name).write_text(text)
    (work / "popcount_ref.sv").write_text(REFERENCE)
    steps = []
    for n in widths:
        cw = n.bit_length()  # $clog2(N + 1)
        steps += ["design -reset", f"read_verilog -sv {' '.join(sources)} popcount_ref.sv",
                  f"chparam -set N {n} -set CW {cw} bnn_popcount popcount_ref",
                  f"chparam -set LUT_INPUTS {lut} bnn_popcount", "hierarchy -check", "proc",
                  "setattr -mod -unset keep_hierarchy", "flatten",
                  "miter -equiv -flatten -make_assert bnn_popcount popcount_ref miter", "hierarchy -top miter",
                  "sat -verify -prove-asserts miter"]
    return subprocess.run([*tools.yosys_cmd(), "-p", "; ".join(steps)], capture_output=True, text=True, cwd=work)


@pytest.mark.parametrize("lut", [6, 4])
def test_tree_equals_countones_for_every_width(tmp_path, lut):
    res = _prove(tmp_path, tree_sources(), WIDTHS, lut)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert res.stdout.count("SAT proof finished - no model found: SUCCESS!") == len(WIDTHS)


@pytest.mark.parametrize("lut,name,right,wrong", [
    (6, "bnn_popcount_leaf.sv", "b[0] ^ b[1] ^ b[2]", "b[0] ^ b[1] | b[2]"),
    (6, "bnn_popcount_counter.sv", "{3'b0, o[1]}", "{3'b0, o[1] & o[2]}"),
    (4, "bnn_popcount_fa.sv", "assign s = a ^ b ^ c;", "assign s = a ^ b | c;"),
])
def test_a_wrong_tree_fails_the_proof(tmp_path, lut, name, right, wrong):
    sources = tree_sources()
    assert right in sources[name]
    sources[name] = sources[name].replace(right, wrong)
    res = _prove(tmp_path, sources, [29], lut)
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
