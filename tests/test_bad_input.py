"""The bad-input corpus, continued (tests/test_cli_errors.py holds the first part): external
data, quantizer bit widths, folding files, numeric options, `run` inputs and outputs, build
directories that hold no dataflow graph, and checkpoints. Every case ends with one sentence
on stderr and exit code 2, no traceback; a refused build leaves no report.json and writes
nothing outside --out. All are refused before any Verilator compile."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from _models import export, zoo_mlp
from test_cli_errors import _node, _save, assert_refused, bnnflow


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return export(zoo_mlp(seed=1, hidden=(16,)), tmp_path_factory.mktemp("good") / "mlp.onnx")


def _listing(root, skip):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p != skip and skip not in p.parents)


def refused_in_process(capsys, *args):
    """The CLI's exit code and stderr, run in this process: for the commands that load torch
    and brevitas, whose import alone takes seconds per subprocess."""
    from flow.cli import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code
    return SimpleNamespace(returncode=rc, stdout="", stderr=capsys.readouterr().err)


def refused_build(tmp, model, words, *options, env=None):
    """`bnnflow build MODEL --out tmp/out` is refused: one sentence naming `words`, exit 2,
    no report.json, nothing written outside tmp/out."""
    out = tmp / "out"
    before = _listing(tmp, out)
    res = subprocess.run([sys.executable, "-m", "flow.cli", "build", str(model), "--out", str(out), "--quiet",
                          *map(str, options)], capture_output=True, text=True, env=env)
    assert_refused(res, *words)
    assert not (out / "report.json").exists()
    assert _listing(tmp, out) == before


# ---------------------------------------------------------------------------------------
# external data


def _ext(tmp, good, **change):
    """The model with its tensors in weights.bin; `change` sets external-data keys of the
    first weight matrix (features.1.weight)."""
    m = onnx.load(str(good))
    d = tmp / "ext"
    d.mkdir()
    onnx.save(m, str(d / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    mm = onnx.load(str(d / "m.onnx"), load_external_data=False)
    init = [i for i in mm.graph.initializer if i.name == "features.1.weight"][0]
    for key, value in change.items():
        if key == "dims":
            del init.dims[:]
            init.dims.extend(value)
            continue
        entry = [e for e in init.external_data if e.key == key] or [init.external_data.add()]
        entry[0].key, entry[0].value = key, str(value)
    (d / "m.onnx").write_bytes(mm.SerializeToString())
    return d


def _ext_symlink(tmp, good):
    d = _ext(tmp, good, location="link.bin")
    os.symlink(tmp / "outside.bin", d / "link.bin")
    (tmp / "outside.bin").write_bytes((d / "weights.bin").read_bytes())
    return d


def _ext_sparse(tmp, good):
    """2 GiB of declared external data, consistent with the tensor's shape, in a sparse file."""
    d = _ext(tmp, good, location="big.bin", offset=0, length=2 << 30, dims=[1 << 29])
    with open(d / "big.bin", "wb") as f:
        f.truncate(2 << 30)
    return d


EXTERNAL = {
    "NUL in the location": (lambda tmp, good: _ext(tmp, good, location="weights\0.bin"), ["NUL"]),
    "location climbing out": (lambda tmp, good: _ext(tmp, good, location="../../etc/passwd"),
                              ["outside the model's folder", "../../etc/passwd"]),
    "absolute location": (lambda tmp, good: _ext(tmp, good, location="/etc/passwd"), ["outside the model's folder"]),
    "symlink out of the folder": (_ext_symlink, ["leads outside the model's folder"]),
    "offset beyond the file": (lambda tmp, good: _ext(tmp, good, offset=10 ** 9), ["beyond the end", "weights.bin"]),
    "length beyond the file": (lambda tmp, good: _ext(tmp, good, length=2 << 30), ["beyond the end"]),
    "negative offset": (lambda tmp, good: _ext(tmp, good, offset=-5), ["negative offset"]),
    "non-integer length": (lambda tmp, good: _ext(tmp, good, length="lots"), ["non-integer"]),
    "length unlike the shape": (lambda tmp, good: _ext(tmp, good, length=16), ["declares 16 bytes", "needs 50176"]),
    "2 GiB declared": (_ext_sparse, ["bytes of external data, more than the 1073741824", "BNNFLOW_MAX_EXTERNAL_BYTES"]),
}


@pytest.mark.parametrize("case", sorted(EXTERNAL))
def test_bad_external_data_is_refused_before_reading(case, tmp_path, good):
    make, words = EXTERNAL[case]
    d = make(tmp_path, good)
    refused_build(tmp_path, d / "m.onnx", words)


def test_external_data_budget_is_configurable(tmp_path, good):
    d = _ext(tmp_path, good)
    refused_build(tmp_path, d / "m.onnx", ["51116 bytes of external data", "40000"],
                  env={**os.environ, "BNNFLOW_MAX_EXTERNAL_BYTES": "40000"})
    refused_build(tmp_path, d / "m.onnx", ["BNNFLOW_MAX_EXTERNAL_BYTES", "'lots'"],
                  env={**os.environ, "BNNFLOW_MAX_EXTERNAL_BYTES": "lots"})
    from flow.frontend.load import load_qonnx

    os.environ["BNNFLOW_MAX_EXTERNAL_BYTES"] = "80000"
    try:
        load_qonnx(d / "m.onnx")  # the model file (27 kB) and its data (51 kB) fit
    finally:
        del os.environ["BNNFLOW_MAX_EXTERNAL_BYTES"]


# ---------------------------------------------------------------------------------------
# quantizer bit widths


def _quant(tmp, good, which: int, bits, narrow: int = 0):
    """BipolarQuant number `which` (1: the first weights, 2: the first hidden activation)
    replaced by a QONNX Quant of bit width `bits`."""
    m = onnx.load(str(good))
    q = _node(m, "BipolarQuant", which)
    for name, val in (("s1", 1.0), ("z1", 0.0)):
        m.graph.initializer.append(numpy_helper.from_array(np.array(val, dtype=np.float32), name))
    m.graph.initializer.append(numpy_helper.from_array(np.asarray(bits, dtype=np.float32), "b1"))
    q.op_type = "Quant"
    del q.input[1:]
    q.input.extend(["s1", "z1", "b1"])
    q.attribute.extend([helper.make_attribute("signed", 1), helper.make_attribute("narrow", narrow),
                        helper.make_attribute("rounding_mode", "ROUND")])
    return _save(m, tmp / "quant.onnx")


BIT_WIDTHS = {
    "activation NaN": (2, np.nan, ["holds nan", "finite"]),
    "activation inf": (2, np.inf, ["holds inf", "finite"]),
    "activation negative": (2, -3.0, ["bit width -3"]),
    "activation huge": (2, 1e30, ["bit width 1e+30"]),
    "activation two widths": (2, [2.0, 2.0], ["2 bit widths"]),
    "weights NaN": (1, np.nan, ["holds nan", "finite"]),
    "weights inf": (1, np.inf, ["holds inf", "finite"]),
    "weights negative": (1, -3.0, ["weight quantizer", "bit width -3"]),
    "weights 40 bits": (1, 40.0, ["weight quantizer", "bit width 40", "1..16"]),
    "weights 2.5 bits": (1, 2.5, ["weight quantizer", "bit width 2.5"]),
}


@pytest.mark.parametrize("case", sorted(BIT_WIDTHS))
def test_bad_quantizer_bit_widths_are_refused(case, tmp_path, good):
    which, bits, words = BIT_WIDTHS[case]
    refused_build(tmp_path, _quant(tmp_path, good, which, bits, narrow=int(which == 1)), words)


# ---------------------------------------------------------------------------------------
# folding files (the design: Thresholding_0, BinaryMVU_0 (784 -> 16), BinaryMVU_1, LabelSelect_0)

FOLDING = {
    "PE of 2**63": ('{"BinaryMVU_0": {"PE": 9223372036854775808, "SIMD": 16}}', ["BinaryMVU_0.PE", "positive integer"]),
    "PE true": ('{"BinaryMVU_0": {"PE": true, "SIMD": 16}}', ["BinaryMVU_0.PE", "True"]),
    "PE 2.0": ('{"BinaryMVU_0": {"PE": 2.0, "SIMD": 16}}', ["BinaryMVU_0.PE", "2.0"]),
    "PE as a string": ('{"BinaryMVU_0": {"PE": "4"}}', ["BinaryMVU_0.PE", "'4'"]),
    "negative SIMD": ('{"BinaryMVU_0": {"SIMD": -16}}', ["BinaryMVU_0.SIMD", "-16"]),
    "quote in ram_style": ('{"BinaryMVU_0": {"PE": 4, "ram_style": "bl\\"ock"}}', ["ram_style", "auto, block"]),
    "unknown ram_style": ('{"BinaryMVU_0": {"ram_style": "ultra_fast"}}', ["ultra_fast", "distributed, ultra"]),
    "ram_style not a string": ('{"BinaryMVU_0": {"ram_style": 3}}', ["ram_style", "got 3"]),
    "misspelled node": ('{"BinaryMVU_O": {"PE": 4, "SIMD": 16}}',
                        ["'BinaryMVU_O' is not a node", "Thresholding_0, BinaryMVU_0, BinaryMVU_1, LabelSelect_0"]),
    "misspelled attribute": ('{"BinaryMVU_0": {"pe": 4}}', ["no attribute 'pe'", "accepted: PE, SIMD, ram_style"]),
    "attribute of another op": ('{"Thresholding_0": {"SIMD": 4}}', ["Thresholding_0", "'SIMD'", "accepted: PE,"]),
    "FINN index beyond the design": ('{"MVAU_hls_5": {"PE": 4}}', ["MVAU_hls_5", "has 2", "BinaryMVU_0, BinaryMVU_1"]),
    "one node twice": ('{"MVAU_hls_0": {"PE": 4}, "BinaryMVU_0": {"PE": 2}}', ["both name BinaryMVU_0"]),
    "PE in Defaults": ('{"Defaults": {"PE": 4}}', ["Defaults.PE"]),
    "Defaults not an object": ('{"Defaults": []}', ["Defaults must be an object"]),
    "entry not an object": ('{"BinaryMVU_0": 4}', ["BinaryMVU_0 must be an object"]),
    "FIFO depth true": ('{"BinaryMVU_0": {"inFIFODepths": [true]}}', ["inFIFODepths", "positive integers"]),
    "nested 100,000 deep": ('{"a":' * 100_000 + "1" + "}" * 100_000, ["nested too deeply"]),
    "17 MiB file": ('{"Defaults": {}, "x": "' + "a" * (17 << 20) + '"}', ["bytes, more than the 16777216"]),
}


@pytest.mark.parametrize("case", sorted(FOLDING))
def test_bad_folding_file_is_refused(case, tmp_path, good):
    content, words = FOLDING[case]
    fold = tmp_path / "fold.json"
    fold.write_text(content)
    refused_build(tmp_path, good, words, "--folding", fold)


def test_finn_attributes_and_plumbing_ops_are_accepted(tmp_path, good):
    """FINN's own folding files carry attributes and ops without a counterpart here."""
    from flow.passes.fold import apply_folding_file
    from flow.frontend.load import load_qonnx
    from flow.passes.streamline import streamline

    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"Defaults": {"mem_mode": ["internal_decoupled", ["MVAU_hls"]]},
                                "MVAU_hls_0": {"PE": 4, "SIMD": 16, "ram_style": "block", "mem_mode": "internal_decoupled",
                                               "resType": "lut", "runtime_writeable_weights": 0},
                                "StreamingFIFO_rtl_0": {"depth": 32, "impl_style": "rtl"},
                                "Thresholding_hls_0": {"PE": 16, "ram_style": "distributed"}}))
    g = apply_folding_file(streamline(load_qonnx(good)), fold)
    mvu = [o for o in g.ops() if o.name == "BinaryMVU_0"][0]
    assert (mvu.attr("PE"), mvu.attr("SIMD"), mvu.attr("ram_style")) == (4, 16, "block")


# ---------------------------------------------------------------------------------------
# numeric options (refused by the argument parser, before anything runs)

OPTIONS = {
    "clock nan": ("build", ["--clock-mhz", "nan"], ["--clock-mhz"]),
    "clock inf": ("build", ["--clock-mhz", "inf"], ["--clock-mhz"]),
    "clock 1e300": ("build", ["--clock-mhz", "1e300"], ["--clock-mhz", "at most 10000"]),
    "fps inf": ("build", ["--target-fps", "inf"], ["--target-fps", "finite"]),
    "fps nan": ("build", ["--target-fps", "nan"], ["--target-fps"]),
    "input scale nan": ("build", ["--input-scale", "nan"], ["--input-scale"]),
    "input scale inf": ("build", ["--input-scale", "inf"], ["--input-scale", "finite"]),
    "input scale beyond float32": ("build", ["--input-scale", "1e37"], ["--input-scale", "float32"]),
    "verify 10**12 images": ("build", ["--verify-images", str(10 ** 12)], ["--verify-images", "at most 100000"]),
    "target cycles 2**64": ("build", ["--target-cycles", str(2 ** 64)], ["--target-cycles"]),
    "stall seed -1": ("verify", ["--stall-seed", "-1"], ["--stall-seed", "0 to 4294967295"]),
    "stall seed 2**40": ("verify", ["--stall-seed", str(2 ** 40)], ["--stall-seed"]),
    "verify 10**12": ("verify", ["--images", str(10 ** 12)], ["--images"]),
    "epochs 0": ("train", ["--epochs", "0"], ["--epochs"]),
    "train seed -1": ("train", ["--seed", "-1"], ["--seed"]),
    "train seed 2**70": ("train", ["--seed", str(2 ** 70)], ["--seed"]),
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_bad_numeric_options_are_refused(case, tmp_path, good):
    command, options, words = OPTIONS[case]
    target = {"build": [good, "--out", tmp_path / "out"], "verify": [tmp_path], "train": ["tfc-w1a1", "--out",
                                                                                          tmp_path / "out"]}[command]
    assert_refused(bnnflow(command, *target, *options), *words)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# bnnflow run: images, --output, the build directory


@pytest.fixture(scope="module")
def built(tmp_path_factory, good):
    """A build directory with its graph (the rtl steps are not needed for these checks)."""
    from flow.pipeline.build import STEPS, BuildConfig, StepContext, run_in_memory
    from flow.core.builddir import claim

    out = tmp_path_factory.mktemp("built")
    claim(out)  # a build directory's marker, as build() writes it
    st = run_in_memory(StepContext(BuildConfig(model=str(good), out=out, progress=False)), STEPS[:4])
    st.graph.save(out / "dataflow.onnx")
    return out


def _npy(array):
    return lambda path: np.save(path, array)


IMAGES = {
    "no images": (_npy(np.zeros((0, 1, 28, 28), np.uint8)), ["holds no images"]),
    "0-d array": (_npy(np.array(3, np.uint8)), ["shaped (N, 1, 28, 28)", "()"]),
    "1-d array": (_npy(np.zeros(784, np.uint8)), ["shaped (N, 1, 28, 28)", "(784,)"]),
    "negative int64 pixels": (_npy(np.full((2, 1, 28, 28), -1, np.int64)), ["uint8", "int64"]),
    "empty file": (lambda path: path.write_bytes(b""), [".npy", "EOFError"]),
    "npz archive": (lambda path: np.savez(open(path, "wb"), a=np.zeros((2, 1, 28, 28), np.uint8)), ["one array"]),
}


@pytest.mark.parametrize("case", sorted(IMAGES))
def test_run_refuses_bad_image_files(case, tmp_path, built):
    write, words = IMAGES[case]
    x = tmp_path / "x.npy"
    write(x)
    assert_refused(bnnflow("run", built, "--input", x), *words)


def test_run_checks_output_before_running(tmp_path, built):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.uint8))
    assert_refused(bnnflow("run", built, "--input", x, "--output", tmp_path / "missing" / "y.npy"),
                   "folder", "does not exist")
    assert_refused(bnnflow("run", built, "--input", x, "--output", tmp_path), "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def _unregistered(path, good, built):
    m = onnx.load(str(built / "dataflow.onnx"))
    m.graph.node[1].op_type = "Bogus"
    onnx.save(m, str(path))


GRAPHS = {
    "text": (lambda path, good, built: path.write_text("not onnx"), ["not a readable ONNX file"]),
    "truncated": (lambda path, good, built: path.write_bytes((built / "dataflow.onnx").read_bytes()[:3000]),
                  ["not a readable ONNX file"]),
    "a QONNX model": (lambda path, good, built: path.write_bytes(good.read_bytes()),
                      ["not a bnnflow dataflow graph", "input description"]),
    "an unregistered op": (_unregistered, ["not a bnnflow dataflow graph", "'Bogus'"]),
}


@pytest.mark.parametrize("case", sorted(GRAPHS))
def test_run_refuses_a_build_without_a_dataflow_graph(case, tmp_path, good, built):
    make, words = GRAPHS[case]
    d = tmp_path / "b"
    d.mkdir()
    make(d / "dataflow.onnx", good, built)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 28, 28), np.uint8))
    assert_refused(bnnflow("run", d, "--input", x), *words)


# ---------------------------------------------------------------------------------------
# checkpoints (train --resume, build and export of a .pt)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A last.pt as flow.train.trainer writes it, for an untrained tfc-w1a1."""
    from flow.train.zoo import build_model

    model = build_model("tfc-w1a1", seed=0)
    opt = torch.optim.Adam(model.parameters())
    ckpt = {"model": "tfc-w1a1", "state_dict": model.state_dict(), "epoch": 1, "optimizer": opt.state_dict(),
            "seed": 0, "metrics": {"history": [], "best": {"epoch": 1, "val_acc": 0.1}, "val_acc": 0.1},
            "hparams": {}}
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    torch.save(ckpt, path)
    return path


class _Foreign:
    pass


def _edit(change):
    def write(path, good_ckpt):
        ckpt = torch.load(good_ckpt, weights_only=True)
        change(ckpt)
        torch.save(ckpt, path)
    return write


CHECKPOINTS = {
    "truncated": (lambda path, ok: path.write_bytes(ok.read_bytes()[:1000]), ["could not be read", "truncated"]),
    "pickled object": (lambda path, ok: torch.save({"model": "tfc-w1a1", "x": _Foreign()}, path),
                       ["Python objects other than tensors"]),
    "missing optimizer": (_edit(lambda c: c.pop("optimizer")), ["lacks the 'optimizer'"]),
    "not a dict": (lambda path, ok: torch.save([1, 2], path), ["lacks the 'model'"]),
    "weights of another model": (_edit(lambda c: c["state_dict"].pop(next(iter(c["state_dict"])))),
                                 ["does not match model 'tfc-w1a1'"]),
    "empty optimizer state": (_edit(lambda c: c.update(optimizer={})), ["optimizer state"]),
    "epoch a string": (_edit(lambda c: c.update(epoch="x")), ["malformed epoch"]),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_train_resume_refuses_bad_last_pt(case, tmp_path, checkpoint, capsys):
    write, words = CHECKPOINTS[case]
    out = tmp_path / "run"
    out.mkdir()
    write(out / "last.pt", checkpoint)
    before = (out / "last.pt").read_bytes()
    assert_refused(refused_in_process(capsys, "train", "tfc-w1a1", "--resume", "--epochs", "2", "--out", out, "--quiet"),
                   *words)
    assert sorted(p.name for p in out.iterdir()) == ["last.pt"] and (out / "last.pt").read_bytes() == before


@pytest.mark.parametrize("case", ["truncated", "pickled object", "not a dict"])
def test_build_and_export_refuse_bad_checkpoints(case, tmp_path, checkpoint, capsys):
    write, words = CHECKPOINTS[case]
    pt = tmp_path / "model.pt"
    write(pt, checkpoint)
    before = _listing(tmp_path, tmp_path / "out")
    assert_refused(refused_in_process(capsys, "build", pt, "--out", tmp_path / "out", "--quiet"), *words)
    assert not (tmp_path / "out" / "report.json").exists() and _listing(tmp_path, tmp_path / "out") == before
    assert_refused(refused_in_process(capsys, "export", pt, "--out", tmp_path / "m.onnx"), *words)
    assert not (tmp_path / "m.onnx").exists()


def test_checkpoint_naming_no_model_is_refused(tmp_path, capsys):
    pt = tmp_path / "model.pt"
    torch.save({"model": ["tfc-w1a1"], "state_dict": {}}, pt)
    assert_refused(refused_in_process(capsys, "build", pt, "--out", tmp_path / "out"), "does not name a zoo model")
    assert not (tmp_path / "out" / "report.json").exists()


def test_train_and_export_refuse_a_wrong_kind_of_out(tmp_path, checkpoint, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert_refused(refused_in_process(capsys, "train", "tfc-w1a1", "--epochs", "1", "--out", f, "--quiet"), "is a file")
    assert_refused(refused_in_process(capsys, "export", checkpoint, "--out", tmp_path), "is a directory")
    assert f.read_text() == "x"


# ---------------------------------------------------------------------------------------
# the deploy driver: ValueError with one sentence


def _spec():
    from flow.deploy.driver import IOSpec

    return IOSpec(input_shape=(1, 28, 28), wire_axes=(0, 2, 3, 1), in_lanes=1, in_elem_bits=8, in_beats=784,
                  out_lanes=1, out_elem_bits=4, out_beats=1, out_elems=1, out_signed=False, emits="top1",
                  classes=10, logits_scale=1.0, logits_bias=0.0, design_hash="0" * 16)


@pytest.mark.parametrize("images,match", [
    (np.zeros((0, 1, 28, 28), np.uint8), "empty batch"),
    (np.zeros((2, 1, 28, 28), np.float32), "must be uint8"),
    (np.zeros((2, 28, 28), np.uint8), r"shaped \(N, 1, 28, 28\)"),
    (np.array(7, np.uint8), r"shaped \(N, 1, 28, 28\)"),
    (np.full((2, 1, 28, 28), -1, np.int64), "must be uint8"),
])
def test_driver_refuses_bad_images(images, match):
    from flow.deploy.driver import check_images

    with pytest.raises(ValueError, match=match):
        check_images(_spec(), images)


@pytest.mark.parametrize("max_batch", [-1, 0, True, 2.0, "8"])
def test_driver_refuses_a_bad_max_batch(max_batch, tmp_path):
    from flow.deploy.driver import Accelerator

    with pytest.raises(ValueError, match="max_batch must be a positive integer"):
        Accelerator(tmp_path, backend="sim", max_batch=max_batch)


def test_driver_refuses_unknown_backends_and_broken_io_json(tmp_path):
    from flow.deploy.driver import Accelerator

    with pytest.raises(ValueError, match="unknown backend 'gpu'; supported: pynq, sim, uart"):
        Accelerator(tmp_path, backend="gpu")
    (tmp_path / "io.json").write_text('{"input_shape": [1, 28, 28]}')
    with pytest.raises(ValueError, match="is not a bnnflow io.json"):
        Accelerator(tmp_path, backend="sim")
    (tmp_path / "io.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a bnnflow io.json"):
        Accelerator(tmp_path, backend="sim")


def test_driver_refuses_bad_counts():
    from flow.deploy.driver import check_count

    assert check_count("n", 5) == 5 and check_count("n", np.int64(3)) == 3
    for bad in (0, -1, True, 1.5, None, "10"):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            check_count("n", bad)


@pytest.mark.parametrize("case", ["float pixels", "int32 pixels above 255", "negative labels"])
def test_test_data_out_of_range_is_refused(case, tmp_path, built):
    from flow.train.data import write_idx

    d = tmp_path / "idx"
    d.mkdir()
    images = np.zeros((4, 28, 28), np.uint8)
    labels = np.arange(4, dtype=np.uint8)
    if case == "float pixels":
        images = np.full((4, 28, 28), 0.5)
    elif case == "int32 pixels above 255":
        images = np.full((4, 28, 28), 300, np.int32)
    else:
        labels = np.array([0, -1, 2, 3], np.int8)
    write_idx(d / "t10k-images-idx3-ubyte", images)
    write_idx(d / "t10k-labels-idx1-ubyte", labels)
    assert_refused(bnnflow("verify", built, "--engines", "numpy", "--test-data", d), "idx")
