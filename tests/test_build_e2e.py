"""End to end through the CLI: build -> report.json -> run on every engine, bit-exact
against PyTorch and the numpy reference."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _models import brevitas_tfc, export, mnist_images, torch_logits
from flow.cli import main

pytestmark = pytest.mark.sim


def _build(out: Path, model: str, *extra) -> dict:
    assert main(["build", model, "--out", str(out), "--quiet", *map(str, extra)]) == 0
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def zoo_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "tfc"
    report = _build(out, "tfc-w1a1", "--verify-images", 100, "--target-cycles", 256)
    from flow.train.trainer import pretrained_model

    return out, report, pretrained_model("tfc-w1a1")


@pytest.fixture(scope="module")
def random_bn_build(tmp_path_factory):
    """A Brevitas-exported MLP that is not the zoo's: BNN-PYNQ's own TFC with random
    weights and BatchNorm statistics (both signs of gamma)."""
    d = tmp_path_factory.mktemp("rnd")
    model = brevitas_tfc(seed=11)
    assert any((m.weight < 0).any() for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    path = export(model, d / "tfc_random.onnx")
    report = _build(d / "out", str(path), "--verify-images", 100, "--target-cycles", 128)
    return d / "out", report, model


def _check_report(report: dict, images: int) -> None:
    assert report["status"] == "complete"
    v = report["verification"]
    assert v["rtlsim"] == {**v["rtlsim"], "images": images, "mismatches": 0}
    for key in ("model", "design_hash", "layers", "estimated_cycles_per_frame", "measured_cycles_per_frame",
                "verification", "resources", "tool_versions", "first_frame_latency_cycles"):
        assert key in report, key
    for layer in report["layers"]:
        assert {"name", "op", "pe", "simd", "cycles", "resources"} <= set(layer)
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    mvus = [l for l in report["layers"] if l["op"] == "BinaryMVU"]
    assert est == max(l["shape"][0] // l["pe"] * (l["shape"][1] // l["simd"]) for l in mvus)
    assert abs(meas - est) <= 0.02 * est, (meas, est)
    assert report["resources"]["DSP"] == 0


def test_zoo_build_report(zoo_build):
    _out, report, _model = zoo_build
    _check_report(report, 100)
    assert report["verification"]["pytorch_vs_numpy"]["mismatches"] == 0
    assert report["verification"]["rtlsim"]["mismatches_vs_pytorch"] == 0


def test_random_batchnorm_build_report(random_bn_build):
    _out, report, _model = random_bn_build
    _check_report(report, 100)


@pytest.mark.parametrize("which", ["zoo", "random"])
def test_run_rtlsim_equals_pytorch_and_numpy(which, zoo_build, random_bn_build, tmp_path):
    out, _report, model = zoo_build if which == "zoo" else random_bn_build
    images = mnist_images(400)[200:400]  # not the images the build verified on
    x = tmp_path / "x.npy"
    np.save(x, images)
    results = {}
    for engine in ("numpy", "rtlsim"):
        y = tmp_path / f"{engine}.npy"
        assert main(["run", str(out), "--input", str(x), "--engine", engine, "--output", str(y)]) == 0
        results[engine] = np.load(y)
        assert results[engine].dtype == np.int64 and results[engine].shape == (200,)
    want = torch_logits(model, images).argmax(axis=1)
    assert np.array_equal(results["numpy"], want), f"{np.sum(results['numpy'] != want)} mismatches"
    assert np.array_equal(results["rtlsim"], want), f"{np.sum(results['rtlsim'] != want)} mismatches"


def test_integer_logits_mode(random_bn_build, tmp_path):
    out, report, model = random_bn_build
    images = mnist_images(100)
    x = tmp_path / "x.npy"
    np.save(x, images)
    got = {}
    for engine in ("numpy", "rtlsim"):
        y = tmp_path / f"{engine}_logits.npy"
        assert main(["run", str(out), "--input", str(x), "--engine", engine, "--logits", "--output", str(y)]) == 0
        got[engine] = np.load(y)
    assert got["rtlsim"].shape == (100, 10)
    assert np.array_equal(got["rtlsim"], got["numpy"])
    scale, bias = report["output"]["scale"], report["output"]["bias"]
    tl = torch_logits(model, images)
    assert np.abs(scale * got["rtlsim"] + bias - tl).max() <= 1e-5 * max(1.0, float(np.abs(tl).max()))
    assert np.array_equal(got["rtlsim"].argmax(axis=1), tl.argmax(axis=1))


def test_verify_under_random_stalls(random_bn_build, capsys):
    out, _report, _model = random_bn_build
    assert main(["verify", str(out), "--images", "50", "--stall-seed", "5"]) == 0
    record = json.loads(capsys.readouterr().out)["verification"]
    assert record["rtlsim"]["mismatches"] == 0 and record["rtlsim"]["images"] == 50


def test_same_inputs_give_byte_identical_sources(random_bn_build, tmp_path):
    out, _report, _model = random_bn_build
    from flow.pipeline.build import load_build
    from flow.sim.simulate import generate_rtl

    generate_rtl(load_build(out), tmp_path / "again")
    for f in sorted((out / "rtl").iterdir()):
        assert (tmp_path / "again" / f.name).read_bytes() == f.read_bytes(), f.name


@pytest.mark.slow
def test_thousand_images_bit_exact(tmp_path):
    model = brevitas_tfc(seed=23)
    path = export(model, tmp_path / "m.onnx")
    report = _build(tmp_path / "out", str(path), "--verify-images", 1000, "--target-cycles", 64)
    _check_report(report, 1000)
    images = mnist_images(1000)
    x = tmp_path / "x.npy"
    np.save(x, images)
    assert main(["run", str(tmp_path / "out"), "--input", str(x), "--engine", "rtlsim", "--output",
                 str(tmp_path / "y.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), torch_logits(model, images).argmax(axis=1))


def test_steps_are_saved_and_a_build_resumes_from_a_step(random_bn_build, tmp_path):
    import shutil

    import onnx

    out, report, _model = random_bn_build
    steps = sorted(p.name for p in (out / "steps").glob("*.onnx"))
    assert steps == ["01_import.onnx", "02_streamline.onnx", "03_fold.onnx", "04_insert_dwc.onnx", "05_fifo.onnx"]
    for name in steps:
        onnx.checker.check_model(onnx.load(str(out / "steps" / name)))
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("sim"))
    resumed = _build(copy, report["model"], "--from-step", "fold", "--target-cycles", 512, "--verify-images", 20)
    assert report["estimated_cycles_per_frame"] <= 128 < resumed["estimated_cycles_per_frame"] <= 512
    assert resumed["verification"]["rtlsim"]["mismatches"] == 0
