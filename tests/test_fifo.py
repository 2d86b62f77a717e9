"""FIFO sizing (flow.passes.fifo) and stall diagnosis: the residual shortcut depth from the ops'
dependency curves is deadlock-free and keeps the estimated rate in RTL simulation, one beat
less deadlocks and the simulation names the stalled streams; every zoo model keeps its
estimated cycles and stays exact under random output backpressure (slow tier)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _models import randomize_norms
from flow.core.errors import UserError
from flow.sim.execute import execute_numpy
from flow.frontend.export import export_qonnx
from flow.passes.fifo import diamonds, fifo_summary, path_beats_needed, size_fifos
from flow.passes.fold import apply_folding_file, fold_for_target, folding_config, insert_width_converters
from flow.frontend.load import load_qonnx
from flow.ir.graph import DataflowGraph
from flow.ops.sliding_window import window_beats_needed
from flow.sim.simulate import run_rtlsim
from flow.passes.streamline import streamline
from flow.train.zoo import build_model, list_models, model_entry


def _streamlined(name_or_model, tmp_path, shape=None, seed=4):
    if isinstance(name_or_model, str):
        model = randomize_norms(build_model(name_or_model, seed=seed), seed + 1)
        shape = tuple(model_entry(name_or_model)["input_shape"])
    else:
        model = name_or_model
    path = export_qonnx(model, tmp_path / "model.onnx", input_shape=(1, *shape))
    return model, streamline(load_qonnx(path)), path


def _hw(graph: DataflowGraph, target: int) -> DataflowGraph:
    return size_fifos(insert_width_converters(fold_for_target(graph, target)))


def _small_resnet(seed: int = 7):
    """A random residual network: 8 channels, one residual block, on 12x12 images."""
    import torch

    cls = type(build_model("qfx-resnet"))
    torch.manual_seed(seed)
    net = cls(channels=8, blocks=1)
    net.fc = type(net.fc)(8 * 3 * 3, 10)
    return randomize_norms(net, seed + 1).eval()


def test_window_curve_is_the_last_beat_a_tap_reads():
    # 4x4 image, 1 channel fold, 3x3 window, pad 1: the first window's last tap reads pixel (1, 1)
    need = window_beats_needed(4, 4, 1, 3, 1, 1)
    assert len(need) == 16 * 9 and need[8] == 6 and need[-1] == 16
    assert np.all(np.diff(need) >= 0)


def test_qfx_resnet_sizing_is_small_and_fast(tmp_path):
    import time

    _, g, _ = _streamlined("qfx-resnet", tmp_path)
    hw = insert_width_converters(fold_for_target(g, 8192))
    t0 = time.monotonic()
    sized = size_fifos(hw)
    assert time.monotonic() - t0 < 2.0
    assert len(diamonds(sized)) == 2
    summary = fifo_summary(sized)
    for row in summary["fifos"]:
        assert 1 <= row["min_depth"] <= row["depth"] < row["frame_depth"] / 2, row
    assert summary["total_bits"] < summary["frame_sized_bits"] / 2
    # the long branch of the first block needs one image row and a pixel before its first output
    d = diamonds(sized)[0]
    assert path_beats_needed(d.long)[0] == 14 + 2


def test_fifo_depths_in_folding_file_round_trip_and_are_checked(tmp_path):
    _, g, _ = _streamlined("qfx-resnet", tmp_path)
    sized = _hw(g, 8192)
    cfg = folding_config(sized)
    dups = [k for k in cfg if k.startswith("DuplicateStreams_hls_")]
    assert len(dups) == 2 and all(cfg[k]["outFIFODepths"][0] == 2 for k in dups)
    depths = [cfg[k]["outFIFODepths"][1] for k in dups]
    assert depths == [r["depth"] for r in fifo_summary(sized)["fifos"]]
    # a FINN file's depths are taken, checked against the deadlock bound
    cfg[dups[0]]["outFIFODepths"][1] = depths[0] + 5
    (tmp_path / "f.json").write_text(json.dumps(cfg))
    again = size_fifos(insert_width_converters(apply_folding_file(g, tmp_path / "f.json")))
    assert fifo_summary(again)["fifos"][0]["depth"] == depths[0] + 5
    cfg[dups[0]]["outFIFODepths"][1] = 3
    (tmp_path / "f.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="FIFO depth 3 of StreamFIFO_0 .* can deadlock"):
        size_fifos(insert_width_converters(apply_folding_file(g, tmp_path / "f.json")))
    cfg[dups[0]]["outFIFODepths"] = "deep"
    (tmp_path / "f.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="outFIFODepths must be a list of positive integers"):
        apply_folding_file(g, tmp_path / "f.json")


def test_random_residual_sized_depth_runs_exactly_one_less_deadlocks(tmp_path):
    net = _small_resnet()
    _, g, _ = _streamlined(net, tmp_path, shape=(1, 12, 12))
    hw = _hw(g, 512)
    fifo = next(o for o in hw.ops() if o.op_type == "StreamFIFO")
    assert fifo.attr("MinDepth") < fifo.depth() < fifo.frame_depth()
    images = np.random.default_rng(2).integers(0, 256, (10, 1, 12, 12), dtype=np.uint8)
    want = execute_numpy(hw, images)
    est = max(o.cycles() for o in hw.ops())
    y, stats = run_rtlsim(hw, tmp_path / "b", images)
    assert int(np.sum(y != want)) == 0
    assert abs(stats["cycles_per_frame"] - est) <= 0.02 * est, (stats["cycles_per_frame"], est)
    y, _ = run_rtlsim(hw, tmp_path / "b", images, stall_seed=5)
    assert int(np.sum(y != want)) == 0
    _assert_debug_ports_only_in_simulation(tmp_path / "b" / "rtl")
    fifo.set_attr("Depth", fifo.attr("MinDepth") - 1)
    with pytest.raises(UserError, match=r"deadlock after \d+ cycles: stream .*StreamFIFO_0.* full "
                                        r"\(valid=1, ready=0 for \d+ cycles\)"):
        run_rtlsim(hw, tmp_path / "b", images, watchdog=20_000)


def _assert_debug_ports_only_in_simulation(rtl_dir):
    """The stream handshake ports exist only under BNNFLOW_SIM_DEBUG (never in synthesis),
    and the stream names file lists one name per port bit."""
    text = (rtl_dir / "bnnflow_top.sv").read_text().splitlines()
    inside = False
    for line in text:
        if line.startswith("`ifdef BNNFLOW_SIM_DEBUG"):
            inside = True
        elif line.startswith("`endif"):
            inside = False
        elif "dbg_" in line and not line.lstrip().startswith("//"):
            assert inside, line
    names = (rtl_dir / "bnnflow_top_streams.txt").read_text().splitlines()
    width = next(line for line in text if "output logic" in line and "dbg_tvalid" in line)
    assert f"[{len(names) - 1}:0]" in width
    assert names[0].startswith("in -> ") and any(n.startswith("Duplicate_0.m1 -> ") for n in names)


ZOO_TARGETS = {"cnv-w1a1": 32768, "cnv-w1a2": 32768, "cnv-w2a2": 32768, "lfc-w1a1": 8192, "lfc-w1a2": 8192}


def _build(tmp_path, path, *args):
    from flow.cli import main

    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--verify-images", "8", *args]) == 0
    return out, json.loads((out / "report.json").read_text())


def _cycles_and_backpressure(name, tmp_path):
    _, _, path = _streamlined(name, tmp_path)
    out, report = _build(tmp_path, path, "--target-cycles", str(ZOO_TARGETS.get(name, 1024)))
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est, (name, meas, est)
    from flow.pipeline.build import load_build

    g = load_build(out)
    images = np.random.default_rng(3).integers(0, 256, (6, *model_entry(name)["input_shape"]), dtype=np.uint8)
    y, _ = run_rtlsim(g, out, images, stall_seed=11)
    assert int(np.sum(y != execute_numpy(g, images))) == 0


def test_residual_zoo_model_cycles_and_backpressure(tmp_path):
    _cycles_and_backpressure("qfx-resnet", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(list_models()) - {"qfx-resnet"}))
def test_zoo_model_cycles_and_backpressure(name, tmp_path):
    _cycles_and_backpressure(name, tmp_path)


@pytest.mark.parametrize("name", ["tfc-w1a1", pytest.param("sfc-w1a1", marks=pytest.mark.slow),
                                  pytest.param("lfc-w1a1", marks=pytest.mark.slow),
                                  pytest.param("cnv-w1a1", marks=pytest.mark.slow)])
def test_target_fps_is_met_in_rtl(name, tmp_path):
    fps = {"tfc-w1a1": 1_000_000, "sfc-w1a1": 400_000, "lfc-w1a1": 50_000, "cnv-w1a1": 3_000}[name]
    _, _, path = _streamlined(name, tmp_path)
    _, report = _build(tmp_path, path, "--target-fps", str(fps))
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    measured_fps = report["config"]["clock_mhz"] * 1e6 / report["measured_cycles_per_frame"]
    assert measured_fps >= fps, (name, measured_fps, fps)
    assert report["resources"]["LUT"] > 0
