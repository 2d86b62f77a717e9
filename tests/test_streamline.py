"""The streamliner turns Brevitas-exported binary MLPs into an integer dataflow graph
that computes exactly what PyTorch computes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _models import brevitas_tfc, export, mnist_images, torch_logits, zoo_mlp
from flow.sim.execute import execute_numpy, logits_to_float
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline

CASES = {
    "zoo-tfc": lambda: zoo_mlp(seed=3),
    "zoo-784-32-16-10-negative-scale": lambda: zoo_mlp(seed=5, hidden=(32, 16), negative_output_scale=True),
    "brevitas-examples-tfc": lambda: brevitas_tfc(seed=7),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def compiled(request, tmp_path_factory):
    model = CASES[request.param]()
    path = export(model, tmp_path_factory.mktemp("onnx") / "m.onnx")
    return model, streamline(load_qonnx(path)), path


def test_numpy_reference_equals_pytorch(compiled):
    model, graph, path = compiled
    images = mnist_images(300)
    tl = torch_logits(model, images)
    top = execute_numpy(graph, images)
    assert np.array_equal(top, tl.argmax(axis=1)), f"{np.sum(top != tl.argmax(1))} top-1 mismatches"
    logits = execute_numpy(graph, images, logits=True)
    assert logits.dtype == np.int64
    # PyTorch's float logits are the reported affine map of the integer logits, up to
    # float32 rounding (the exporter folds sqrt(var + eps) with its own rounding).
    out = graph.meta("output")
    assert out["scale"] > 0
    err = np.max(np.abs(out["scale"] * logits + out["bias"] - tl))
    assert err <= 1e-5 * max(1.0, float(np.abs(tl).max())), err


def test_integer_logits_map_exactly_to_the_onnx_float_logits(compiled):
    """The output table turns integer logits into the ONNX graph's own float32 logits,
    bit for bit (qonnx's execution of the exported file is the reference)."""
    from qonnx.core.onnx_exec import execute_onnx

    _model, graph, path = compiled
    mw = load_qonnx(path)
    images = mnist_images(40)
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    want = np.concatenate([execute_onnx(mw, {iname: (im[None].astype(np.float32) / np.float32(255))})[oname]
                           for im in images])
    got = logits_to_float(graph, execute_numpy(graph, images, logits=True))
    assert np.array_equal(got, want), f"{np.sum(got != want)} logits differ"


def test_thresholds_agree_with_pytorch_on_every_accumulator(compiled):
    """BatchNorm + sign of PyTorch (float32) == the integer threshold, for every
    reachable accumulator value of every channel."""
    model, graph, _ = compiled
    linears = [m for m in model.modules() if type(m).__name__ in ("QuantLinear", "QuantLinearLayer", "BinaryLinear")]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    mvus = [o for o in graph.ops() if o.op_type == "BinaryMVU"]
    assert len(norms) == len(mvus) - 1 and len(linears) == len(mvus)
    checked = 0
    for lin, bn, mvu in zip(linears, norms, mvus):
        mw = lin.in_features
        w_true = (lin.weight.detach().numpy() >= 0).astype(np.uint8)
        w_hw = mvu.param("weights")
        if mvu is mvus[0]:
            continue  # first layer columns follow the input binariser; covered end to end
        flipped = np.all(w_hw != w_true, axis=1)
        assert np.all(flipped | np.all(w_hw == w_true, axis=1))
        acc = np.arange(-mw, mw + 1, 2)
        with torch.no_grad():
            x = torch.from_numpy(np.repeat(acc[:, None], bn.num_features, axis=1).astype(np.float32))
            want = (bn.eval()(x) >= 0).numpy()
        pc = (acc + mw) // 2
        pc_hw = np.where(flipped[None, :], mw - pc[:, None], pc[:, None])
        got = pc_hw >= mvu.param("thresholds")[:, 0][None, :]
        assert np.array_equal(got, want)
        checked += got.size
    assert checked > 0


def test_input_binariser_is_exact_for_every_pixel_value(compiled):
    _model, graph, _ = compiled
    thr = graph.ops()[0]
    assert thr.op_type == "Thresholding"
    pix = np.arange(256)
    want = (2.0 * (torch.arange(256).float() / 255.0) - 1.0 >= 0).numpy()
    t = thr.param("thresholds")[:, 0]
    assert np.all(t == t[0])
    got = pix >= t[0]
    assert np.array_equal(got, want) or np.array_equal(~got, want)  # complemented + column flip
