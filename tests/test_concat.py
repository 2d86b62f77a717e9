"""Concat along channels beyond two computed tensors, and the StreamingConcat op itself: a chain
of two-input concats for three branches (one scale, three scales then a quantizer, concats that
set the pace), the refusals around concats, the engine's random cocotb tier, its folding and its
HLS config. The networks and build helpers are those of tests/test_branches.py."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear

from _cli import assert_refused, bnnflow
from _models import export, randomize_norms
from flow.codegen.hlsgen import _env as hls_env
from flow.codegen.hlsgen import design_info
from flow.core.errors import UserError
from flow.frontend.load import load_qonnx
from flow.ir.graph import DataflowGraph
from flow.passes.fold import fold_for_target
from flow.passes.streamline import streamline
from flow.pipeline.build import load_build
from flow.sim.execute import execute_numpy
from flow.sim.simulate import run_rtlsim
from test_branches import W4, Branches, Cat3, _build, _check_build, _images, _torch_labels

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))

from batch import run_batch  # noqa: E402


@pytest.mark.sim
@pytest.mark.parametrize("name", ["cat3", "cat3-scales", "cat3-rate"])
def test_concat_of_three_builds_exact(name, tmp_path):
    """torch.cat of three tensors read from one: a chain of two StreamingConcats fed by two
    Duplicates; PyTorch == numpy == RTL, at the estimated rate and under random stalls. In
    "cat3-rate" the first concat runs at one lane and the full rate and the second at two: the
    FIFO between them takes two lanes, else the second would wait on a width converter in its
    turns (288 cycles per frame measured for 216 estimated)."""
    model, shape, out, report = _build(name, tmp_path, 8)
    ops = [layer["op"] for layer in report["layers"]]
    assert ops.count("StreamingConcat") == 2 and ops.count("Duplicate") == 2, ops
    _check_build(model, shape, out, report, 8)
    g = load_build(out)
    x = _images(200, shape, seed=12)
    assert int(np.sum(execute_numpy(g, x) != _torch_labels(model, x))) == 0
    y, _ = run_rtlsim(g, out, x[:8], stall_seed=3)
    assert int(np.sum(y != _torch_labels(model, x[:8]))) == 0
    if name == "cat3-scales":  # the quantizer after the Concat: per-channel thresholds from each branch's scale
        (thr,) = [o.param("thresholds") for o in g.ops() if o.op_type == "Thresholding"
                  and o.in_stream().elems == 8 * 36]
        assert (thr[:4] == thr[0]).all() and (thr[4:6] == thr[4]).all() and (thr[6:] == thr[6]).all()
        assert len({tuple(thr[0]), tuple(thr[4]), tuple(thr[6])}) == 3


def test_concat_of_three_scales_without_a_quantizer_is_refused(tmp_path):
    """Three scales and no quantizer after the Concat: one sentence naming the node and the scales."""

    class NoRequant(Cat3):
        def forward(self, x):
            h = self.q0(self.bn0(self.stem(self.qin(x))))
            y = torch.cat([self.qa(self.bna(self.ca(h))), self.qb(self.bnb(self.cb(h))),
                           self.qc(self.bnc(self.cc(h)))], dim=1)
            return self.fc(torch.flatten(y, 1))

    torch.manual_seed(0)
    path = export(randomize_norms(NoRequant("scales"), 1), tmp_path / "m.onnx", (1, 6, 6))
    with pytest.raises(UserError, match=r"Concat '.*': its inputs have the scales \S+ and \S+ and \S+; "
                                        "concatenating tensors of one scale is supported"):
        streamline(load_qonnx(path))


def test_concat_of_a_constant_is_refused(tmp_path):
    """A constant among the Concat's inputs (once silently dropped beside two tensors): one sentence."""

    class WithConstant(Cat3):
        def __init__(self):
            super().__init__("copy")
            self.register_buffer("k", torch.zeros(1, 2, 6, 6))
            self.fc = QuantLinear(10 * 36, 10, **W4)

        def forward(self, x):
            h = self.q0(self.bn0(self.stem(self.qin(x))))
            return self.fc(torch.flatten(torch.cat([self.qa(self.bna(self.ca(h))), h, self.k], dim=1), 1))

    torch.manual_seed(0)
    path = export(randomize_norms(WithConstant(), 1), tmp_path / "m.onnx", (1, 6, 6))
    with pytest.raises(UserError, match=r"Concat 'Concat_0' reads a constant tensor"):
        streamline(load_qonnx(path))


def test_concat_scales_must_agree(tmp_path):
    """Concat of two branches with their own quantizers (different scales): one sentence naming the node."""

    class TwoScales(Branches):
        def __init__(self):
            super().__init__("cat")
            self.qother = QuantIdentity(bit_width=3)

        def forward(self, x):
            h = self.q0(self.bn0(self.stem(self.qin(x))))
            return self.fc(torch.flatten(torch.cat([self.qshared(self.bna(self.ca(h))),
                                                    self.qother(self.bnb(self.cb(h)))], dim=1), 1))

    torch.manual_seed(0)
    model = randomize_norms(TwoScales(), 1)
    path = export(model, tmp_path / "m.onnx", (1, 6, 6))
    with pytest.raises(UserError, match=r"Concat '.*': its inputs have the scales .* concatenating tensors of one "
                                        "scale is supported"):
        streamline(load_qonnx(path))
    res = bnnflow("build", path, "--out", tmp_path / "out", "--quiet")
    assert_refused(res, "Concat 'Concat_0'", "its inputs have the scales", "tensors of one scale is supported")


@pytest.mark.slow
@pytest.mark.sim
def test_concat_engine_cocotb_random(tmp_path):
    """rtl/stream_ops/streaming_concat.sv in random configurations (the shared batch of
    tests/test_cocotb_engines.py holds two fixed ones): unstalled at one beat per cycle and
    under random gaps and stalls, against the op's semantics."""
    from flow.ops.concat import StreamingConcat

    rng = np.random.default_rng(4)
    cfgs = [{"engine": "streaming_concat", "params": StreamingConcat.random_params(rng), "seed": 60 + i,
             "frames": 40, "name": f"concat{i}"} for i in range(6)]
    stats = run_batch(cfgs, tmp_path)
    assert stats["configs"] == len(cfgs)


# ----------------------------------------------------------------- StreamingConcat through the contract
def _concat_graph(ca: int, cb: int) -> DataflowGraph:
    g = DataflowGraph.empty("cat")
    dup = g.add_node("Duplicate", "Duplicate_0", {"NumElems": 4 * ca, "PE": 1, "ElemBits": 2}, {}, ["global_in"], 2)
    g.add_node("StreamingConcat", "StreamingConcat_0", {"NumVectors": 4, "ChannelsA": ca, "ChannelsB": cb,
                                                        "ElemBitsA": 2, "ElemBitsB": 2}, {}, list(dup.output))
    g.finalize_io()
    return g


def test_concat_folds_to_lanes_dividing_both_inputs():
    """Lanes must divide ChannelsA and ChannelsB: 12 and 8 channels fold to at most 4 lanes
    (12 alone would allow 6 or 12), and the design meets the target where those lanes can."""
    for target, want in ((80, 1), (40, 2), (20, 4), (1, 4)):
        (cat,) = [o for o in fold_for_target(_concat_graph(12, 8), target).ops() if o.op_type == "StreamingConcat"]
        assert cat.attr("SIMD") == want, (target, cat.attr("SIMD"))
        cat.check()


def test_concat_hls_call_uses_its_named_config():
    """The generated top declares `<node>_config` from hls_config() and passes it to the stream function."""
    info = design_info(fold_for_target(_concat_graph(4, 2), 12))
    top = hls_env().get_template("top.cpp.j2").render(top="t", design="d", in_bits=info["in"].width,
                                                      out_bits=info["out"].width, stages=info["stages"],
                                                      streams=info["streams"], memories=[])
    assert "struct StreamingConcat_0_config {" in top
    for field in ("SIMD = 2;", "A_BEATS = 2;", "B_BEATS = 1;", "A_BITS = 2;", "B_BITS = 2;", "OUT_BITS = 2;",
                  "VECTORS = 4;"):
        assert f"static constexpr unsigned {field}" in top
    assert "bnnflow::streaming_concat<StreamingConcat_0_config>(" in top
