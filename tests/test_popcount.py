"""bnn_popcount against a Python popcount, through Verilator: every lane count 1..40 (the bnn_mvu
group of 32 among them) and a spread of wider ones up to 200, odd and even, both tree
shapes (LUT_INPUTS 6: the compressor tree of counters; 4: the ECP5 adder tree), the count width
the engines use (clog2(N+1)) and a wider and a narrower one. One simulator build (the flow's
Verilator harness, flow.sim.rtlsim) holds every instance side by side behind one stream: a beat
carries every instance's x and w, the answer beat every count; built without
BNNFLOW_SIM_COUNTONES, so the trees are simulated, not $countones. Up to 12 lanes every match
pattern is applied, wider instances get random patterns of every density, all lanes and none
among them. Also: both shapes lint clean."""
from __future__ import annotations

import math
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flow.core import tools
from flow.ir.registry import engines
from flow.sim import rtlsim
from flow.sim.rtlsim import RTLSim

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.sim

LANES = [*range(1, 41), 47, 63, 64, 65, 97, 128, 129, 196, 200]
STEPS = 4096  # every pattern of up to 12 lanes


def popcount_sources() -> list[Path]:
    """bnn_popcount and the modules under it (the binary MVU engine's popcount files)."""
    return [REPO / "rtl" / s for s in engines()["bnn_mvu"].engine.sources if Path(s).name.startswith("bnn_popcount")]


def cases() -> list[tuple[int, int, int]]:
    """(N, CW, LUT_INPUTS): both shapes at every lane count, plus a count wider and one narrower than needed."""
    out = [(n, math.ceil(math.log2(n + 1)), lut) for lut in (6, 4) for n in LANES]
    return out + [(32, 8, 6), (32, 8, 4), (63, 4, 6), (63, 4, 4)]


def wrapper(cs: list[tuple[int, int, int]]) -> str:
    """tb_popcount: s_axis beat = {w_all, x_all}, m_axis beat = count_all (one register stage);
    one bnn_popcount per case on its slices."""
    xw, cw = sum(n for n, _, _ in cs), sum(c for _, c, _ in cs)
    body, xo, co = [], 0, 0
    for i, (n, c, lut) in enumerate(cs):
        body.append(f"    bnn_popcount #(.N({n}), .CW({c}), .LUT_INPUTS({lut})) u{i} (.x(s_axis_tdata[{xo} +: {n}]), "
                    f".w(s_axis_tdata[{xw + xo} +: {n}]), .count(count_all[{co} +: {c}]));")
        xo, co = xo + n, co + c
    return f"""// bnn_popcount instances under test (written by tests/test_popcount.py)
module tb_popcount (
    input  logic ap_clk,
    input  logic ap_rst_n,
    input  logic [{2 * xw - 1}:0] s_axis_tdata,
    input  logic s_axis_tvalid,
    output logic s_axis_tready,
    output logic [{cw - 1}:0] m_axis_tdata,
    output logic m_axis_tvalid,
    input  logic m_axis_tready
);
    logic [{cw - 1}:0] count_all;
{chr(10).join(body)}
    assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) m_axis_tvalid <= 1'b0;
        else if (s_axis_tready) m_axis_tvalid <= s_axis_tvalid;
        if (s_axis_tready) m_axis_tdata <= count_all;
    end
endmodule
"""


def match_pattern(rng: random.Random, n: int, step: int) -> int:
    """The lanes that agree at this step: every pattern in turn where 2^n <= STEPS, else random."""
    full = (1 << n) - 1
    if (1 << n) <= STEPS:
        return step % (1 << n)
    mode = step % 5
    if mode == 0:
        return full if step % 10 == 0 else 0
    if mode == 1:
        return rng.getrandbits(n)
    density = rng.random()
    m = sum(1 << i for i in range(n) if rng.random() < density)
    return m if mode != 4 else full ^ m


def stimulus(cs, seed: int = 5) -> tuple[list[int], list[list[int]]]:
    """(input beats {w_all, x_all}, the expected count of every case at every step)."""
    rng = random.Random(seed)
    xw = sum(n for n, _, _ in cs)
    beats, expected = [], []
    for step in range(STEPS):
        x_all = w_all = off = 0
        want = []
        for n, cw, _ in cs:
            m = match_pattern(rng, n, step)
            x = rng.getrandbits(n)
            x_all |= x << off
            w_all |= (x ^ m ^ ((1 << n) - 1)) << off  # agrees with x exactly where m is 1
            want.append(bin(m).count("1") % (1 << cw))
            off += n
        beats.append(x_all | (w_all << xw))
        expected.append(want)
    return beats, expected


def test_popcount_matches_python(tmp_path, monkeypatch):
    # the harness counts with $countones in whole-design builds (BNNFLOW_SIM_COUNTONES); here the trees
    flags = tuple(f for f in rtlsim.VERILATOR_FLAGS if "BNNFLOW_SIM_COUNTONES" not in f)
    assert len(flags) == len(rtlsim.VERILATOR_FLAGS) - 1
    monkeypatch.setattr(rtlsim, "VERILATOR_FLAGS", flags)
    cs = cases()
    (tmp_path / "tb_popcount.sv").write_text(wrapper(cs))
    srcs = popcount_sources()
    for s in srcs:
        (tmp_path / s.name).write_bytes(s.read_bytes())
    xw, cw = sum(n for n, _, _ in cs), sum(c for _, c, _ in cs)
    sim = RTLSim(tmp_path, "tb_popcount", 2 * xw, cw, 1, 1, tmp_path / "cache",
                 files=["tb_popcount.sv", *(s.name for s in srcs)], cxx_opt="-O0")  # the compile is the cost
    beats, expected = stimulus(cs)
    out, _ = sim.run(np.array(beats, dtype=object), stall_seed=3)
    assert out.shape[0] == STEPS
    bad = []
    for step, (row, want) in enumerate(zip(out, expected)):
        got_all, off = int.from_bytes(row.tobytes(), "little"), 0
        for (n, c, lut), w in zip(cs, want):
            got = (got_all >> off) & ((1 << c) - 1)
            if got != w:
                bad.append(f"N={n} CW={c} LUT_INPUTS={lut} step {step}: got {got}, expected {w}")
            off += c
    assert not bad, f"{len(bad)} wrong counts:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("lut", [6, 4])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 32, 33, 196])
def test_popcount_lint_clean(n, lut):
    cmd = [tools.verilator_bin(), "--lint-only", "-Wall", "--top-module", "bnn_popcount", f"-GN={n}",
           f"-GLUT_INPUTS={lut}", *map(str, popcount_sources())]
    res = subprocess.run(cmd, capture_output=True, text=True, env=tools.tool_env())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "%Warning" not in res.stderr, res.stderr
