"""The synthesised netlist simulated before place and route (ECP5): a tiny network built for
the ULX3S reports verification.netlist with no mismatches; a netlist with one LUT's INIT
flipped is caught and the build is not marked verified, no bitstream; --no-netlist-sim
leaves verification.netlist out."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from _cli import bnnflow
from _tiny_nets import Layer, TinyNet, save

pytestmark = pytest.mark.sim

NETLIST = Path("board/ulx3s-85f/netlist/core_netlist.v")


def tiny_net() -> TinyNet:
    """32 bipolar inputs, 16 bipolar hidden units with BatchNorm, 4 classes: a netlist of some 400 cells."""
    rng = np.random.default_rng(5)

    def pm(shape):
        return np.where(rng.integers(0, 2, shape) > 0, 1, -1)

    bn = (rng.standard_normal(16) + 2, rng.standard_normal(16), rng.standard_normal(16) * 2, rng.random(16) * 4 + 0.5)
    return TinyNet(32, 0, [Layer(pm((16, 32)), 0, 1.0, 0, bn, 0), Layer(pm((4, 16)), 0, 1.0)])


@pytest.fixture(scope="module")
def tiny_ulx3s(tmp_path_factory):
    root = tmp_path_factory.mktemp("netlist")
    onnx_path = save(tiny_net(), root / "tiny.onnx")
    out = root / "b"
    res = bnnflow("build", onnx_path, "--board", "ulx3s-85f", "--out", out, "--verify-images", 100, "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "netlist (board/ulx3s-85f/netlist/core_netlist.v): mismatches 0 / 100 images" in res.stdout
    return onnx_path, out, json.loads((out / "report.json").read_text())


def test_netlist_simulated_before_the_bitstream(tiny_ulx3s):
    _onnx, out, rep = tiny_ulx3s
    n = rep["verification"]["netlist"]
    assert rep["status"] == "complete" and rep["board_build"]["status"] == "built"
    assert n["images"] == 100 and n["mismatches"] == 0 and n["array_equal"] is True
    assert n["netlist"] == str(NETLIST) and (out / NETLIST).is_file() and n["top"] == "bnnflow_top"
    assert "verilator" in n["tool"] and "ecp5 cell models" in n["tool"] and n["synthesis"].startswith("synth_ecp5")
    assert n["seconds"] >= n["compile_seconds"] > 0 and n["binary_bytes"] > 10_000 and n["cells"] > 50
    text = (out / NETLIST).read_text()
    assert "LUT4 #(" in text and "TRELLIS_FF" in text and "(*" not in text  # -noattr
    assert rep["board_build"]["seconds"]["netlist_sim_s"] > 0


def test_clock_searched_without_clock_mhz(tiny_ulx3s):
    """No --clock-mhz on the ULX3S: passes from 100 MHz on; the design keeps the highest clock
    whose pass met timing, and the UART divisor and the fps estimate follow it."""
    _onnx, _out, rep = tiny_ulx3s
    bb = rep["board_build"]
    passes = bb["clock_search"]
    assert passes[0]["requested_mhz"] == 100.0 and 1 <= len(passes) <= 4
    met = [p["clock_mhz"] for p in passes if p["meets_timing"]]
    assert met and bb["meets_timing"] and bb["clock_mhz"] == max(met) >= 100.0 and bb["fmax_mhz"] >= bb["clock_mhz"]
    assert bb["pll"]["achieved_mhz"] == bb["clock_mhz"] <= bb["pll"]["requested_mhz"]
    assert bb["uart"]["clks_per_bit"] == round(bb["clock_mhz"] * 1e6 / 115200)
    assert rep["estimated_fps_at_clock"]["clock_mhz"] == bb["clock_mhz"]


def flip_first_lut(path: Path) -> None:
    """Invert the output of the netlist's first LUT4 (its INIT XOR 16'hffff)."""
    text = path.read_text()
    m = re.search(r"\.INIT\(16'h([0-9a-fA-F]{4})\)", text)
    assert m, "no LUT4 INIT in the netlist"
    path.write_text(text[:m.start(1)] + f"{int(m.group(1), 16) ^ 0xFFFF:04x}" + text[m.end(1):])


def _rebuild_board(tiny_ulx3s, tmp_path, **cfg):
    from flow.pipeline.build import build
    from flow.pipeline.state import BuildConfig

    onnx_path, out, _rep = tiny_ulx3s
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    return copy, build(BuildConfig(model=str(onnx_path), out=copy, board="ulx3s-85f", clock_mhz=25.0, verify_images=100,
                                   from_step="board", progress=False, **cfg))


def test_flipped_lut_is_caught_and_blocks_the_bitstream(tiny_ulx3s, tmp_path, monkeypatch):
    """A netlist altered by hand between yosys and the simulation: mismatches, the build not
    verified, no place and route."""
    from flow.boards import ecp5

    written = ecp5.write_core_netlist

    def altered(proj, src, log):
        path, synth, seconds = written(proj, src, log)
        flip_first_lut(path)
        return path, synth, seconds

    monkeypatch.setattr(ecp5, "write_core_netlist", altered)
    copy, rep = _rebuild_board(tiny_ulx3s, tmp_path)
    n = rep["verification"]["netlist"]
    assert n["mismatches"] > 0 and n["array_equal"] is False and n["images"] == 100
    assert rep["status"] == "verification_failed"
    assert rep["verification"]["rtlsim"]["mismatches"] == 0  # the RTL itself still passes
    bb = rep["board_build"]
    assert bb["status"] == "not_built" and rep["bitstream"] is None and "netlist" in bb["reason"]
    assert not (copy / "board" / "ulx3s-85f" / "bnnflow.bit").exists()


def test_no_netlist_sim_reports_none(tiny_ulx3s, tmp_path):
    _copy, rep = _rebuild_board(tiny_ulx3s, tmp_path, netlist_sim=False)
    assert rep["status"] == "complete" and rep["board_build"]["status"] == "built"
    assert "netlist" not in rep["verification"] and "netlist_sim_s" not in rep["board_build"]["seconds"]
    assert rep["config"]["netlist_sim"] is False


def test_cells_without_a_model_are_refused():
    """A cell type with no behavioural model (missing, or a yosys blackbox such as its
    DP16KD) would float its outputs: the simulation refuses the netlist instead."""
    from flow.sim import netlist as nl

    text = ("module bnnflow_top(a, z);\n  input a;\n  output z;\n  LUT4 #(\n    .INIT(16'h0002)\n  ) \\u1  (\n"
            "    .A(a), .Z(z)\n  );\n  MULT18X18D \\m.x  (\n  );\n  DP16KD #(\n  ) ram (\n  );\nendmodule\n")
    assert nl.count_cells(text) == 3
    assert nl.unmodelled_cells(text, nl.cell_models("ecp5")) == ["MULT18X18D"]
    yosys_only = nl._inline(nl.yosys_share() / "ecp5" / "cells_sim.v")
    assert nl.unmodelled_cells(text, yosys_only) == ["DP16KD", "MULT18X18D"]


def test_netlist_that_cannot_be_simulated_is_not_verified(tiny_ulx3s, tmp_path, monkeypatch):
    """A netlist exists but its simulation cannot run (here: the LUT4 model taken away): the
    build says why, is not verified and makes no bitstream; no verification.netlist."""
    from flow.sim import netlist as nl

    models = nl.cell_models
    monkeypatch.setattr(nl, "cell_models", lambda family: nl._drop_module(models(family), "LUT4"))
    _copy, rep = _rebuild_board(tiny_ulx3s, tmp_path)
    assert rep["status"] == "verification_failed" and "netlist" not in rep["verification"]
    assert "no simulation model for ecp5: LUT4" in rep["netlist_error"]
    assert rep["board_build"]["status"] == "not_built" and rep["bitstream"] is None
