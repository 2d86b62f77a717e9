"""Zero padding of binary tensors: a Conv that pads a bipolar (+1/-1) tensor with 0 (its own
`pads`, or a `Pad` of 0) reads the tensor re-coded as -1/0/+1 by a Thresholding unit and becomes
an add/subtract IntMVU (README "How each part of the graph is lowered"); a Pad of +1 stays on
the XNOR-popcount path. The numpy reference is compared with PyTorch; the battery entry
`binary_cnn_padded` (tests/_battery_more.py) takes the same lowering through the RTL."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from _models import export, randomize_norms
from flow.core.errors import UserError
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline
from flow.sim.execute import execute_numpy


def _act():
    from brevitas.nn import QuantIdentity

    return QuantIdentity(quant_type="binary", bit_width=1, scaling_impl_type="const", min_val=-1.0, max_val=1.0)


def _conv(cin, cout, **kw):
    from brevitas.nn import QuantConv2d
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    return QuantConv2d(cin, cout, 3, bias=False, weight_bit_width=1, weight_quant=SignedBinaryWeightPerTensorConst, **kw)


class PaddedBinaryCNN(nn.Module):
    """Own padding, an asymmetric ZeroPad2d before a stride-2 conv, and a Pad of +1."""

    shape = (3, 12, 12)

    def __init__(self, last_pad: float = 1.0, last_own: int = 0):
        super().__init__()
        from brevitas.nn import QuantIdentity, QuantLinear

        self.body = nn.Sequential(
            QuantIdentity(bit_width=8), _conv(3, 8, padding=1), nn.BatchNorm2d(8), _act(),   # 12
            _conv(8, 8, padding=1), nn.BatchNorm2d(8), _act(),                               # 12
            nn.ZeroPad2d((0, 1, 1, 0)), _conv(8, 8, stride=2), nn.BatchNorm2d(8), _act(),     # 13 -> 6
            nn.ConstantPad2d(1, last_pad), _conv(8, 8, padding=last_own), nn.BatchNorm2d(8), _act())  # 6
        self.fc = QuantLinear(8 * (6 + 2 * last_own) ** 2, 10, bias=False, weight_bit_width=4)

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


def _model(tmp_path, seed=5, **kw):
    torch.manual_seed(seed)
    model = randomize_norms(PaddedBinaryCNN(**kw), seed + 1)
    return model, export(model, tmp_path / "m.onnx", model.shape)


def test_zero_padded_binary_convs_equal_pytorch(tmp_path):
    model, path = _model(tmp_path)
    graph = streamline(load_qonnx(path))
    x = np.random.default_rng(1).integers(0, 256, (60, *model.shape), dtype=np.uint8)
    with torch.no_grad():
        want = model(torch.from_numpy(x).float() / 255.0).numpy().argmax(axis=1)
    got = execute_numpy(graph, x)
    assert int(np.sum(got != want)) == 0, f"{np.sum(got != want)} of {len(x)} top-1 mismatches"
    kinds = [o.op_type for o in graph.ops()]
    # IntMVUs: the 8-bit first layer, two zero-padded binary convs, the 4-bit classifier; the Pad
    # of +1 stays XNOR-popcount
    assert kinds.count("IntMVU") == 4 and kinds.count("BinaryMVU") == 1
    assert kinds.count("Thresholding") == 3  # the input quantizer and two re-codings


def test_a_pad_of_one_and_zero_padding_together_are_refused(tmp_path):
    _model_, path = _model(tmp_path, last_own=1)
    with pytest.raises(UserError) as err:
        streamline(load_qonnx(path))
    assert "different values" in str(err.value)


def test_convolutions_in_one_step_equal_the_windows(tmp_path, monkeypatch):
    """The reference runs each sliding window and the MVU after it as one int8 convolution of
    the image where torch's kernels take it (own and asymmetric zero padding re-coded, stride
    2, a Pad of +1): the same logits as the windows written out and multiplied in numpy."""
    from flow.core import int8_gemm
    from flow.ir import reference

    monkeypatch.setattr(int8_gemm, "IMPORT_MACS", 0)
    _model_, path = _model(tmp_path)
    graph = streamline(load_qonnx(path))
    names = [step[3] for step in reference.plan(reference.design_ops(graph))]
    assert sum("+" in n for n in names) == 4, names
    x = np.random.default_rng(2).integers(0, 256, (40, *PaddedBinaryCNN.shape), dtype=np.uint8)
    fused = execute_numpy(graph, x, logits=True)
    monkeypatch.setattr(int8_gemm, "torch_or_none", lambda macs: None)
    assert np.array_equal(execute_numpy(graph, x, logits=True), fused)
