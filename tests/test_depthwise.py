"""Depthwise convolutions and per-channel activation scales (MobileNet-v1's blocks): the VVU
op's semantics against PyTorch, its folding and dependency curve, MobileNet-style Brevitas
stacks exact in numpy and RTL simulation against PyTorch with measured cycles per frame
within 2% of the estimate, C simulation of the HLS function, and the refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from _hls_helpers import lower, torch_top1
from _mobilenet import grouped_net, mobilenet_stack, pooled_net
from _models import export, randomize_norms
from flow.cli import main
from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph
from flow.pipeline.build import STEPS, BuildConfig, StepContext, run_in_memory
from flow.ops import semantics
from flow.passes.fold import apply_folding_file, folding_config
from flow.sim.csim import run_csim
from flow.sim.execute import execute, execute_numpy

SMALL = dict(in_ch=2, size=6, width=4, strides=(2,))


def _images(n: int, shape, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def test_vvu_semantics_equal_a_grouped_torch_conv():
    rng = np.random.default_rng(0)
    c, k = 5, 3
    x = rng.integers(0, 16, (2, c, 6, 6))
    w = rng.integers(-8, 8, (c, 1, k, k))
    want = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), padding=1, groups=c)
    win = semantics.sliding_window(x.transpose(0, 2, 3, 1), k, 1, 1)  # (N, OH, OW, K*K*C) in (ky, kx, c)
    got = semantics.vvu(win.reshape(2, 36, k * k, c), w.reshape(c, k * k))
    assert np.array_equal(got.reshape(2, 6, 6, c).transpose(0, 3, 1, 2), want.numpy().astype(np.int64))


def _vvu_graph(c=6, taps=9, vectors=4, pe=1, simd=1, thresholds=2, seed=0):
    rng = np.random.default_rng(seed)
    g = DataflowGraph.empty("vvu")
    w = rng.integers(-3, 4, (c, taps))
    thr = np.sort(rng.integers(-20, 20, (c, thresholds)), axis=1)
    g.add_node("VVU", "VVU_0", {"Channels": c, "Taps": taps, "NumVectors": vectors, "PE": pe, "SIMD": simd,
                                "InputBits": 3, "WeightMode": 2, "WeightBits": 3, "NumThresholds": thresholds},
               {"weights": w, "thresholds": thr}, inputs=["global_in"])
    g.finalize_io()
    return g, g.ops()[0], w, thr


def test_vvu_op_folding_cycles_and_dependencies():
    _g, op, w, thr = _vvu_graph()
    x = np.random.default_rng(1).integers(0, 8, (3, 4 * 9 * 6))
    want = semantics.multithreshold(np.einsum("nvtc,ct->nvc", x.reshape(3, 4, 9, 6), w).reshape(-1, 6), thr)
    assert np.array_equal(op.execute(x).reshape(-1, 6), want)
    assert op.cycles() == 4 * 6 * 9
    for target, fold in [(4 * 6 * 9, (1, 1)), (4 * 9 * 2, (3, 1)), (4 * 9, (6, 1)), (4 * 3, (6, 3)), (1, (6, 9))]:
        op.fold_for(target, None, None)
        assert (op.attr("PE"), op.attr("SIMD")) == fold
    assert {4 * 6 * 9, 4 * 9 * 2, 4 * 9, 4 * 3, 4} <= op.folding_cycles()
    op.set_attr("PE", 3)
    op.set_attr("SIMD", 1)
    need = op.beats_needed()  # output beat (v, nf) leaves with the last tap's beat nf of window v
    assert list(need[:4]) == [17, 18, 35, 36] and len(need) == 8
    op.set_attr("PE", 2)
    op.set_attr("SIMD", 3)
    with pytest.raises(ValueError, match="needs PE = Channels"):
        op.check()
    with pytest.raises(ValueError, match="unknown attribute"):
        type(op).make_attrs({"Channels": 2, "Kernel": 3})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small per-channel stack, exported once for the tests of this module."""
    d = tmp_path_factory.mktemp("dw_small")
    model = mobilenet_stack(3, per_channel=True, **SMALL)
    return model, d, export(model, d / "m.onnx", (2, 6, 6))


@pytest.fixture(scope="module")
def small_graphs(small):
    """(streamlined, folded with width converters) dataflow graphs of the small stack."""
    _model, d, path = small
    ctx = StepContext(BuildConfig(model=str(path), out=d / "lowered", target_cycles=64, progress=False))
    st = run_in_memory(ctx, STEPS[:2])  # import, streamline
    streamlined = st.graph.copy()
    st = run_in_memory(ctx, STEPS[2:4], st)  # fold, insert_dwc
    return streamlined, st.graph


@pytest.mark.sim
def test_small_stack_rtl_equals_numpy_and_pytorch(small):
    model, d, path = small
    out = d / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", "64",
                 "--verify-images", "6"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    assert {"VVU", "SlidingWindow", "IntMVU"} <= {layer["op"] for layer in report["layers"]}
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est
    x = _images(6, (2, 6, 6))
    np.save(d / "x.npy", x)
    assert main(["run", str(out), "--input", str(d / "x.npy"), "--engine", "rtlsim", "--output", str(d / "y.npy")]) == 0
    assert np.array_equal(np.load(d / "y.npy"), torch_top1(model, x))


def test_small_stack_numpy_equals_pytorch(small, small_graphs):
    model = small[0]
    graph = small_graphs[1]
    assert any(o.op_type == "VVU" and o.attr("NumThresholds") for o in graph.ops())
    x = _images(100, (2, 6, 6), seed=9)
    want = torch_top1(model, x, graph.meta("input")["scale"])
    assert len(np.unique(want)) >= 3  # the random stack separates the images
    assert int(np.sum(execute(graph, x, engine="numpy") != want)) == 0


@pytest.mark.slow
def test_small_stack_csim_equals_numpy_and_pytorch(small):
    """C simulation of the HLS top (vvu<config>), top-1 and integer logits."""

    model, d, path = small
    graph = lower(path, d / "csim", 64)
    x = _images(40, (2, 6, 6), seed=9)
    top, _ = run_csim(graph, d / "csim", x)
    logits, _ = run_csim(graph, d / "csim", x, logits=True)
    assert np.array_equal(top, torch_top1(model, x, graph.meta("input")["scale"]))
    assert np.array_equal(logits, execute_numpy(graph, x, logits=True))


def _check_numpy(tmp_path, per_channel: bool, n: int, **kw):
    model = mobilenet_stack(7, per_channel=per_channel, **kw)
    shape = (kw.get("in_ch", 3), kw.get("size", 8), kw.get("size", 8))
    graph = lower(export(model, tmp_path / "m.onnx", shape), tmp_path / "out", 256)
    x = _images(n, shape)
    want = torch_top1(model, x, graph.meta("input")["scale"])
    assert len(np.unique(want)) >= 3
    assert int(np.sum(execute(graph, x, engine="numpy") != want)) == 0
    return graph


@pytest.mark.slow
@pytest.mark.parametrize("per_channel", [False, True])
def test_stack_numpy_equals_pytorch(tmp_path, per_channel):
    graph = _check_numpy(tmp_path, per_channel, 300)
    vvus = [o for o in graph.ops() if o.op_type == "VVU"]
    assert len(vvus) == 2 and all(o.attr("Taps") == 9 for o in vvus)


def test_per_channel_codes_through_a_maxpool(tmp_path):
    model = pooled_net(4)
    graph = lower(export(model, tmp_path / "m.onnx", (2, 6, 6)), tmp_path / "out", 256)
    assert [o.op_type for o in graph.ops() if o.op_type in ("MaxPool", "VVU")] == ["MaxPool", "VVU"]
    x = _images(100, (2, 6, 6))
    want = torch_top1(model, x)
    assert len(np.unique(want)) >= 2
    assert int(np.sum(execute(graph, x, engine="numpy") != want)) == 0


def test_per_channel_scale_before_a_dense_layer_is_refused(tmp_path):
    import brevitas.nn as qnn

    from _mobilenet import _weight_quant

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(12, 12, bias=False, weight_quant=_weight_quant(), weight_bit_width=4)
            self.act = qnn.QuantReLU(bit_width=4, return_quant_tensor=True, scaling_per_output_channel=True,
                                     per_channel_broadcastable_shape=(1, 12), scaling_stats_permute_dims=(1, 0))
            self.fc2 = qnn.QuantLinear(12, 4, bias=False, weight_quant=_weight_quant(), weight_bit_width=4)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(self.inp(x.flatten(1)))))

    path = export(Net().eval(), tmp_path / "m.onnx", (3, 2, 2))
    with pytest.raises(UserError, match="per-channel activation scales"):
        lower(path, tmp_path / "out", 64)


def test_grouped_conv_is_a_block_diagonal_mvu(tmp_path):
    """groups=2 (not depthwise): an IntMVU whose weights are zero outside each group, exact."""
    model = grouped_net(5)
    graph = lower(export(model, tmp_path / "m.onnx", (4, 5, 5)), tmp_path / "out", 256)
    mvu = [o for o in graph.ops() if o.op_type == "IntMVU"][0]
    w = mvu.param("weights").reshape(6, 9, 4)  # (out, tap, in channel)
    assert not np.any(w[:3, :, 2:]) and not np.any(w[3:, :, :2]) and np.any(w[:3, :, :2])
    x = _images(100, (4, 5, 5))
    want = torch_top1(model, x)
    assert len(np.unique(want)) >= 2
    assert int(np.sum(execute(graph, x, engine="numpy") != want)) == 0


def _build_and_check(tmp_path, per_channel: bool, target: int, images: int, **kw):
    model = mobilenet_stack(13, per_channel=per_channel, **kw)
    shape = (kw.get("in_ch", 3), kw.get("size", 8), kw.get("size", 8))
    path = export(model, tmp_path / "m.onnx", shape)
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", str(target),
                 "--verify-images", str(images)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    assert report["verification"]["rtlsim"]["images"] == images
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est
    x = _images(images, shape, seed=21)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--engine", "rtlsim",
                 "--output", str(tmp_path / "y.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), torch_top1(model, x))
    return report


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("per_channel,target", [(False, 4096), (True, 256)])
def test_mobilenet_stack_rtl_50(tmp_path, per_channel, target):
    _build_and_check(tmp_path, per_channel, target, 60, strides=(1, 2, 1))


@pytest.mark.slow
def test_mobilenet_stack_numpy_500(tmp_path):
    _check_numpy(tmp_path, True, 500, width=6, size=10, strides=(2, 1))


def test_finn_folding_file_sets_the_vvu(small_graphs, tmp_path):
    """FINN's VVAU keys reach the VVU; the folding the graph writes back uses them."""

    streamlined = small_graphs[0]
    spec = tmp_path / "fold.json"
    spec.write_text(json.dumps({"VVAU_hls_0": {"PE": 4, "SIMD": 3, "ram_style": "distributed"}}))
    g = apply_folding_file(streamlined, spec)
    vvu = [o for o in g.ops() if o.op_type == "VVU"][0]
    assert (vvu.attr("PE"), vvu.attr("SIMD"), vvu.attr("ram_style")) == (4, 3, "distributed")
    assert folding_config(g)["VVAU_hls_0"] == {"PE": 4, "SIMD": 3, "ram_style": "distributed"}
    spec.write_text(json.dumps({"VectorVectorActivation_0": {"PE": 2, "SIMD": 3}}))
    with pytest.raises(UserError, match="needs PE = Channels"):
        apply_folding_file(streamlined, spec)


class _DepthwiseBias(nn.Module):
    """Input quantizer -> depthwise conv (2-D or 1-D, with or without bias) -> [BatchNorm] ->
    QuantReLU -> linear: the patterns that were once refused (a depthwise conv with a bias; a
    depthwise QuantConv1d)."""

    def __init__(self, dims: int, bias: bool, bn: bool, c: int = 3, size: int = 6):
        import brevitas.nn as qnn

        super().__init__()
        conv = qnn.QuantConv2d if dims == 2 else qnn.QuantConv1d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.body = nn.Sequential(qnn.QuantIdentity(bit_width=8), conv(c, c, 3, padding=1, groups=c, bias=bias,
                                                                       weight_bit_width=4),
                                  norm(c) if bn else nn.Identity(), qnn.QuantReLU(bit_width=4), nn.Flatten())
        self.fc = qnn.QuantLinear(c * size ** dims, 5, bias=False, weight_bit_width=4)

    def forward(self, x):
        return self.fc(self.body(x))


@pytest.mark.parametrize("dims,bias,bn", [(2, True, True), (2, True, False), (1, False, True), (1, True, True)])
def test_depthwise_with_bias_and_conv1d_equal_pytorch(tmp_path, dims, bias, bn):
    torch.manual_seed(4)
    model = _DepthwiseBias(dims, bias, bn)
    if bias:  # a bias of several weight steps, so that ignoring it changes the outputs
        dw = model.body[1]
        dw.bias.data = torch.randn(dw.bias.shape) * 2 * float(dw.weight.abs().max())
    model = randomize_norms(model, 5)
    shape = (3, 6, 6) if dims == 2 else (3, 6)
    graph = lower(export(model, tmp_path / "m.onnx", shape), tmp_path / "out", 64)
    assert "VVU" in {o.op_type for o in graph.ops()}
    x = _images(200, shape, seed=3)
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(x).float() / 255.0).numpy()
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5 * np.maximum(1.0, np.abs(top2[:, 1]))  # no (near) ties
    assert clear.sum() >= 150
    got = execute(graph, x, engine="numpy")
    assert int(np.sum((got != logits.argmax(axis=1)) & clear)) == 0


@pytest.mark.sim
def test_depthwise_conv1d_with_bias_rtl_equals_numpy(tmp_path):
    torch.manual_seed(6)
    model = randomize_norms(_DepthwiseBias(1, True, True), 7)
    graph = lower(export(model, tmp_path / "m.onnx", (3, 6)), tmp_path / "out", 16)
    x = _images(8, (3, 6), seed=2)
    want = execute(graph, x, engine="numpy", logits=True)
    assert np.array_equal(execute(graph, x, engine="rtlsim", logits=True, build_dir=tmp_path / "out"), want)
