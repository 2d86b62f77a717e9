"""A MaxPool inside a layer's float segment, before the activation quantizer: conv -> BatchNorm ->
MaxPool -> QuantReLU (BatchNorm gammas of both signs before the pool) and conv -> MaxPool ->
BatchNorm -> QuantReLU (positive gammas after the pool). flow.passes.lower_pool moves the pool past
the quantizer, where it pools the codes: the rewritten QONNX graph computes what the file computes,
the numpy reference and the RTL simulation equal PyTorch, and what the move cannot keep exact (a
decreasing channel after the pool, constants that differ between positions, padding) is refused."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from _cli import assert_refused, bnnflow
from _models import export
from flow.core.errors import UserError
from flow.frontend.load import load_qonnx
from flow.passes.lower_pool import move_maxpools_past_quantizers
from flow.passes.streamline import streamline
from flow.sim.execute import execute_numpy

SHAPE = (3, 11, 11)  # odd: the pools drop the last row and column


class PoolBeforeAct(nn.Module):
    """Two conv blocks and a classifier; the first block pools inside its float segment:
    `bn_pool`: conv -> BN -> MaxPool2d(2) -> QuantReLU; `pool_bn`: conv (bias) -> MaxPool2d(3,
    stride 2) -> BN -> QuantReLU; `padded`: as bn_pool with MaxPool2d(3, stride 2, padding 1)."""

    def __init__(self, order: str):
        super().__init__()
        import brevitas.nn as qnn
        from brevitas.quant import Int8WeightPerTensorFixedPoint as W
        from brevitas.quant import Uint8ActPerTensorFixedPoint as U

        def relu():
            return qnn.QuantReLU(act_quant=U, bit_width=4, return_quant_tensor=False)

        c = 6
        conv = qnn.QuantConv2d(3, c, 3, padding=1, bias=order == "pool_bn", weight_quant=W, weight_bit_width=4)
        pool = nn.MaxPool2d(2) if order == "bn_pool" else nn.MaxPool2d(3, stride=2, padding=int(order == "padded"))
        first = [conv, pool, nn.BatchNorm2d(c)] if order == "pool_bn" else [conv, nn.BatchNorm2d(c), pool]
        self.body = nn.Sequential(
            qnn.QuantIdentity(act_quant=U, bit_width=8, return_quant_tensor=False), *first, relu(),
            qnn.QuantConv2d(c, 8, 3, bias=False, weight_quant=W, weight_bit_width=4), nn.BatchNorm2d(8), relu())
        side = 3 if order != "padded" else 4
        self.fc = qnn.QuantLinear(8 * side * side, 10, bias=False, weight_quant=W, weight_bit_width=4)

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


def _model(order: str, negative_after_pool: bool = False) -> PoolBeforeAct:
    """Random weights; each BatchNorm's statistics from random images (so the codes spread over
    the quantizers' ranges and the classes vary), gammas of both signs, except after the pool."""
    torch.manual_seed(5)
    model = PoolBeforeAct(order).eval()
    x = torch.from_numpy(_images(64, 9)).float() / 255.0
    g = torch.Generator().manual_seed(6)
    for k, bn in enumerate(m for m in model.body if isinstance(m, nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: the statistics of this one batch
        with torch.no_grad():
            bn.train()
            model(x)
            bn.eval()
        n = bn.num_features
        sign = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)[torch.randperm(n, generator=g)]
        if k == 0 and order == "pool_bn":  # after the pool: non-decreasing channels, unless refused
            sign = torch.ones(n)
            sign[1] = -1.0 if negative_after_pool else 1.0
        bn.weight.data = sign * (torch.rand(n, generator=g) * 0.3 + 0.2)
        bn.bias.data = torch.rand(n, generator=g) * 0.5
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cache = {}

    def get(order):
        if order not in cache:
            model = _model(order)
            cache[order] = model, export(model, tmp_path_factory.mktemp(order) / f"{order}.onnx", SHAPE)
        return cache[order]
    return get


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def _torch_top1(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x).float() / 255.0).numpy().argmax(axis=1)


@pytest.mark.parametrize("order", ["bn_pool", "pool_bn"])
def test_the_moved_graph_computes_what_the_file_computes(order, exported):
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    path = exported(order)[1]
    before, after = load_qonnx(path), load_qonnx(path)
    move_maxpools_past_quantizers(after)
    kinds = [n.op_type for n in after.graph.node]
    assert kinds[kinds.index("MaxPool") - 1] == "Quant"  # the pool now reads the codes
    inferred = after.transform(InferShapes(), cleanup=False)
    for t in [o for n in after.graph.node for o in n.output]:
        assert after.get_tensor_shape(t) == inferred.get_tensor_shape(t), t
    name = before.graph.input[0].name
    for x in _images(4, 2):
        feed = {name: (x[None].astype(np.float32) / np.float32(255))}
        want = execute_onnx(before, feed)[before.graph.output[0].name]
        got = execute_onnx(after, feed)[after.graph.output[0].name]
        assert np.array_equal(got, want)


@pytest.mark.parametrize("order", ["bn_pool", "pool_bn"])
def test_numpy_reference_equals_pytorch(order, exported):
    model, path = exported(order)
    graph = streamline(load_qonnx(path))
    pool = next(n for n in graph.nodes if n.op_type == "MaxPool")
    assert graph.producer(pool.input[0]).op_type == "IntMVU"  # thresholds in the MVU, then the pool of the codes
    x = _images(100, 1)
    got, want = execute_numpy(graph, x), _torch_top1(model, x)
    assert len(np.unique(want)) >= 4  # the classes vary: a wrong code would show
    assert int(np.sum(got != want)) == 0, f"{np.sum(got != want)} of {len(x)} top-1 mismatches"


@pytest.mark.sim
@pytest.mark.parametrize("order", ["bn_pool", "pool_bn"])
def test_cli_build_rtl_equals_numpy_equals_pytorch(order, exported, tmp_path):
    model, path = exported(order)
    out, images = tmp_path / "out", 8
    res = bnnflow("build", path, "--out", out, "--quiet", "--target-cycles", "2000", "--verify-images", images)
    assert res.returncode == 0, res.stderr
    rtl = json.loads((out / "report.json").read_text())["verification"]["rtlsim"]
    assert (rtl["mismatches"], rtl["images"]) == (0, images)
    x = _images(images, 3)
    np.save(tmp_path / "x.npy", x)
    want = _torch_top1(model, x)
    for engine in ("numpy", "rtlsim"):
        res = bnnflow("run", out, "--input", tmp_path / "x.npy", "--engine", engine, "--output", tmp_path / f"{engine}.npy")
        assert res.returncode == 0, res.stderr
        got = np.load(tmp_path / f"{engine}.npy")
        assert int(np.sum(got != want)) == 0, f"{engine}: {np.sum(got != want)} of {images} top-1 mismatches"


def test_decreasing_channel_after_the_pool_is_refused_by_the_cli(tmp_path):
    path = export(_model("pool_bn", negative_after_pool=True), tmp_path / "neg.onnx", SHAPE)
    res = bnnflow("build", path, "--out", tmp_path / "out", "--quiet")
    assert_refused(res, "MaxPool 'MaxPool_0'", "BatchNormalization 'BatchNormalization_0'", "channel 1", "decreasing")


def _with_spatial_mul(path, tmp_path):
    """The file with a Mul by a constant that differs between positions right after the pool."""
    model = onnx.load(str(path))
    g = model.graph
    pool = next(n for n in g.node if n.op_type == "MaxPool")
    k = numpy_helper.from_array(np.linspace(0.5, 1.5, 25, dtype=np.float32).reshape(1, 1, 5, 5), "spatial_k")
    mul = helper.make_node("Mul", [pool.output[0], "spatial_k"], ["spatial_out"], name="spatial_mul")
    for n in g.node:
        n.input[:] = ["spatial_out" if i == pool.output[0] else i for i in n.input]
    mul.input[0] = pool.output[0]
    g.initializer.append(k)
    g.node.insert(list(g.node).index(pool) + 1, mul)
    onnx.save(model, str(tmp_path / "spatial.onnx"))
    return tmp_path / "spatial.onnx"


@pytest.mark.parametrize("case,words", [
    ("spatial", ("'Mul_0' (Mul)", "MaxPool 'MaxPool_0'", "differs between positions")),
    ("padded", ("MaxPool 'MaxPool_0'", "padding")),
])
def test_unexact_pool_in_a_segment_is_refused(case, words, exported, tmp_path):
    if case == "spatial":
        path = _with_spatial_mul(exported("bn_pool")[1], tmp_path)
    else:
        path = export(_model("padded"), tmp_path / "padded.onnx", SHAPE)
    with pytest.raises(UserError) as err:
        streamline(load_qonnx(path))
    assert all(w in str(err.value) for w in words), str(err.value)
