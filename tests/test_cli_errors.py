"""Bad input ends with one sentence on stderr, exit code 2, no traceback, and no build
directory marked complete."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from _models import export, zoo_mlp


def bnnflow(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "flow.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def assert_refused(res, *words):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 or lines[0].startswith("usage:"), err
    for w in words:
        assert w.lower() in err.lower(), (w, err)


@pytest.fixture(scope="module")
def good_onnx(tmp_path_factory):
    return export(zoo_mlp(seed=1, hidden=(16,)), tmp_path_factory.mktemp("good") / "mlp.onnx")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _save(model, path):
    onnx.save(model, str(path))
    return path


def _float_mlp(tmp):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    path = tmp / "float.onnx"
    torch.onnx.export(net, torch.rand(1, 1, 28, 28), str(path), dynamo=False)
    return path


def _with_op(tmp, good, op_type):
    m = onnx.load(str(good))
    last = m.graph.node[-1]
    new_out = last.output[0] + "_pre"
    old = last.output[0]
    last.output[0] = new_out
    m.graph.node.append(helper.make_node(op_type, [new_out], [old], name=f"bad_{op_type}"))
    return _save(m, tmp / f"with_{op_type}.onnx")


CASES = {
    "missing file": (lambda tmp, good: tmp / "nope.onnx", ["does not exist"]),
    "not onnx": (lambda tmp, good: _write(tmp / "text.onnx", b"hello"), ["onnx"]),
    "truncated": (lambda tmp, good: _write(tmp / "trunc.onnx", good.read_bytes()[:500]), ["onnx"]),
    "empty graph": (lambda tmp, good: _save(helper.make_model(helper.make_graph([], "g", [], [])), tmp / "empty.onnx"),
                    ["empty"]),
    "float-only model": (lambda tmp, good: _float_mlp(tmp), ["float"]),
    "unsupported op": (lambda tmp, good: _with_op(tmp, good, "Softmax"), ["node", "Softmax"]),
    "unsupported op relu": (lambda tmp, good: _with_op(tmp, good, "Relu"), ["Relu"]),
    "dynamic shape": (lambda tmp, good: _dynamic(tmp, good), ["dynamic"]),
    "missing external data": (lambda tmp, good: _external(tmp, good), ["external data"]),
    "quantizer with a zero point": (lambda tmp, good: _act_quant(tmp, good, zero_point=1.0), ["zero point"]),
    "non-integer bit width": (lambda tmp, good: _act_quant(tmp, good, bits=2.5), ["bit width"]),
    "per-channel activation scale": (lambda tmp, good: _per_channel_scale(tmp, good), ["per-channel"]),
    "float weights": (lambda tmp, good: _float_weights(tmp, good), ["float weights"]),
    "branching graph": (lambda tmp, good: _branch(tmp, good), ["read 2 times", "single input path"]),
    "two inputs": (lambda tmp, good: _two_inputs(tmp, good), ["inputs"]),
    "weights unlike their datatype": (lambda tmp, good: _annotated(tmp, good, 0.5), ["annotated BIPOLAR", "0.5"]),
}


def _annotated(tmp, good, value):
    """Float weights annotated BIPOLAR (as FINN-style graphs carry them) holding another value."""
    m = onnx.load(str(good))
    wq = _node(m, "BipolarQuant", 1)
    gemm = _node(m, "Gemm", 0)
    w = onnx.numpy_helper.to_array([i for i in m.graph.initializer if i.name == wq.input[0]][0])
    w = np.where(w >= 0, 1.0, -1.0).astype(np.float32)
    w.flat[3] = value
    m.graph.initializer.append(onnx.numpy_helper.from_array(w, "annotated_w"))
    gemm.input[1] = "annotated_w"
    m.graph.node.remove(wq)
    ann = onnx.TensorAnnotation()
    ann.tensor_name = "annotated_w"
    kv = ann.quant_parameter_tensor_names.add()
    kv.key, kv.value = "finn_datatype", "BIPOLAR"
    m.graph.quantization_annotation.append(ann)
    return _save(m, tmp / "annotated.onnx")


def test_weights_annotated_bipolar_are_accepted(tmp_path, good_onnx):
    from flow.frontend.load import load_qonnx
    from flow.passes.streamline import streamline

    path = _annotated(tmp_path, good_onnx, -1.0)
    graph = streamline(load_qonnx(path))
    assert [o.op_type for o in graph.ops()][:2] == ["Thresholding", "BinaryMVU"]


def _node(m, op_type, k=0):
    return [n for n in m.graph.node if n.op_type == op_type][k]


def _act_quant(tmp, good, zero_point=0.0, bits=2.0):
    """Replace the first hidden activation BipolarQuant by a QONNX Quant."""
    m = onnx.load(str(good))
    q = _node(m, "BipolarQuant", 2)
    for name, val in (("s1", 1.0), ("z1", zero_point), ("b1", bits)):
        m.graph.initializer.append(onnx.numpy_helper.from_array(np.array(val, dtype=np.float32), name))
    q.op_type = "Quant"
    del q.input[1:]
    q.input.extend(["s1", "z1", "b1"])
    q.attribute.extend([helper.make_attribute("signed", 1), helper.make_attribute("narrow", 0),
                        helper.make_attribute("rounding_mode", "ROUND")])
    return _save(m, tmp / "quant.onnx")


def _per_channel_scale(tmp, good):
    m = onnx.load(str(good))
    q = _node(m, "BipolarQuant", 2)
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 16), np.float32), "s16"))
    q.input[1] = "s16"
    return _save(m, tmp / "pcs.onnx")


def _float_weights(tmp, good):
    m = onnx.load(str(good))
    wq = _node(m, "BipolarQuant", 1)
    gemm = _node(m, "Gemm", 0)
    gemm.input[1] = wq.input[0]
    m.graph.node.remove(wq)
    return _save(m, tmp / "floatw.onnx")


def _branch(tmp, good):
    """A skip connection in the preprocessing: x*2 + x feeds the rest."""
    m = onnx.load(str(good))
    mul, sub = _node(m, "Mul", 0), _node(m, "Sub", 0)
    skip = helper.make_node("Add", [mul.output[0], mul.input[0]], ["skip_sum"], name="skip_add")
    m.graph.node.insert(list(m.graph.node).index(sub), skip)
    sub.input[0] = "skip_sum"
    return _save(m, tmp / "branch.onnx")


def _two_inputs(tmp, good):
    """A second graph input that a node reads (the preprocessing's Mul takes it)."""
    m = onnx.load(str(good))
    m.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]))
    _node(m, "Mul", 0).input[1] = "extra"
    return _save(m, tmp / "two.onnx")


def _dynamic(tmp, good):
    m = onnx.load(str(good))
    d = m.graph.input[0].type.tensor_type.shape.dim[2]
    d.Clear()
    d.dim_param = "height"
    return _save(m, tmp / "dyn.onnx")


def _external(tmp, good):
    m = onnx.load(str(good))
    d = tmp / "ext"
    d.mkdir()
    onnx.save(m, str(d / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    (d / "weights.bin").unlink()
    return d / "m.onnx"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_model_is_refused(case, tmp_path, good_onnx):
    make, words = CASES[case]
    path = make(tmp_path, good_onnx)
    out = tmp_path / "out"
    res = bnnflow("build", path, "--out", out, "--quiet")
    assert_refused(res, *words)
    assert not (out / "report.json").exists()


def test_external_data_next_to_the_file_is_read(tmp_path, good_onnx):
    from flow.frontend.load import load_qonnx

    m = onnx.load(str(good_onnx))
    onnx.save(m, str(tmp_path / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").stat().st_size > 0
    load_qonnx(tmp_path / "m.onnx")


def test_folding_that_does_not_divide_is_refused(tmp_path, good_onnx):
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"BinaryMVU_0": {"PE": 3, "SIMD": 16}}))
    res = bnnflow("build", good_onnx, "--out", tmp_path / "o", "--folding", fold, "--quiet")
    assert_refused(res, "PE=3", "BinaryMVU_0")
    assert not (tmp_path / "o" / "report.json").exists()


def test_unknown_board_and_bad_options_are_refused(tmp_path, good_onnx):
    assert_refused(bnnflow("build", good_onnx, "--out", tmp_path / "o", "--board", "nosuchboard"), "board")
    assert_refused(bnnflow("build", good_onnx, "--out", tmp_path / "o", "--target-fps", "-3"))
    assert_refused(bnnflow("build", "no-such-zoo-model", "--out", tmp_path / "o"), "unknown model")


def test_run_refuses_bad_inputs(tmp_path):
    assert_refused(bnnflow("run", tmp_path, "--input", tmp_path / "x.npy"), "build directory")
    assert_refused(bnnflow("verify", tmp_path), "build directory")


@pytest.fixture(scope="module")
def numpy_build(tmp_path_factory, good_onnx):
    """A build directory with its graph (the rtl steps are not needed for these checks)."""
    from flow.pipeline.build import STEPS, BuildConfig, StepContext, run_in_memory

    out = tmp_path_factory.mktemp("nb")
    st = run_in_memory(StepContext(BuildConfig(model=str(good_onnx), out=out, progress=False)), STEPS[:4])
    st.graph.save(out / "dataflow.onnx")
    return out


@pytest.mark.parametrize("case", ["float images", "wrong shape", "not npy", "pickled npy"])
def test_run_refuses_bad_images(case, tmp_path, numpy_build):
    x = tmp_path / "x.npy"
    if case == "float images":
        np.save(x, np.zeros((2, 1, 28, 28), np.float32))
        words = ["uint8"]
    elif case == "wrong shape":
        np.save(x, np.zeros((2, 1, 27, 28), np.uint8))
        words = ["shaped"]
    elif case == "not npy":
        x.write_text("not an array")
        words = [".npy"]
    else:
        np.save(x, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        words = [".npy"]
    assert_refused(bnnflow("run", numpy_build, "--input", x, "--engine", "numpy"), *words)


def test_verify_refuses_unknown_engines(tmp_path, numpy_build):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.uint8))
    assert_refused(bnnflow("verify", numpy_build, "--engines", "numpy,gpu"), "gpu")


@pytest.mark.parametrize("content,words", [("{not json", ["JSON"]), ('{"BinaryMVU_0": {"PE": 0}}', ["positive"]),
                                           ("[1, 2]", ["object"])])
def test_bad_folding_files(content, words, tmp_path, good_onnx):
    fold = tmp_path / "fold.json"
    fold.write_text(content)
    res = bnnflow("build", good_onnx, "--out", tmp_path / "o", "--folding", fold, "--quiet")
    assert_refused(res, *words)
    assert not (tmp_path / "o" / "report.json").exists()
