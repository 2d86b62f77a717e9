"""Multi-bit and convolutional networks through the whole flow: the RTL simulation of
the generated design equals the numpy reference and PyTorch, and its measured cycles per
frame equal the estimate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _models import export, randomize_norms
from flow.cli import main

pytestmark = pytest.mark.sim


def _brevitas(name, seed):
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    return randomize_norms(model, seed + 1)


def _build_and_check(tmp_path, name, shape, target, images):
    model = _brevitas(name, seed=3)
    path = export(model, tmp_path / f"{name}.onnx", shape)
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", str(target),
                 "--verify-images", str(images)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["rtlsim"] == {**report["verification"]["rtlsim"], "mismatches": 0,
                                                 "images": images}
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (images, *shape), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--engine", "rtlsim",
                 "--output", str(tmp_path / "y.npy")]) == 0
    with torch.no_grad():
        want = model(torch.from_numpy(x).float() / 255.0).numpy().argmax(axis=1)
    assert np.array_equal(np.load(tmp_path / "y.npy"), want)
    return report


def test_tfc_w2a2_rtl(tmp_path):
    report = _build_and_check(tmp_path, "tfc_2w2a", (1, 28, 28), 512, 60)
    ops = {l["op"] for l in report["layers"]}
    assert {"IntMVU", "FixedScale"} <= ops and report["resources"]["DSP"] == 0


@pytest.mark.slow
def test_cnv_w1a1_rtl(tmp_path):
    report = _build_and_check(tmp_path, "cnv_1w1a", (3, 32, 32), 32768, 20)
    assert report["measured_cycles_per_frame"] == 32768


@pytest.mark.slow
def test_cnv_w2a2_rtl(tmp_path):
    _build_and_check(tmp_path, "cnv_2w2a", (3, 32, 32), 32768, 10)


DATA = __import__("pathlib").Path(__file__).parent / "data"


def test_finn_tfc_folding_gives_finn_throughput(tmp_path):
    """FINN's BNN-PYNQ folding for TFC-w1a1 (64 cycles/frame, 1.56 M frames/s at 100 MHz)."""
    path = export(_brevitas("tfc_1w1a", seed=9), tmp_path / "tfc.onnx")
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--folding",
                 str(DATA / "finn_tfc_w1a1_folding.json"), "--verify-images", "200"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    mvus = [l for l in report["layers"] if l["op"] == "BinaryMVU"]
    assert [(l["pe"], l["simd"]) for l in mvus] == [(16, 49), (8, 8), (8, 8), (10, 8)]
    assert abs(report["measured_cycles_per_frame"] - 64) <= 0.02 * 64


@pytest.mark.slow
def test_finn_cnv_folding_gives_finn_throughput(tmp_path):
    """FINN's folding for CNV-w1a1: 32,768 cycles/frame (3,052 frames/s at 100 MHz)."""
    path = export(_brevitas("cnv_1w1a", seed=9), tmp_path / "cnv.onnx", (3, 32, 32))
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--folding",
                 str(DATA / "finn_cnv_w1a1_folding.json"), "--verify-images", "8"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    assert abs(report["measured_cycles_per_frame"] - 32768) <= 0.02 * 32768


def test_written_folding_reproduces_the_design(tmp_path):
    """The build writes its folding in FINN's format; reading it back gives the same design."""
    path = export(_brevitas("tfc_1w1a", seed=2), tmp_path / "tfc.onnx")
    from flow.pipeline.build import load_build
    from flow.passes.fold import apply_folding_file, folding_config
    from flow.frontend.load import load_qonnx
    from flow.passes.streamline import streamline

    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", "128",
                 "--verify-images", "10"]) == 0
    written = json.loads((out / "folding_config.json").read_text())
    assert {"MVAU_hls_0", "MVAU_hls_3", "Thresholding_hls_0", "LabelSelect_hls_0"} <= set(written)
    again = apply_folding_file(streamline(load_qonnx(path)), out / "folding_config.json")
    assert folding_config(again) == folding_config(load_build(out))


@pytest.fixture(scope="module")
def synth_build(tmp_path_factory):
    """A small MLP built with --synth xcup: (build dir, report)."""
    from _models import zoo_mlp

    d = tmp_path_factory.mktemp("synth")
    path = export(zoo_mlp(seed=6, hidden=(32,)), d / "mlp.onnx")
    out = d / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", "256",
                 "--verify-images", "10", "--synth", "xcup"]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_yosys_resources_of_the_generated_design(synth_build):
    """--synth puts yosys's figures for the whole generated design into report.json."""
    report = synth_build[1]
    res = report["resources"]
    assert "synth_xilinx -family xcup" in res["tool"]
    assert res["LUT"] > 50 and res["DSP"] == 0
    assert 2 <= res["logic_levels"] <= 20  # LUTs and carry blocks on the longest register-to-register path
    assert report["resources_estimate"]["tool"] == "bnnflow analytic estimate"


def test_big_memories_go_straight_to_per_layer_synthesis(tmp_path, monkeypatch):
    """A design whose memory files exceed PER_LAYER_ABOVE_BYTES is synthesised per layer without a
    whole-design run (ResNet18-4w4a: 23 MB), and the tool string says why; below it, whole."""
    from flow.boards import synth

    (tmp_path / "bnnflow_top.sv").write_text("module bnnflow_top; endmodule\n")
    (tmp_path / "w.mem").write_bytes(b"0" * 4096)
    calls = []
    monkeypatch.setattr(synth, "_yosys_stat", lambda *a: calls.append("whole") or ({"LUT6": 3}, 1))
    monkeypatch.setattr(synth, "synthesize_per_layer", lambda t, files, top, target, flow, why="trap":
                        calls.append(why) or {"tool": why})
    assert synth.synthesize(tmp_path, "bnnflow_top", "xcup")["LUT"] == 3 and calls == ["whole"]
    monkeypatch.setattr(synth, "PER_LAYER_ABOVE_BYTES", 4095)
    res = synth.synthesize(tmp_path, "bnnflow_top", "xcup")
    assert calls[1:] == [res["tool"]] and "memory files, 0.0 MiB, exceed" in res["tool"]


def test_a_slow_whole_design_run_is_stopped_and_synthesised_per_layer(tmp_path, monkeypatch):
    """The whole-design yosys run gets WHOLE_DESIGN_TIMEOUT_S; past it the process is stopped
    (a real one here: a yosys that sleeps) and the design goes per layer, the tool string saying
    why."""
    import sys

    from flow.boards import synth

    (tmp_path / "bnnflow_top.sv").write_text("module bnnflow_top; endmodule\n")
    monkeypatch.setattr(synth.tools, "yosys_cmd", lambda: [sys.executable, "-c", "import time; time.sleep(30)"])
    monkeypatch.setattr(synth, "WHOLE_DESIGN_TIMEOUT_S", 0.5)
    calls = []
    monkeypatch.setattr(synth, "synthesize_per_layer", lambda t, files, top, target, flow, why="trap":
                        calls.append(why) or {"tool": why})
    res = synth.synthesize(tmp_path, "bnnflow_top", "xcup")
    assert calls == [res["tool"]] and "whole-design run stopped after 0.00833333 minutes" in res["tool"]
    monkeypatch.setattr(synth.tools, "yosys_cmd", lambda: [sys.executable, "-c", "raise SystemExit(1)"])
    with pytest.raises(RuntimeError, match="yosys failed"):  # a failure that is no timeout is not retried
        synth.synthesize(tmp_path, "bnnflow_top", "xcup")


def test_yosys_figures_of_identical_sources_are_reused(tmp_path, monkeypatch):
    """With a cache folder (a build's sim/), yosys runs once per content: a resumed build whose
    sources and memory files did not change takes the earlier figures; a changed memory file,
    another target or a failed run is never taken from the cache."""
    from flow.boards import synth

    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "bnnflow_top.sv").write_text("module bnnflow_top; endmodule\n")
    (rtl / "w.mem").write_text("01\n")
    calls = []
    monkeypatch.setattr(synth, "_yosys_stat", lambda t, files, flow, top, target: calls.append(flow) or ({"LUT6": 3}, 1))
    cache = tmp_path / "sim"
    first = synth.synthesize(rtl, "bnnflow_top", "xcup", cache_dir=cache)
    assert synth.synthesize(rtl, "bnnflow_top", "xcup", cache_dir=cache) == first and len(calls) == 1
    (rtl / "w.mem").write_text("10\n")
    assert synth.synthesize(rtl, "bnnflow_top", "xcup", cache_dir=cache)["LUT"] == 3 and len(calls) == 2
    synth.synthesize(rtl, "bnnflow_top", "xc7", cache_dir=cache)
    assert len(calls) == 3 and "xc7" in calls[-1]
    monkeypatch.setattr(synth, "_yosys_stat", lambda *a: (_ for _ in ()).throw(RuntimeError("yosys failed")))
    (rtl / "w.mem").write_text("11\n")
    with pytest.raises(RuntimeError, match="yosys failed"):
        synth.synthesize(rtl, "bnnflow_top", "xcup", cache_dir=cache)
    assert len(list(cache.glob("yosys-*/figures.json"))) == 3


def test_per_layer_synthesis_when_the_whole_design_traps(synth_build, monkeypatch):
    """Where abc9 exhausts the WebAssembly call stack on the flat design (CNV-w1a1 on xcup), every
    layer instance is synthesised by itself and the figures summed; on a small design the sum
    is within a few percent of the whole-design run (456 vs 459 LUT, equal FF and BRAM), and the
    tool string says how the figures were made. Only the trap is simulated: the per-layer runs
    are real yosys (the whole-design figures: the --synth build's)."""
    from flow.boards import synth

    out, report = synth_build
    whole = {k: v for k, v in report["resources"].items() if k in ("LUT", "LUTRAM", "FF", "CARRY", "BRAM", "DSP")}

    def trapping(t, files, flow, top, target):
        raise RuntimeError(f"yosys failed on {top} for {target}: wasm trap: {synth.TRAP}")

    monkeypatch.setattr(synth, "_yosys_stat", trapping)
    summed = synth.synthesize(out / "rtl", "bnnflow_top", "xcup")
    assert "per layer instance" in summed["tool"] and len(summed["layers"]) >= 4
    assert {k: sum(la[k] for la in summed["layers"].values()) for k in whole if k != "tool"} == \
        {k: summed[k] for k in whole if k != "tool"}
    assert (summed["FF"], summed["BRAM"], summed["DSP"]) == (whole["FF"], whole["BRAM"], whole["DSP"])
    assert summed["logic_levels"] == max(la["logic_levels"] for la in summed["layers"].values()) > 0
    assert abs(summed["LUT"] - whole["LUT"]) <= 0.05 * whole["LUT"], (whole, summed)
    def thrown(t, files, flow, top, target):  # qfx-resnet on xcup: a C++ exception inside the module
        raise RuntimeError(f"yosys failed on {top} for {target}: yosys.wasm!_start | Caused by: | thrown Wasm exception")

    monkeypatch.setattr(synth, "_yosys_stat", thrown)
    again = synth.synthesize(out / "rtl", "bnnflow_top", "xcup")
    assert "stopped the WebAssembly runtime" in again["tool"] and again["LUT"] == summed["LUT"]
    monkeypatch.setattr(synth, "_yosys_stat", lambda *a: (_ for _ in ()).throw(RuntimeError("yosys failed: other")))
    with pytest.raises(RuntimeError, match="other"):
        synth.synthesize(out / "rtl", "bnnflow_top", "xcup")  # any other failure is not retried
