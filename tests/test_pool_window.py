"""Windows beyond the square: Conv1d, 3x1 / 1x3 kernels, unequal strides, asymmetric
padding, dilation, MaxPool2d(3, stride 2), and global average pooling (plain and Brevitas
TruncAvgPool2d), each compiled from a Brevitas model with random weights and randomised
BatchNorm and compared with PyTorch: the numpy reference in the default run (and one RTL
build), every model in RTL and C simulation in the slow tier."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from _models import calibrated, export
from flow.cli import main
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline
from flow.sim.execute import execute_numpy


def _quant():
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint

    def act(bits=4, qt=False):
        return qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=bits, return_quant_tensor=qt)

    def conv(cls, cin, cout, k, **kw):
        return cls(cin, cout, k, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, **kw)

    def inq():
        return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, bit_width=8, return_quant_tensor=False)

    return qnn, act, conv, inq


class NonSquareCNN(nn.Module):
    """3x1 and 1x3 kernels, stride (2, 1), an asymmetric ZeroPad2d before a stride-2 conv,
    MaxPool2d(3, stride 2)."""

    shape = (1, 16, 16)

    def __init__(self):
        super().__init__()
        qnn, act, conv, inq = _quant()
        self.body = nn.Sequential(
            inq(),
            conv(qnn.QuantConv2d, 1, 8, (3, 1), padding=(1, 0)), nn.BatchNorm2d(8), act(),
            conv(qnn.QuantConv2d, 8, 8, (1, 3), stride=(2, 1), padding=(0, 1)), nn.BatchNorm2d(8), act(),
            nn.ZeroPad2d((0, 1, 1, 0)),
            conv(qnn.QuantConv2d, 8, 12, 3, stride=2), nn.BatchNorm2d(12), act(),
            nn.MaxPool2d(3, stride=2))
        self.fc = qnn.QuantLinear(36, 10, bias=False, weight_bit_width=4, weight_quant=_wq())

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


def _wq():
    from brevitas.quant import Int8WeightPerTensorFixedPoint

    return Int8WeightPerTensorFixedPoint


class KeywordSpotting(nn.Module):
    """A keyword-spotting-like Conv1d network on 10 x 49 feature sequences."""

    shape = (10, 49)

    def __init__(self):
        super().__init__()
        qnn, act, conv, inq = _quant()
        self.body = nn.Sequential(
            inq(),
            conv(qnn.QuantConv1d, 10, 16, 3, padding=1), nn.BatchNorm1d(16), act(),
            conv(qnn.QuantConv1d, 16, 16, 3, stride=2), nn.BatchNorm1d(16), act(),
            conv(qnn.QuantConv1d, 16, 16, 3, dilation=2, padding=2), nn.BatchNorm1d(16), act(),
            nn.MaxPool1d(2))
        self.fc = qnn.QuantLinear(16 * 12, 12, bias=False, weight_bit_width=4, weight_quant=_wq())

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


class TruncAvgCNN(nn.Module):
    """A dilated convolution and a Brevitas TruncAvgPool2d over the whole map (as ResNet18
    and MobileNet-v1 end)."""

    shape = (3, 12, 12)

    def __init__(self):
        super().__init__()
        qnn, act, conv, inq = _quant()
        self.body = nn.Sequential(
            inq(),
            conv(qnn.QuantConv2d, 3, 8, 3, padding=1), nn.BatchNorm2d(8), act(),
            conv(qnn.QuantConv2d, 8, 16, 3, padding=2, dilation=2, stride=2), nn.BatchNorm2d(16), act(qt=True),
            qnn.TruncAvgPool2d(kernel_size=6, stride=1, bit_width=6, float_to_int_impl_type="FLOOR"))
        self.fc = qnn.QuantLinear(16, 10, bias=False, weight_bit_width=4, weight_quant=_wq())

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


class GlobalAvgCNN(nn.Module):
    """AdaptiveAvgPool2d(1) (GlobalAveragePool) into a quantizer, or (`into_layer`) a
    whole-map AvgPool2d (AveragePool) straight into the output layer."""

    shape = (3, 10, 10)

    def __init__(self, into_layer: bool = False):
        super().__init__()
        qnn, act, conv, inq = _quant()
        self.head = nn.Sequential(
            inq(), conv(qnn.QuantConv2d, 3, 8, 3, stride=2), nn.BatchNorm2d(8), act())
        self.pool = nn.AvgPool2d(4) if into_layer else nn.Sequential(nn.AdaptiveAvgPool2d(1), act(5))
        self.fc = qnn.QuantLinear(8, 10, bias=False, weight_bit_width=4, weight_quant=_wq())

    def forward(self, x):
        return self.fc(self.pool(self.head(x)).flatten(1))


class WindowAvgCNN(nn.Module):
    """Windowed average pools: TruncAvgPool2d(2) into a convolution, AvgPool2d((2, 3),
    stride (2, 1)) into a quantizer."""

    shape = (3, 12, 12)

    def __init__(self):
        super().__init__()
        qnn, act, conv, inq = _quant()
        self.body = nn.Sequential(
            inq(), conv(qnn.QuantConv2d, 3, 8, 3, padding=1), nn.BatchNorm2d(8), act(qt=True),
            qnn.TruncAvgPool2d(kernel_size=2, stride=2, bit_width=5, float_to_int_impl_type="FLOOR"),
            conv(qnn.QuantConv2d, 8, 8, 3), nn.BatchNorm2d(8), act(),
            nn.AvgPool2d((2, 3), stride=(2, 1)), act(5))
        self.fc = qnn.QuantLinear(32, 10, bias=False, weight_bit_width=4, weight_quant=_wq())

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


MODELS = {"nonsquare": NonSquareCNN, "kws": KeywordSpotting, "truncavg": TruncAvgCNN, "globalavg": GlobalAvgCNN,
          "avglayer": lambda: GlobalAvgCNN(into_layer=True), "windowavg": WindowAvgCNN}


def _model(name, seed=3):
    torch.manual_seed(seed)
    model = MODELS[name]()
    return calibrated(model, model.shape, seed + 1)


def _images(shape, n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _torch_top1(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x).float() / 255.0).numpy().argmax(axis=1)


DEFAULT = {"nonsquare", "kws", "windowavg"}  # the default run; the slow tier takes every model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model, its QONNX file), each exported once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            model = _model(name)
            cache[name] = model, export(model, tmp_path_factory.mktemp(name) / f"{name}.onnx", model.shape)
        return cache[name]
    return get


@pytest.mark.parametrize("name", [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in sorted(MODELS)])
def test_numpy_reference_equals_pytorch(name, exported):
    model, path = exported(name)
    graph = streamline(load_qonnx(path))
    x = _images(model.shape, 60, 1)
    got, want = execute_numpy(graph, x), _torch_top1(model, x)
    assert int(np.sum(got != want)) == 0, f"{np.sum(got != want)} of {len(x)} top-1 mismatches"
    kinds = {o.op_type for o in graph.ops()}
    if name in ("truncavg", "globalavg", "avglayer", "windowavg"):
        assert "GlobalAccPool" in kinds
    else:
        assert "SlidingWindow" in kinds and "MaxPool" in kinds


@pytest.mark.parametrize("name,op,attr,value,words", [
    ("windowavg", "AveragePool", "pads", [0, 1, 0, 1], ("AveragePool", "padding")),
    ("nonsquare", "MaxPool", "dilations", [2, 2], ("MaxPool", "dilation")),
])
def test_unsupported_pool_is_refused_naming_the_node(name, op, attr, value, words, exported, tmp_path):
    import onnx
    from onnx import helper

    from flow.core.errors import UserError

    model = onnx.load(str(exported(name)[1]))
    node = next(n for n in model.graph.node if n.op_type == op)
    kept = [a for a in node.attribute if a.name != attr]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(attr, value)])
    onnx.save(model, str(tmp_path / "bad.onnx"))
    with pytest.raises(UserError) as err:
        streamline(load_qonnx(tmp_path / "bad.onnx"))
    msg = str(err.value)  # the loader names nodes <op>_<i>
    assert msg.startswith(f"{op} '{op}_0'") and all(w in msg for w in words)


def _build_rtl(name, tmp_path, images):
    model = _model(name)
    path = export(model, tmp_path / f"{name}.onnx", model.shape)
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", "2000",
                 "--verify-images", str(images)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    assert report["verification"]["rtlsim"]["images"] == images
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est
    x = _images(model.shape, images, 5)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--engine", "rtlsim",
                 "--output", str(tmp_path / "y.npy")]) == 0
    got, want = np.load(tmp_path / "y.npy"), _torch_top1(model, x)
    assert int(np.sum(got != want)) == 0, f"{np.sum(got != want)} of {images} RTL top-1 mismatches"
    return report


@pytest.mark.sim
def test_conv1d_network_in_rtl(tmp_path):
    report = _build_rtl("kws", tmp_path, 8)
    assert any(l["op"] == "SlidingWindow" and l["kernel"] == [1, 3] for l in report["layers"])


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_rtl_equals_pytorch_60_inputs(name, tmp_path):
    _build_rtl(name, tmp_path, 60)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_csim_equals_numpy(name, tmp_path):
    from _hls_helpers import lower
    from flow.sim.csim import run_csim

    model = _model(name)
    graph = lower(export(model, tmp_path / f"{name}.onnx", model.shape), tmp_path / "out", 2000)
    x = _images(model.shape, 20, 2)
    top, _ = run_csim(graph, tmp_path / "out", x)
    assert np.array_equal(top, execute_numpy(graph, x))
    assert np.array_equal(top, _torch_top1(model, x))
