"""Every zoo model compiles, and the numpy reference equals PyTorch (random weights,
randomised BatchNorm with both signs of gamma); the residual QFX network becomes a
branching dataflow graph and runs exactly in RTL simulation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _models import randomize_norms
from flow.sim.execute import execute_numpy
from flow.frontend.export import export_qonnx
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline
from flow.train.zoo import build_model, list_models, model_entry

FAST = {"tfc-w1a1", "tfc-w1a2", "tfc-w2a2", "sfc-w1a1", "khot-mlp", "fx-mlp", "qfx-resnet"}


def _compile(name, tmp_path):
    model = randomize_norms(build_model(name, seed=4), 5)
    shape = tuple(model_entry(name)["input_shape"])
    path = export_qonnx(model, tmp_path / f"{name}.onnx", input_shape=(1, *shape))
    return model, streamline(load_qonnx(path)), shape, path


def _check(model, graph, shape, n, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    with torch.no_grad():
        tl = model(torch.from_numpy(images).float() / 255.0).numpy()
    want = tl.argmax(axis=1)
    got = execute_numpy(graph, images)
    assert int(np.sum(got != want)) == 0, f"{np.sum(got != want)} of {n} top-1 mismatches"
    logits = execute_numpy(graph, images, logits=True)
    out = graph.meta("output")
    err = np.abs(out["scale"] * logits + out["bias"] - tl).max()
    assert err <= 1e-4 * max(1.0, float(np.abs(tl).max())), err


@pytest.mark.parametrize("name", sorted(FAST))
def test_zoo_model_compiles_exactly(name, tmp_path):
    model, graph, shape, _ = _compile(name, tmp_path)
    _check(model, graph, shape, 60)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(list_models()))
def test_every_zoo_model_500_images(name, tmp_path):
    model, graph, shape, _ = _compile(name, tmp_path)
    _check(model, graph, shape, 500, seed=1)


def test_residual_network_branches_and_joins(tmp_path):
    model, graph, shape, path = _compile("qfx-resnet", tmp_path)
    kinds = [o.op_type for o in graph.ops()]
    assert kinds.count("Duplicate") == 2 and kinds.count("AddStreams") == 2 and "StreamFIFO" in kinds
    from flow.cli import main

    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", "8192",
                 "--verify-images", "12"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    assert abs(report["measured_cycles_per_frame"] - report["estimated_cycles_per_frame"]) <= \
        0.02 * report["estimated_cycles_per_frame"]
