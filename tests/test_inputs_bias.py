"""Integer input types (--input-type, the input's datatype annotation, inputs of any rank,
unread graph inputs) and layer biases (float and Int32-quantized, folded into thresholds or
into the integer logits), each exact against PyTorch."""
from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from _cli import assert_refused, bnnflow
from _models import export, randomize_norms
from flow.cli import main
from flow.core.intype import parse
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline
from flow.sim.execute import execute_numpy
from flow.sim.verify import torch_logits


def _mlp(quant_bias: bool = False, hidden: int = 32, classes: int = 4) -> nn.Module:
    """FINN's cybersecurity MLP in small: 600 bipolar inputs, 2-bit weights with biases."""
    import brevitas.nn as qnn
    from brevitas.quant import Int32Bias

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = qnn.QuantLinear(600, hidden, bias=True, weight_bit_width=2)
            self.b1 = nn.BatchNorm1d(hidden)
            self.a1 = qnn.QuantIdentity(bit_width=2, return_quant_tensor=quant_bias)
            self.l2 = qnn.QuantLinear(hidden, hidden, bias=True, weight_bit_width=2)
            self.b2 = nn.BatchNorm1d(hidden)
            self.a2 = qnn.QuantIdentity(bit_width=2, return_quant_tensor=quant_bias)
            self.l3 = qnn.QuantLinear(hidden, classes, bias=True, weight_bit_width=2,
                                      bias_quant=Int32Bias if quant_bias else None)

        def forward(self, x):
            x = self.a2(self.b2(self.l2(self.a1(self.b1(self.l1(x))))))
            return self.l3(x)

    return MLP()


def _cnn() -> nn.Module:
    """Convolutions with biases reading the float image directly (no input quantizer)."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerTensorFixedPoint as Po2

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = qnn.QuantConv2d(3, 8, 3, padding=1, bias=True, weight_bit_width=4, weight_quant=Po2)
            self.b1 = nn.BatchNorm2d(8)
            self.a1 = qnn.QuantIdentity(bit_width=3)
            self.c2 = qnn.QuantConv2d(8, 8, 3, bias=True, weight_bit_width=3, weight_quant=Po2)
            self.b2 = nn.BatchNorm2d(8)
            self.a2 = qnn.QuantIdentity(bit_width=3)
            self.fc = qnn.QuantLinear(8 * 2 * 2, 5, bias=True, weight_bit_width=2)

        def forward(self, x):
            x = nn.functional.max_pool2d(self.a1(self.b1(self.c1(x))), 2)
            x = self.a2(self.b2(self.c2(x)))
            return self.fc(torch.flatten(x, 1))

    return CNN()


def _seq(input_quant: bool) -> nn.Module:
    """A (N, C, L) input, flattened into two layers with biases."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerTensorFixedPoint as Po2

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(bit_width=4) if input_quant else nn.Identity()
            self.l1 = qnn.QuantLinear(4 * 12, 16, bias=True, weight_bit_width=3, weight_quant=Po2)
            self.b1 = nn.BatchNorm1d(16)
            self.a1 = qnn.QuantIdentity(bit_width=3)
            self.l2 = qnn.QuantLinear(16, 5, bias=True, weight_bit_width=3, weight_quant=Po2)

        def forward(self, x):
            return self.l2(self.a1(self.b1(self.l1(torch.flatten(self.q(x), 1)))))

    return Seq()


# name: (model factory, input shape, input type, how the type reaches bnnflow)
MODELS = {
    "mlp_bipolar": (lambda: _mlp(), (600,), "bipolar", "flag"),
    "mlp_int32_bias": (lambda: _mlp(quant_bias=True), (600,), "bipolar", "annotation"),
    "cnn_uint8": (_cnn, (3, 8, 8), "uint8", "flag"),
    "seq_fixed": (lambda: _seq(True), (4, 12), "fixed<6,3>", "flag"),
    "seq_int8_extra_input": (lambda: _seq(False), (4, 12), "int8", "flag"),
}


def _add_unread_input(path):
    m = onnx.load(str(path))
    m.graph.input.append(onnx.helper.make_tensor_value_info("unused_scale", onnx.TensorProto.FLOAT, [1]))
    onnx.save(m, str(path))


def _annotate(path, datatype: str):
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    mw = ModelWrapper(str(path))
    mw.set_tensor_datatype(mw.graph.input[0].name, DataType[datatype])
    mw.save(str(path))


class _Exported(dict):
    """Each model with random weights and BatchNorm (both signs of gamma), exported on first use."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def __missing__(self, name):
        make, shape, tname, how = MODELS[name]
        k = sorted(MODELS).index(name)
        torch.manual_seed(10 + k)
        model = randomize_norms(make(), 20 + k)
        path = export(model, self.root / f"{name}.onnx", shape)
        if how == "annotation":
            _annotate(path, tname.upper())
        if "extra_input" in name:
            _add_unread_input(path)
        self[name] = (model, path, shape, tname, how)
        return self[name]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return _Exported(tmp_path_factory.mktemp("inputs_bias"))


# the default run exports two of the models; the others are in the slow tier
DEFAULT = ("mlp_int32_bias", "seq_int8_extra_input")
PARAMS = [pytest.param(n, marks=() if n in DEFAULT else pytest.mark.slow) for n in sorted(MODELS)]


@pytest.mark.parametrize("name", PARAMS)
def test_numpy_reference_equals_pytorch(name, exported):
    model, path, shape, tname, how = exported[name]
    mw = load_qonnx(path)
    graph = streamline(mw, declared=parse(tname) if how == "flag" else None)
    x = parse(tname).random(300, shape, seed=7)
    scale = graph.meta("input")["scale"]
    want = torch_logits(model, x, scale).argmax(axis=1)
    assert int(np.sum(execute_numpy(graph, x) != want)) == 0
    assert graph.meta("input")["type"]["name"] == tname
    if "extra_input" in name:
        assert mw.load_notes and "'unused_scale'" in mw.load_notes[0] and "dropped" in mw.load_notes[0]


@pytest.mark.slow
def test_biases_enter_the_output_logits(exported):
    """A float bias needs fraction bits in the integer logits; an Int32 bias (integer
    multiples of the accumulator step) needs none."""
    ks = {}
    for name in ("mlp_bipolar", "mlp_int32_bias"):
        _model, path, _shape, tname, _how = exported[name]
        graph = streamline(load_qonnx(path), declared=parse(tname))
        fs = [o for o in graph.ops() if o.op_type == "FixedScale"][0]
        ks[name] = int(fs.param("mult")[0])  # a * 2^k, a = 1 for the signed 2-bit hidden codes
        assert len(set(fs.param("bias").tolist())) > 1
    assert ks["mlp_int32_bias"] == 1 and ks["mlp_bipolar"] > 1


def _order_kept(B: list, k: int, beta: np.ndarray) -> int:
    """Pairs (c, d) and integer logit differences L_c - L_d on which 2^k*L + beta orders two
    classes otherwise than L + B does in exact arithmetic (ties included); every difference
    that can change the order is tried."""
    wrong = 0
    for c in range(len(B)):
        for d in range(len(B)):
            r = B[d] - B[c]
            for delta in range(math.floor(r) - 2, math.floor(r) + 3):
                real = (delta > r) - (delta < r)
                hw = int(delta * (1 << k) - (beta[d] - beta[c]))
                wrong += real != (hw > 0) - (hw < 0)
    return wrong


def test_output_bias_grid_keeps_exact_order():
    """Float biases tens of thousands of accumulator steps large (8-bit layers), two of whose
    fractions lie 7e-4 steps apart: the integer parts and the fractions' ranks order every pair
    exactly with ceil(log2(classes)) fraction bits."""
    from fractions import Fraction

    from flow.passes.lower_output import _bias_grid

    m = np.float32(1.219987e-06)
    rng = np.random.default_rng(3)
    steps = rng.integers(-40000, 40000, 10) + np.array([0.18, 0.2188, 0.3124, 0.46884, 0.46894, 0.5312, 0.5599,
                                                        0.6242, 0.875, 0.9372])
    bias = (steps * np.float64(m)).astype(np.float32)
    B = [Fraction(float(b)) / Fraction(float(m)) for b in bias]
    k, beta, frac = _bias_grid(B)
    assert k == 4 and len(frac) == 16
    assert _order_kept(B, k, beta) == 0
    whole = [Fraction(n) for n in (3, -7, 3, 12)]  # Int32 biases: no fraction bits, beta = B
    assert _bias_grid(whole)[:2][0] == 0 and _bias_grid(whole)[1].tolist() == [3, -7, 3, 12]
    shared = [Fraction(1, 2) + n for n in (3, -7, 4)]  # one shared fraction: order by the integer parts
    k, beta, frac = _bias_grid(shared)
    assert (k, beta.tolist(), frac.tolist()) == (0, [3, -7, 4], [0.5])
    assert _order_kept(shared, k, beta) == 0


def test_input_types_map_values_to_wire_codes():
    cases = {"uint8": (0, 255, 8, [0, 255], [0, 255]), "int8": (-128, 127, 8, [-128, 0, 127], [0, 128, 255]),
             "bipolar": (-1, 1, 1, [-1, 1], [0, 1]), "binary": (0, 1, 1, [0, 1], [0, 1]),
             "fixed<6,3>": (-32, 31, 6, [-32, 31], [0, 63])}
    for text, (lo, hi, bits, vals, codes) in cases.items():
        t = parse(text)
        assert (t.lo, t.hi, t.bits) == (lo, hi, bits)
        assert t.to_codes(np.array(vals)).tolist() == codes
        assert t.check(np.array(vals, np.int64)) is None
    assert parse("fixed<6,3>").float_values(np.array([8])).tolist() == [1.0]
    assert "-1 or +1" in parse("bipolar").check(np.array([0, 1]))
    assert "int8" in parse("int8").check(np.array([200]))
    with pytest.raises(ValueError, match="expected one of"):
        parse("uint9")


def test_driver_takes_bipolar_values():
    from flow.deploy.driver import IOSpec, check_images, pack_images

    spec = IOSpec(input_shape=(2, 3), wire_axes=(0, 2, 1), in_lanes=1, in_elem_bits=1, in_beats=6, out_lanes=1,
                  out_elem_bits=2, out_beats=1, out_elems=1, out_signed=False, emits="top1", classes=4,
                  logits_scale=1.0, logits_bias=0.0, design_hash="0" * 16, input_name="bipolar", input_lo=-1,
                  input_hi=1, input_stride=2)
    x = np.array([[[1, -1, 1], [-1, -1, 1]]], np.int8)
    # channels last: (c0,l0) (c1,l0) (c0,l1) ... as 1-bit codes, 0 for -1
    bits = np.unpackbits(pack_images(spec, x), axis=1, bitorder="little")[:, 0]
    assert bits.tolist() == [1, 0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"bipolar values \(-1 or \+1\)"):
        check_images(spec, np.zeros((1, 2, 3), np.int8))


@pytest.mark.parametrize("value,words", [("uint9", ["--input-type", "uint8", "bipolar", "uint9"]),
                                         ("fixed<20,2>", ["--input-type", "fixed<W,I>", "20"])])
def test_bad_input_types_are_refused(value, words, tmp_path):
    assert_refused(bnnflow("build", tmp_path / "m.onnx", "--out", tmp_path / "o", "--input-type", value), *words)


def test_input_scale_with_an_input_type_is_refused(tmp_path, exported):
    path = exported["seq_int8_extra_input"][1]
    res = bnnflow("build", path, "--out", tmp_path / "o", "--quiet", "--input-type", "uint8", "--input-scale", "0.5")
    assert_refused(res, "--input-scale", "--input-type")


def test_float_input_without_a_type_names_the_option(tmp_path, exported):
    res = bnnflow("build", exported["seq_int8_extra_input"][1], "--out", tmp_path / "o", "--quiet")
    assert_refused(res, "unquantized float input", "--input-type")


def _build(path, out, tname, how, images, target=None):
    args = ["build", str(path), "--out", str(out), "--quiet", "--verify-images", str(images)]
    if how == "flag":
        args += ["--input-type", tname]
    if target is not None:
        args += ["--target-cycles", str(target)]
    assert main(args) == 0
    return json.loads((out / "report.json").read_text())


def _run_rtl_against_pytorch(out, model, x, tmp_path):
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--engine", "rtlsim",
                 "--output", str(tmp_path / "y.npy")]) == 0
    scale = json.loads((out / "report.json").read_text())["input"]["scale"]
    return int(np.sum(np.load(tmp_path / "y.npy") != torch_logits(model, x, scale).argmax(axis=1)))


@pytest.mark.sim
def test_annotated_bipolar_mlp_builds_exactly(exported, tmp_path):
    """The default-tier representative: the input type from the file's annotation, a
    quantized bias, RTL equal to numpy and PyTorch."""
    model, path, shape, tname, how = exported["mlp_int32_bias"]
    report = _build(path, tmp_path / "out", tname, how, 8)
    v = report["verification"]
    assert v["rtlsim"]["mismatches"] == 0 and v["rtlsim"]["images"] == 8
    assert report["input"]["type"]["name"] == "bipolar"
    x = parse(tname).random(6, shape, seed=11)
    assert _run_rtl_against_pytorch(tmp_path / "out", model, x, tmp_path) == 0
    np.save(tmp_path / "zeros.npy", np.zeros((2, *shape), np.int8))
    assert_refused(bnnflow("run", tmp_path / "out", "--input", tmp_path / "zeros.npy"), "bipolar", "-1 or +1", "0")
    # the driver takes -1/+1 inputs and sends them as 0/1 codes
    from flow.deploy.driver import Accelerator

    io = json.loads((tmp_path / "out" / "deploy" / "io.json").read_text())
    assert {k: io["input_values"][k] for k in ("name", "lo", "hi", "stride")} == {"name": "bipolar", "lo": -1,
                                                                                 "hi": 1, "stride": 2}
    with Accelerator(tmp_path / "out", backend="sim") as acc:
        assert acc.verify()["mismatches"] == 0
        assert np.array_equal(acc.predict(x), torch_logits(model, x, 1.0).argmax(axis=1))


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_build_and_verify_in_rtl(name, exported, tmp_path):
    model, path, shape, tname, how = exported[name]
    report = _build(path, tmp_path / "out", tname, how, 60)
    v = report["verification"]
    assert v["rtlsim"]["mismatches"] == 0 and v["rtlsim"]["images"] == 60
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est
    x = parse(tname).random(60, shape, seed=12)
    assert _run_rtl_against_pytorch(tmp_path / "out", model, x, tmp_path) == 0
