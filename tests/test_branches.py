"""Fork/join beyond an identity shortcut: two computing branches joined by Add or by Concat
(torch.cat along channels), and a residual whose shortcut starts at the input quantizer.
Brevitas models with random weights and randomised BatchNorm build, and the numpy
reference and the RTL simulation equal PyTorch; the FIFOs on the branches come from the
ops' dependency curves (flow.passes.fifo), cannot deadlock and keep the estimated rate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint

from _models import calibrated, export
from flow.cli import main
from flow.core.errors import UserError
from flow.core.quant import Codes, common_step, pair_thresholds
from flow.frontend.load import load_qonnx
from flow.ir.graph import DataflowGraph
from flow.passes.fifo import branch_depths, diamonds, size_fifos
from flow.passes.fold import insert_width_converters
from flow.passes.streamline import streamline
from flow.pipeline.build import load_build
from flow.sim.execute import execute_numpy
from flow.sim.simulate import run_rtlsim



W4 = {"weight_bit_width": 4, "weight_quant": Int8WeightPerTensorFixedPoint, "bias": False}


def _conv(cin, cout, k):
    return QuantConv2d(cin, cout, k, padding=k // 2, **W4)


class Branches(torch.nn.Module):
    """Input quantizer -> conv -> two computing branches (3x3 and 1x1 conv + BN + one shared
    quantizer) joined by `join` ("add": their sum requantized; "cat": torch.cat on channels;
    "cat-requant": each branch its own quantizer, so two scales, and a quantizer after the cat)
    -> linear. `shortcut`: first a residual block whose shortcut starts at the input quantizer."""

    def __init__(self, join: str = "add", ca: int = 8, cb: int = 8, shortcut: bool = False, then_cat: bool = False):
        super().__init__()
        self.join, self.shortcut, self.then_cat = join, shortcut, then_cat
        self.qin = QuantIdentity(bit_width=4)
        if shortcut:
            self.res, self.bnr, self.qr = _conv(1, 1, 3), torch.nn.BatchNorm2d(1), QuantIdentity(bit_width=4)
        self.stem, self.bn0, self.q0 = _conv(1, 8, 3), torch.nn.BatchNorm2d(8), QuantIdentity(bit_width=4)
        self.ca, self.bna = _conv(8, ca, 3), torch.nn.BatchNorm2d(ca)
        self.cb, self.bnb = _conv(8, cb, 1), torch.nn.BatchNorm2d(cb)
        self.qshared, self.qsum = QuantIdentity(bit_width=4), QuantIdentity(bit_width=4)
        self.qb = QuantIdentity(bit_width=4, scaling_impl_type="const", min_val=-1.5, max_val=1.5) \
            if join == "cat-requant" else self.qshared  # scale 3/16 beside qshared's 1/8
        out = ca + cb if join.startswith("cat") else ca
        if then_cat:
            self.cc, self.bnc = _conv(out, 4, 3), torch.nn.BatchNorm2d(4)
            self.cd, self.bnd = _conv(out, 2, 1), torch.nn.BatchNorm2d(2)
            self.qcat = QuantIdentity(bit_width=3)
            out = 6
        self.fc = QuantLinear(out * 36, 10, **W4)

    def forward(self, x):
        y = self.qin(x)
        if self.shortcut:  # the input quantizer's output is read by the block and by the Add
            y = self.qr(y + self.qin(self.bnr(self.res(y))))
        h = self.q0(self.bn0(self.stem(y)))
        a = self.qshared(self.bna(self.ca(h)))
        b = self.qb(self.bnb(self.cb(h)))
        y = torch.cat([a, b], dim=1) if self.join.startswith("cat") else self.qsum(a + b)
        y = self.qsum(y) if self.join == "cat-requant" else y
        if self.then_cat:
            y = torch.cat([self.qcat(self.bnc(self.cc(y))), self.qcat(self.bnd(self.cd(y)))], dim=1)
        return self.fc(torch.flatten(y, 1))


class InputShortcutMLP(torch.nn.Module):
    """A residual MLP block whose shortcut is the input quantizer's output (one shared quantizer)."""

    def __init__(self, f: int = 16):
        super().__init__()
        self.qin = QuantIdentity(bit_width=4)
        self.fc0, self.bn0 = QuantLinear(f, f, **W4), torch.nn.BatchNorm1d(f)
        self.qsum = QuantIdentity(bit_width=4)
        self.fc = QuantLinear(f, 10, **W4)

    def forward(self, x):
        q = self.qin(torch.flatten(x, 1))
        return self.fc(self.qsum(q + self.qin(self.bn0(self.fc0(q)))))


class FlatConcat(torch.nn.Module):
    """Two conv branches, each flattened (NHWC stream order), concatenated as flat vectors."""

    def __init__(self):
        super().__init__()
        self.qin, self.q = QuantIdentity(bit_width=4), QuantIdentity(bit_width=4)
        self.ca, self.bna = _conv(1, 3, 3), torch.nn.BatchNorm2d(3)
        self.cb, self.bnb = _conv(1, 2, 1), torch.nn.BatchNorm2d(2)
        self.fc = QuantLinear(5 * 16, 10, **W4)

    def forward(self, x):
        y = self.qin(x)
        a = torch.flatten(self.q(self.bna(self.ca(y))), 1)
        return self.fc(torch.cat([a, torch.flatten(self.q(self.bnb(self.cb(y))), 1)], dim=1))


class Cat3(torch.nn.Module):
    """Input quantizer -> conv -> torch.cat on channels of three tensors read from the conv's output
    -> linear. "copy": a 3x3 branch, the conv's output itself (a copy straight from the fork) and a
    1x1 branch, all of the conv's scale; "scales": a 3x3 and two 1x1 branches with quantizers of
    three scales, then a quantizer after the cat; "rate": 1x1 convolutions only, 4 + 2 + 6 channels
    of one scale and a max-pool head, so that the concats set the pace (the first at one lane)."""

    def __init__(self, kind: str = "copy"):
        super().__init__()
        self.kind = kind
        k, cc = (1, 6) if kind == "rate" else (3, 2)
        self.qin = QuantIdentity(bit_width=4)
        self.stem, self.bn0, self.q0 = _conv(1, 4, k), torch.nn.BatchNorm2d(4), QuantIdentity(bit_width=4)
        self.ca, self.bna = _conv(4, 4, k), torch.nn.BatchNorm2d(4)
        self.cb, self.bnb = _conv(4, 2, 1), torch.nn.BatchNorm2d(2)
        self.cc, self.bnc = _conv(4, cc, 1), torch.nn.BatchNorm2d(cc)
        own = kind == "scales"
        self.qa = QuantIdentity(bit_width=4, scaling_impl_type="const", min_val=-1.5, max_val=1.5) if own else self.q0
        self.qb = QuantIdentity(bit_width=4, scaling_impl_type="const", min_val=-2.0, max_val=2.0) if own else self.q0
        self.qc = QuantIdentity(bit_width=4, scaling_impl_type="const", min_val=-1.0, max_val=1.0) if own else self.q0
        self.qcat = QuantIdentity(bit_width=4)
        channels = 4 + (4 if kind == "copy" else 2) + cc
        self.fc = QuantLinear(channels * (1 if kind == "rate" else 36), 10, **W4)

    def forward(self, x):
        h = self.q0(self.bn0(self.stem(self.qin(x))))
        middle = h if self.kind == "copy" else self.qb(self.bnb(self.cb(h)))
        y = torch.cat([self.qa(self.bna(self.ca(h))), middle, self.qc(self.bnc(self.cc(h)))], dim=1)
        y = self.qcat(y) if self.kind == "scales" else y
        y = torch.nn.functional.max_pool2d(y, 6) if self.kind == "rate" else y
        return self.fc(torch.flatten(y, 1))


class TwoScaleResidual(torch.nn.Module):
    """A residual block whose Add reads two quantizers of their own: the block input (a signed
    QuantIdentity) and the body's QuantReLU (unsigned, another scale); the sum requantized."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.qin = QuantIdentity(bit_width=4)
        self.stem, self.bn0, self.q0 = _conv(1, c, 3), torch.nn.BatchNorm2d(c), QuantIdentity(bit_width=4)
        self.body, self.bn1, self.q1 = _conv(c, c, 3), torch.nn.BatchNorm2d(c), QuantReLU(bit_width=3)
        self.qsum = QuantIdentity(bit_width=4, scaling_impl_type="const", min_val=-3.0, max_val=3.0)  # a third scale
        self.fc = QuantLinear(c * 36, 10, **W4)

    def forward(self, x):
        h = self.q0(self.bn0(self.stem(self.qin(x))))
        return self.fc(torch.flatten(self.qsum(h + self.q1(self.bn1(self.body(h)))), 1))


MODELS = {
    "add": (lambda: Branches("add"), (1, 6, 6), 300),
    "cat-lanes": (lambda: Branches("cat", 8, 4), (1, 6, 6), 300),
    "input-shortcut-mlp": (lambda: InputShortcutMLP(), (1, 4, 4), 64),
    "flat-cat": (lambda: FlatConcat(), (1, 4, 4), 200),
    "cat-two-scales": (lambda: Branches("cat-requant", 8, 4), (1, 6, 6), 300),
    "all": (lambda: Branches("add", shortcut=True, then_cat=True), (1, 6, 6), 400),
    "cat3": (lambda: Cat3("copy"), (1, 6, 6), 200),
    "cat3-scales": (lambda: Cat3("scales"), (1, 6, 6), 200),
    "cat3-rate": (lambda: Cat3("rate"), (1, 6, 6), 216),
    "add-two-scales": (lambda: TwoScaleResidual(), (1, 6, 6), 200),
}


def _model(name: str, seed: int = 3):
    make, shape, target = MODELS[name]
    torch.manual_seed(seed)
    return calibrated(make(), shape, seed + 1), shape, target


def _images(n: int, shape, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _torch_labels(model, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(images).float() / 255.0).numpy().argmax(axis=1)


def _top1_mismatches(g, model, x: np.ndarray) -> tuple[int, int]:
    """(rows where numpy's top-1 differs from PyTorch's, rows left out): a row whose maximum ties
    exactly, in PyTorch's float32 logits or in numpy's integer logits, is left out and counted
    (the two round differently there: numpy compares in exact arithmetic, README "run input and
    output"); equality only, no tolerance."""
    got, logits = execute_numpy(g, x), execute_numpy(g, x, logits=True)
    with torch.no_grad():
        y = model.eval()(torch.from_numpy(x).float() / 255.0).numpy()
    tie = ((y == y.max(axis=1, keepdims=True)).sum(axis=1) > 1) | (
        (logits == logits.max(axis=1, keepdims=True)).sum(axis=1) > 1)
    return int(np.sum((got != y.argmax(axis=1)) & ~tie)), int(tie.sum())


def _build(name: str, tmp: Path, images: int):
    model, shape, target = _model(name)
    path = export(model, tmp / f"{name}.onnx", shape)
    out = tmp / "out"
    assert main(["build", str(path), "--out", str(out), "--quiet", "--target-cycles", str(target),
                 "--verify-images", str(images)]) == 0
    return model, shape, out, json.loads((out / "report.json").read_text())


def _check_build(model, shape, out, report, n: int) -> None:
    """numpy == RTL == PyTorch on n images, the estimated rate measured, sized branch FIFOs."""
    ver = report["verification"]
    assert ver["numpy"]["mismatches"] == 0 and ver["rtlsim"]["mismatches"] == 0, ver
    est, meas = report["estimated_cycles_per_frame"], report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est, (meas, est)
    g = load_build(out)
    x = _images(n, shape)
    want = _torch_labels(model, x)
    assert int(np.sum(execute_numpy(g, x) != want)) == 0
    y, _ = run_rtlsim(g, out, x)
    assert int(np.sum(y != want)) == 0
    sized = {f.name for d in diamonds(g) for f in (d.fifo_of(p) for p in range(len(d.branches))) if f is not None}
    for op in g.ops():
        if op.op_type == "StreamFIFO" and op.name in sized:
            assert 1 <= op.attr("MinDepth") <= op.depth(), op.name
        elif op.op_type == "StreamFIFO":  # a fork/join nested in another (a Concat of three): a whole frame
            assert op.attr("MinDepth") is None and op.depth() == op.frame_depth(), op.name


@pytest.fixture(scope="module")
def built_all(tmp_path_factory):
    """One build of the network with every pattern: input-quantizer shortcut, Add of two
    computing branches, Concat of two computing branches with different lanes."""
    tmp = tmp_path_factory.mktemp("all")
    return (tmp, *_build("all", tmp, 4))


@pytest.mark.sim
def test_all_patterns_build_exact_in_numpy_and_rtl(built_all):
    _tmp, model, shape, out, report = built_all
    ops = [layer["op"] for layer in report["layers"]]
    assert ops.count("AddStreams") == 2 and ops.count("StreamingConcat") == 1, ops
    _check_build(model, shape, out, report, 6)
    g = load_build(out)
    x = _images(200, shape, seed=12)
    assert int(np.sum(execute_numpy(g, x) != _torch_labels(model, x))) == 0
    both = [d for d in diamonds(g) if all(d.fifo_of(p) is not None for p in (0, 1))]
    assert len(both) == 2  # the Add and the Concat of computing branches: a FIFO on each branch


@pytest.mark.slow
@pytest.mark.sim
def test_branch_fifos_at_their_bound_run_exactly(built_all):
    """Every branch FIFO at its MinDepth (the deadlock bound of flow.passes.fifo) runs exactly."""
    tmp, model, shape, out, _report = built_all
    g = load_build(out)
    for f in g.ops():
        if f.op_type == "StreamFIFO":
            f.set_attr("Depth", f.attr("MinDepth"))
    x = _images(3, shape, seed=8)
    y, _ = run_rtlsim(g, tmp / "min", x, watchdog=50_000)
    assert int(np.sum(y != _torch_labels(model, x))) == 0


@pytest.mark.slow
@pytest.mark.sim
def test_hls_c_simulation_is_exact(built_all):
    """The HLS top (StreamingConcat's config struct included) in C simulation equals numpy."""
    _tmp, _model_, _shape, out, _report = built_all
    assert main(["verify", str(out), "--engines", "numpy,csim", "--images", "10"]) == 0
    record = json.loads((out / "verification.json").read_text())
    assert record["csim"]["mismatches"] == 0 and record["csim"]["images"] == 10


@pytest.mark.parametrize("name", ["input-shortcut-mlp", "flat-cat", "cat-two-scales",
                                  pytest.param("add", marks=pytest.mark.slow),
                                  pytest.param("cat-lanes", marks=pytest.mark.slow)])
def test_numpy_equals_pytorch_on_many_inputs(name, tmp_path):
    """The streamlined graph (no RTL) on 200 images."""
    model, shape, _ = _model(name, seed=11)
    g = streamline(load_qonnx(export(model, tmp_path / "m.onnx", shape)))
    x = _images(200, shape, seed=12)
    mismatches, ties = _top1_mismatches(g, model, x)
    assert mismatches == 0, f"{mismatches} of {len(x)} top-1 mismatches ({ties} exact tie rows left out)"
    print(f"{name}: {ties} of {len(x)} rows tie exactly (PyTorch's float or numpy's integer logits)")
    if name == "cat-two-scales":  # the quantizer after the Concat: thresholds of each branch's own scale
        ops = g.ops()
        i = [o.op_type for o in ops].index("StreamingConcat")
        thr = ops[i + 1].param("thresholds")
        assert ops[i + 1].op_type == "Thresholding" and thr.shape[0] == 12
        assert (thr[:8] == thr[0]).all() and (thr[8:] == thr[8]).all() and (thr[0] != thr[8]).any()


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_builds_exact_on_50_inputs(name, tmp_path):
    model, shape, out, report = _build(name, tmp_path, 50)
    _check_build(model, shape, out, report, 60)


@pytest.mark.sim
def test_add_of_two_scales_builds_exact(tmp_path):
    """Add of a signed and an unsigned quantizer's codes (different scales): FixedScale on the
    branch whose integer step is not 1, AddStreams, Thresholding of the integer sum; the CLI
    build verifies RTL == numpy, and both equal PyTorch."""
    model, shape, out, report = _build("add-two-scales", tmp_path, 8)
    ops = [layer["op"] for layer in report["layers"] if layer["op"] != "DataWidthConverter"]
    i = ops.index("AddStreams")
    assert "FixedScale" in ops[:i] and ops[i + 1] == "Thresholding", ops
    _check_build(model, shape, out, report, 8)
    g = load_build(out)
    x = _images(200, shape, seed=12)
    assert int(np.sum(execute_numpy(g, x) != _torch_labels(model, x))) == 0


def test_pair_thresholds_follow_the_float_sum():
    """Scales 0.5 and 0.75 (2 and 3 steps of 0.25) of two 2-bit unsigned inputs, requantized to
    3 bits of scale 1 with round-half-even: the thresholds on z = 2*ua + 3*ub are where the
    float sum 0.25*z rounds up a level (z = 2, 0.5, still rounds to 0), max(z) + 1 for levels
    no pair reaches; a code that falls as z grows is refused."""
    m0, mult = common_step([np.float32(0.5), np.float32(0.75)])
    assert (m0, mult) == (np.float32(0.25), [2, 3])
    ua, ub = (v.ravel() for v in np.meshgrid(np.arange(4), np.arange(4), indexing="ij"))
    z = 2 * ua + 3 * ub
    x = (np.float32(0.5) * ua.astype(np.float32) + np.float32(0.75) * ub.astype(np.float32)).astype(np.float32)
    nxt = Codes(8, 1, 0, 1.0)
    codes = nxt.encode(x[:, None])
    thr = pair_thresholds(z, np.repeat(codes, 2, axis=1), nxt.levels, "Add 'a'")
    assert thr.tolist() == [[3, 6, 11, 15, 16, 16, 16]] * 2
    assert np.array_equal((z[:, None] >= thr[0][None, :]).sum(axis=1), codes[:, 0])
    with pytest.raises(UserError, match="Add 'a': the quantized sum is not a non-decreasing function"):
        pair_thresholds(z, (z == 5).astype(np.int64), 2, "Add 'a'")
    with pytest.raises(UserError, match="not a non-decreasing function"):  # equal sums, different codes
        pair_thresholds(np.array([0, 1, 1]), np.array([0, 0, 1]), 2, "Add 'a'")


# ----------------------------------------------------------------- FIFO sizing, no RTL
def _synthetic(simd: int = 1) -> DataflowGraph:
    """global_in (6x6 pixels, 2 channels) -> Duplicate -> [3x3 window + MVU] and [1x1 MVU],
    each ending in a StreamFIFO -> AddStreams: both branches compute."""
    rng = np.random.default_rng(0)
    g = DataflowGraph.empty("synthetic")
    dup = g.add_node("Duplicate", "Duplicate_0", {"NumElems": 72, "PE": 1, "ElemBits": 2}, {}, ["global_in"], 2)
    mvu = {"InputBits": 2, "K": 1, "ShiftBits": 1, "WeightBits": 3, "WeightMode": 2, "NumThresholds": 3,
           "NumVectors": 36, "MH": 2, "PE": 1, "SIMD": simd, "ram_style": "auto"}
    thr = np.sort(rng.integers(-20, 20, (2, 3)), axis=1).astype(np.int64)
    g.add_node("SlidingWindow", "SlidingWindow_0", {"C": 2, "ElemBits": 2, "IFM_H": 6, "IFM_W": 6, "K": 3, "Pad": 1,
                                                     "PadValue": 0, "SIMD": simd, "Stride": 1}, {}, [dup.output[0]])
    a = g.add_node("IntMVU", "IntMVU_0", {**mvu, "MW": 18}, {"weights": rng.integers(-4, 4, (2, 18)),
                                                             "thresholds": thr}, ["SlidingWindow_0_out"])
    b = g.add_node("IntMVU", "IntMVU_1", {**mvu, "MW": 2}, {"weights": rng.integers(-4, 4, (2, 2)),
                                                            "thresholds": thr}, [dup.output[1]])
    ins = []
    for i, src in enumerate((a, b)):
        f = g.add_node("StreamFIFO", f"StreamFIFO_{i}", {"Elems": 72, "ElemBits": 2, "PE": 1, "DepthElems": 72}, {},
                       [src.output[0]])
        ins.append(f.output[0])
    g.add_node("AddStreams", "AddStreams_0", {"NumElems": 72, "PE": 1, "InBitsA": 2, "InBitsB": 2, "OutputBits": 3,
                                              "Signed": 0}, {}, ins)
    g.finalize_io()
    return g


def test_fifo_sizing_when_both_branches_compute():
    """The 1x1 branch runs ahead of the 3x3 one (which waits for a row and a pixel): its FIFO
    must hold those beats; the slow branch's FIFO needs next to nothing."""
    g = size_fifos(insert_width_converters(_synthetic()))
    (d,) = diamonds(g)
    fast, slow = d.fifo_of(1), d.fifo_of(0)
    # the 3x3 window's first output needs 7 pixels (2 beats each) in; the 1x1 MVU makes
    # one output beat per input pixel (2 beats) after its input vector
    assert fast.attr("MinDepth") == branch_depths(d, 1)[0] >= 12
    assert slow.attr("MinDepth") <= 2
    for f in (fast, slow):
        assert f.attr("MinDepth") <= f.depth() < f.frame_depth()
    # a depth below the bound from a folding file is refused
    fast.set_attr("Depth", fast.attr("MinDepth") - 1)
    with pytest.raises(UserError, match="can deadlock"):
        size_fifos(g)


def test_join_without_fifo_on_a_branch_that_must_buffer_is_refused():
    g = _synthetic()
    for node in list(g.model.graph.node):
        if node.name == "StreamFIFO_1":  # drop the FIFO of the fast branch: wire its MVU to the join
            add = next(n for n in g.model.graph.node if n.name == "AddStreams_0")
            add.input[1] = node.input[0]
            g.model.graph.node.remove(node)
    with pytest.raises(UserError, match="IntMVU_1 has no FIFO but must hold .* beats"):
        size_fifos(g)
