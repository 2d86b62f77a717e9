"""Bad input ends with one sentence on stderr, exit code 2, no traceback, and no build
directory marked complete."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
}


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
    from flow.frontend import load_qonnx

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
