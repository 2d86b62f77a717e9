"""Every BNN-PYNQ topology exported by Brevitas itself (random weights, randomised
BatchNorm with both signs of gamma) compiles, and the numpy reference equals PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _models import export, randomize_norms
from flow.sim.execute import execute_numpy, logits_to_float
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)
TOPOLOGIES = {  # brevitas_examples.bnn_pynq name: (input shape, images in the default run)
    "tfc_1w1a": (MNIST, 200), "tfc_1w2a": (MNIST, 200), "tfc_2w2a": (MNIST, 200),
    "sfc_1w1a": (MNIST, 100), "sfc_1w2a": (MNIST, 50), "sfc_2w2a": (MNIST, 50),
    "lfc_1w1a": (MNIST, 50), "lfc_1w2a": (MNIST, 50),
    "cnv_1w1a": (CIFAR, 30), "cnv_1w2a": (CIFAR, 20), "cnv_2w2a": (CIFAR, 20),
}
SLOW_IMAGES = 500


def _brevitas(name: str, seed: int):
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    return randomize_norms(model, seed + 1)


def _images(shape, n, seed):
    # structured images (not uniform noise) so that activations vary in a realistic way
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, *shape), dtype=np.int64)
    blur = (base + np.roll(base, 1, axis=-1) + np.roll(base, 1, axis=-2)) // 3
    return blur.astype(np.uint8)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            model = _brevitas(name, seed=sum(map(ord, name)))
            path = export(model, tmp_path_factory.mktemp(name) / f"{name}.onnx", TOPOLOGIES[name][0])
            cache[name] = (model, streamline(load_qonnx(path)))
        return cache[name]

    return get


def _check(model, graph, images):
    with torch.no_grad():
        tl = model(torch.from_numpy(images).float() / 255.0).numpy()
    top = execute_numpy(graph, images)
    mism = int(np.sum(top != tl.argmax(axis=1)))
    assert mism == 0, f"{mism} of {len(images)} top-1 mismatches"
    logits = execute_numpy(graph, images, logits=True)
    out = graph.meta("output")
    err = np.abs(out["scale"] * logits + out["bias"] - tl).max()
    assert err <= 1e-4 * max(1.0, float(np.abs(tl).max())), err
    # the exact table reproduces PyTorch's logits up to the exporter's float32 folding
    assert np.abs(logits_to_float(graph, logits) - tl).max() <= 1e-5 * max(1.0, float(np.abs(tl).max()))


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_topology_numpy_equals_pytorch(name, compiled):
    model, graph = compiled(name)
    shape, n = TOPOLOGIES[name]
    _check(model, graph, _images(shape, n, seed=1))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_topology_numpy_equals_pytorch_500(name, compiled):
    model, graph = compiled(name)
    shape, _n = TOPOLOGIES[name]
    _check(model, graph, _images(shape, SLOW_IMAGES, seed=2))


def test_cnv_uses_the_expected_engines(compiled):
    _model, graph = compiled("cnv_1w1a")
    kinds = [o.op_type for o in graph.ops()]
    assert kinds.count("SlidingWindow") == 6 and kinds.count("MaxPool") == 2
    # 8-bit input layer against binary weights: add/subtract, no multiplier
    first = [o for o in graph.ops() if o.op_type == "IntMVU"][0]
    assert first.attr("WeightMode") == 0 and first.attr("InputBits") == 8
    assert kinds.count("BinaryMVU") == 8


def test_multibit_weights_avoid_multipliers(compiled):
    _model, graph = compiled("tfc_2w2a")
    for op in graph.ops():
        if op.op_type == "IntMVU":
            assert op.attr("WeightMode") in (0, 1), op.name  # 2-bit narrow weights are {-1, 0, 1}
            assert op.resources()["DSP"] == 0
            assert op.describe()["acc_bits"] <= 12
