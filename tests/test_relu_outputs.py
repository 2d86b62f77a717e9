"""Ordinary Brevitas MLPs: QuantReLU activations, default float weight scales (4- and 8-bit
weights), output layers whose logits exceed 2^20 values, and models that end in a quantizer
or in a single output. Each is exact against PyTorch in numpy and in RTL simulation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _models import export, randomize_norms
from flow.cli import main
from flow.core.errors import UserError
from flow.core.quant import weight_integers
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline
from flow.sim.execute import execute_numpy
from flow.sim.verify import torch_reference


def _mlp(seed, shape, hidden, out, wbits=4, abits=4, final=None, input_relu=False, requant_relu=False):
    """QuantIdentity (or QuantReLU) input, QuantLinear (default per-tensor float scale) +
    BatchNorm + QuantReLU hidden layers, a QuantLinear output; `final="bipolar"` adds a
    BatchNorm and a bipolar QuantIdentity (a binary decision per output); `requant_relu`
    a QuantReLU right after the input quantizer (a Relu between two quantizers)."""
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryActPerTensorConst

    torch.manual_seed(seed)
    first = qnn.QuantReLU(bit_width=8) if input_relu else qnn.QuantIdentity(bit_width=8)
    layers, n = [first, torch.nn.Flatten()], int(np.prod(shape))
    if requant_relu:
        layers.insert(1, qnn.QuantReLU(bit_width=4))
    for h in hidden:
        layers += [qnn.QuantLinear(n, h, bias=False, weight_bit_width=wbits), torch.nn.BatchNorm1d(h),
                   qnn.QuantReLU(bit_width=abits)]
        n = h
    layers.append(qnn.QuantLinear(n, out, bias=False, weight_bit_width=wbits))
    if final == "bipolar":
        layers += [torch.nn.BatchNorm1d(out), qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)]
    elif out == 1:
        layers.append(_Shift())
    model = torch.nn.Sequential(*layers)
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():  # let the activation scales settle on inputs like the images
        for _ in range(4):
            model(torch.rand(64, *shape, generator=g) * (1 if input_relu else 2) - (0 if input_relu else 0.5))
    model = randomize_norms(model, seed + 1)
    if out == 1 or final == "bipolar":
        _center_decisions(model, shape, seed)
    return model


class _Shift(torch.nn.Module):
    """y = x - c (a scalar Sub in the export)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("c", torch.zeros(()))

    def forward(self, x):
        return x - self.c


def _center_decisions(model, shape, seed):
    """Move the last BatchNorm's mean (or the shift) to the mean of its input, so that both decisions
    occur (the mean, not the median: a value many inputs reach exactly would make float ties)."""
    last = [m for m in model if isinstance(m, (torch.nn.BatchNorm1d, _Shift))][-1]
    upto = list(model).index(last)
    x = torch.rand(256, *shape, generator=torch.Generator().manual_seed(seed + 2))
    with torch.no_grad():
        pre = torch.nn.Sequential(*list(model)[:upto]).eval()(x)
    if isinstance(last, _Shift):
        last.c.data = pre.mean()
        return
    last.running_mean.data = pre.mean(dim=0)
    last.bias.data.zero_()


def _torch_out(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x).float() / 255.0).numpy()


def _images(n: int, shape, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


# -- numpy: cheap, the default tier -------------------------------------------------------------

NUMPY_CASES = {  # name: (model arguments, what PyTorch's output becomes)
    "relu-4bit-float-scale": (dict(seed=1, shape=(1, 10, 10), hidden=(24,), out=10), "argmax"),
    "relu-on-the-input": (dict(seed=2, shape=(1, 10, 10), hidden=(24,), out=10, input_relu=True), "argmax"),
    "relu-between-quantizers": (dict(seed=12, shape=(1, 10, 10), hidden=(24,), out=10, requant_relu=True), "argmax"),
    "8bit-wide-logits": (dict(seed=3, shape=(1, 8, 8), hidden=(64,), out=10, wbits=8, abits=8), "argmax"),
    "bipolar-output": (dict(seed=4, shape=(1, 10, 10), hidden=(24,), out=1, final="bipolar"), "sign"),
    "three-bipolar-outputs": (dict(seed=5, shape=(1, 10, 10), hidden=(24,), out=3, final="bipolar"), "sign"),
    "single-output-decision": (dict(seed=6, shape=(1, 10, 10), hidden=(24,), out=1), "decision"),
}
# the default tier's numpy cases (bipolar-output is built in the default tier, below); the rest are slow
DEFAULT_NUMPY = ("8bit-wide-logits", "single-output-decision")


def _expected(kind: str, t: np.ndarray) -> np.ndarray:
    if kind == "argmax":
        return t.argmax(axis=1)
    if kind == "decision":
        return (t[:, 0] >= 0).astype(np.int64)
    u = (t > 0).astype(np.int64)  # bipolar +-1 -> codes 1/0
    return u[:, 0] if u.shape[1] == 1 else u


_COMPILED: dict = {}


def _compiled(name: str, tmp_path_factory):
    """(model, graph) of a numpy case, made once per module."""
    if name not in _COMPILED:
        kw = NUMPY_CASES[name][0]
        model = _mlp(**kw)
        path = export(model, tmp_path_factory.mktemp("onnx") / "m.onnx", kw["shape"])
        _COMPILED[name] = model, streamline(load_qonnx(path))
    return _COMPILED[name]


@pytest.fixture(scope="module", params=[n if n in DEFAULT_NUMPY else pytest.param(n, marks=pytest.mark.slow)
                                        for n in sorted(NUMPY_CASES)])
def numpy_case(request, tmp_path_factory):
    kw, kind = NUMPY_CASES[request.param]
    model, graph = _compiled(request.param, tmp_path_factory)
    return request.param, model, graph, kind, kw["shape"]


def test_numpy_reference_equals_pytorch(numpy_case):
    name, model, graph, kind, shape = numpy_case
    x = _images(200, shape)
    t = _torch_out(model, x)
    want = _expected(kind, t)
    got = execute_numpy(graph, x)
    assert got.shape == want.shape and np.array_equal(got, want), f"{name}: {np.sum(got != want)} mismatches"
    assert np.array_equal(torch_reference(graph, t), want)  # what verification compares with PyTorch
    if kind != "argmax":
        assert len(np.unique(got)) == 2, "both decisions occur"
        assert graph.ops()[-1].op_type == "IntMVU" and graph.meta("output")["kind"] == (
            "decision" if kind == "decision" else "codes")


def test_wide_output_layer_has_wide_logits(tmp_path_factory):
    """8-bit weights and activations: more than 2^20 integer logits (refused before), all checked."""
    model, graph = _compiled("8bit-wide-logits", tmp_path_factory)
    fs = [o for o in graph.ops() if o.op_type == "FixedScale"][0]
    assert fs.attr("OutputBits") > 20
    out = graph.meta("output")
    assert out["exact_table"] is False and out["max_affine_error"] < 1e-4
    x = _images(50, (1, 8, 8))
    t = _torch_out(model, x)
    logits = execute_numpy(graph, x, logits=True)
    assert np.max(np.abs(out["scale"] * logits + out["bias"] - t)) <= 1e-5 * max(1.0, float(np.abs(t).max()))


@pytest.fixture(scope="module")
def bipolar_onnx(tmp_path_factory):
    """The default tier's model: QuantReLU, 4-bit float-scale weights, a bipolar output."""
    tmp = tmp_path_factory.mktemp("bipolar")
    kw = NUMPY_CASES["bipolar-output"][0]
    model = _mlp(**kw)
    return tmp, kw, model, export(model, tmp / "m.onnx", kw["shape"])


@pytest.fixture(scope="module")
def bipolar_build(bipolar_onnx):
    tmp, kw, model, path = bipolar_onnx
    return (tmp, kw, model, *_build(tmp, path, 8))


def test_float_scale_weights_are_off_the_float64_grid_but_accepted(bipolar_onnx):
    """Brevitas's default float scale: w / scale is not an integer in float64 for some 4-bit
    weights; they are accepted as the nearest integer, and half a step off is refused."""
    mw = load_qonnx(bipolar_onnx[3])
    off_grid = 0
    for name, info in sorted(mw.weight_quant.items()):
        w = mw.get_initializer(name).T
        q = w.astype(np.float64) / np.float64(info["scale"][0])
        off_grid += int(np.sum(q != np.rint(q)))
        wi, _rs, mode, bits = weight_integers(w, info, "layer 'x'")
        assert mode == "int" and bits == 4 and np.array_equal(wi, np.rint(q).astype(np.int64))
        bad = w.copy()
        bad[0, 0] = np.float32((np.rint(q[0, 0]) + 0.5) * np.float32(info["scale"][0]))
        with pytest.raises(UserError, match="weights are not integer multiples of their quantizer scale"):
            weight_integers(bad, info, "layer 'x'")
    assert off_grid > 0, "some weights are off the float64 grid"


def test_a_non_integer_weight_is_refused_through_the_flow(bipolar_onnx):
    mw = load_qonnx(bipolar_onnx[3])
    name = [n for n in mw.graph.node if n.op_type == "Gemm"][0].input[1]
    w = mw.get_initializer(name).copy()
    s = np.float32(mw.weight_quant[name]["scale"][0])
    w.flat[3] = np.float32(w.flat[3] + np.float32(0.25) * s)
    mw.set_initializer(name, w)
    with pytest.raises(UserError) as exc:
        streamline(mw)
    assert "weights are not integer multiples of their quantizer scale" in str(exc.value)


def test_a_one_bit_quant_relu_is_refused_with_the_reason(tmp_path, capsys):
    """Brevitas exports QuantReLU(bit_width=1) as Relu -> BipolarQuant, +scale for every value,
    while PyTorch gives 0 or scale (found by the fuzzer, seed 1, network 121)."""
    import brevitas.nn as qnn

    torch.manual_seed(0)
    model = torch.nn.Sequential(qnn.QuantIdentity(bit_width=8), torch.nn.Flatten(),
                                qnn.QuantLinear(16, 8, bias=False, weight_bit_width=4), torch.nn.BatchNorm1d(8),
                                qnn.QuantReLU(bit_width=1), qnn.QuantLinear(8, 4, bias=False, weight_bit_width=4))
    path = export(model, tmp_path / "relu1.onnx", shape=(1, 4, 4))
    assert [n.op_type for n in load_qonnx(path).graph.node].count("BipolarQuant") == 1
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Brevitas exports a 1-bit unsigned activation (QuantReLU with bit_width=1)" in err
    assert "Traceback" not in err and "bit_width >= 2" in err
    assert not (out / "rtl").exists()


# -- whole builds: numpy == RTL simulation == PyTorch ------------------------------------------

def _build(tmp_path, path, images, target=256):
    out = tmp_path / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", str(target),
                 "--verify-images", str(images)]) == 0
    return out, json.loads((out / "report.json").read_text())


def _check_build(tmp_path, model, out, report, kind, shape, n):
    assert report["verification"]["rtlsim"]["mismatches"] == 0
    x = _images(n, shape, seed=21)
    np.save(tmp_path / "x.npy", x)
    want = _expected(kind, _torch_out(model, x))
    for engine in ("numpy", "rtlsim"):
        y = tmp_path / f"y_{engine}.npy"
        assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--engine", engine,
                     "--output", str(y)]) == 0
        got = np.load(y)
        assert got.shape == want.shape and np.array_equal(got, want), f"{engine}: {np.sum(got != want)} mismatches"


@pytest.mark.sim
def test_bipolar_output_build_is_exact(bipolar_build):
    tmp, kw, model, out, report = bipolar_build
    assert report["output"]["kind"] == "codes"
    _check_build(tmp, model, out, report, "sign", kw["shape"], 6)
    from flow.deploy.driver import Accelerator

    acc = Accelerator(out / "deploy", backend="sim")
    assert acc.spec.emits == "codes" and acc.verify()["mismatches"] == 0
    x = _images(4, kw["shape"], seed=31)
    assert np.array_equal(acc.predict(x), _expected("sign", _torch_out(model, x)))


SLOW_BUILDS = {
    "relu-mlp-28x28": (dict(seed=7, shape=(1, 28, 28), hidden=(64, 32), out=10), "argmax"),
    "8bit-mlp-wide-logits": (dict(seed=8, shape=(1, 12, 12), hidden=(64,), out=10, wbits=8, abits=8), "argmax"),
    "bipolar-decision-28x28": (dict(seed=9, shape=(1, 28, 28), hidden=(64,), out=1, wbits=2, abits=2,
                                    final="bipolar"), "sign"),
    "single-output-decision": (NUMPY_CASES["single-output-decision"][0], "decision"),
}


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("name", sorted(SLOW_BUILDS))
def test_build_is_exact_on_many_inputs(name, tmp_path):
    kw, kind = SLOW_BUILDS[name]
    model = _mlp(**kw)
    out, report = _build(tmp_path, export(model, tmp_path / "m.onnx", kw["shape"]), 60, target=1024)
    _check_build(tmp_path, model, out, report, kind, kw["shape"], 60)


def test_logit_grid_of_a_range_beyond_2_25():
    """Up to 2^25 logits every one is checked; beyond, every logit within 2^22 of zero, both
    ends, and a spread of the rest, each float32 value once and in increasing order."""
    from flow.passes.lower_output import MAX_OUTPUT_VALUES, logit_grid

    assert np.array_equal(logit_grid(-5, 7), np.arange(-5, 8))
    assert len(logit_grid(0, MAX_OUTPUT_VALUES - 1)) == MAX_OUTPUT_VALUES
    lo, hi = -73_236_917, 73_236_916  # ResNet18-4w4a's output layer: 146,473,834 values
    g = logit_grid(lo, hi)
    assert g[0] == lo and g[-1] == hi and np.all(np.diff(g) > 0)
    assert np.all(np.diff(g.astype(np.float32)) > 0)  # distinct float32 values, increasing
    near = g[np.abs(g) <= 1 << 22]
    assert np.array_equal(near, np.arange(-(1 << 22), (1 << 22) + 1))
    assert len(g) < MAX_OUTPUT_VALUES
