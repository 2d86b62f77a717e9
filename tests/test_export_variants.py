"""How a user's export can differ from what the flow produces itself: a static batch of
several frames, a channels-last flatten through a Transpose, a mean over the spatial axes
without keepdims. What builds is in the battery (tests/_battery_more.py: batch4_export,
nhwc_flatten, avgpool_mid, compared with PyTorch through the RTL); here the flow's
transformations themselves and the refusals around them."""
from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from test_bad_input import refused_build


def _export(model: nn.Module, shape: tuple, path) -> onnx.ModelProto:
    from brevitas.export import export_qonnx

    model.eval()
    export_qonnx(model, torch.rand(*shape), str(path), dynamo=False)
    return onnx.load(str(path))


class _Reshaped(nn.Module):
    """Flattens with x.reshape(2, -1): on a batch of 4 that pairs frames, not a flatten."""

    def __init__(self):
        super().__init__()
        from brevitas.nn import QuantIdentity, QuantLinear

        self.q = QuantIdentity(bit_width=8)
        self.fc = QuantLinear(2 * 16, 3, bias=False, weight_bit_width=4)

    def forward(self, x):
        return self.fc(self.q(x).reshape(2, -1))


def test_a_static_batch_becomes_one_frame(tmp_path):
    """The input, the output and a Reshape to (batch, -1) lose the batch of 4; the rest stays."""
    from flow.frontend.load import _single_frame
    from brevitas.nn import QuantIdentity, QuantLinear

    model = nn.Sequential(QuantIdentity(bit_width=8), nn.Flatten(), QuantLinear(16, 3, bias=False, weight_bit_width=4))
    m = _export(model, (4, 1, 4, 4), tmp_path / "b4.onnx")
    reshapes = {n.input[1] for n in m.graph.node if n.op_type == "Reshape"}
    _single_frame(m, 4, "b4.onnx")
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_value == 1
    for init in m.graph.initializer:
        if init.name in reshapes:
            assert onnx.numpy_helper.to_array(init)[0] in (1, -1, 0)
    assert not m.graph.value_info


def test_a_reshape_that_mixes_frames_is_refused(tmp_path):
    path = tmp_path / "pairs.onnx"
    _export(_Reshaped(), (4, 1, 4, 4), path)
    refused_build(tmp_path, path, ["batch of 4", "export with a batch of 1"])


class _Roundtrip(nn.Module):
    """x.transpose(2, 3) before a conv: a Transpose that no flatten reads."""

    def __init__(self):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

        self.q = QuantIdentity(bit_width=8)
        self.conv = QuantConv2d(1, 4, 3, bias=False, weight_bit_width=4)
        self.act = QuantReLU(bit_width=4)
        self.conv2 = QuantConv2d(4, 4, 3, bias=False, weight_bit_width=4)
        self.fc = QuantLinear(4 * 4 * 4, 3, bias=False, weight_bit_width=4)

    def forward(self, x):
        t = self.act(self.conv(self.q(x)))
        t = t.transpose(2, 3)
        return self.fc(torch.flatten(self.act(self.conv2(t)), 1))


def test_a_transpose_not_read_by_a_flatten_is_refused(tmp_path):
    path = tmp_path / "roundtrip.onnx"
    m = _export(_Roundtrip(), (1, 1, 8, 8), path)
    assert "Transpose" in {n.op_type for n in m.graph.node}
    refused_build(tmp_path, path, ["Transpose", "read only by a flatten"])


def test_transpose_order_of_a_channels_last_flatten():
    """perm (0, 2, 3, 1) then flatten reads the stream as it comes (the identity); no transpose
    reads it in NCHW order (the flow's own flatten permutation)."""
    from types import SimpleNamespace

    from flow.core.quant import Codes
    from flow.passes.lower_shape import ShapeLowering
    from flow.passes.segments import nhwc_permutation
    from flow.passes.tensor import Tensor

    c, h, w = 3, 2, 4
    node = onnx.helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1], name="T")
    flat = onnx.helper.make_node("Flatten", ["y"], ["z"], name="F")
    shapes = {"x": [1, c, h, w], "y": [1, h, w, c], "z": [1, c * h * w]}
    low = ShapeLowering()
    low.mw = SimpleNamespace(get_tensor_shape=shapes.get)
    low.consumers = {"y": [flat]}
    t = Tensor(Codes(16, 1, 0, 0.5), (c, h, w))
    assert low.transpose(t, node).perm == tuple(range(c * h * w))
    ident = onnx.helper.make_node("Transpose", ["x"], ["y"], perm=[0, 1, 2, 3], name="I")
    assert np.array_equal(low.transpose(t, ident).perm, nhwc_permutation((c, h, w)))


def test_class_steps_are_exact_multiples_of_one_step():
    """Per-class output steps m_c = M_c * m0 exactly (m0 float32, M_c integers); a class with
    all-zero weights (Brevitas gives it a tiny statistics scale) has M = 0 and does not narrow m0."""
    from fractions import Fraction

    from flow.passes.lower_output import _class_steps

    rng = np.random.default_rng(3)
    m = (rng.uniform(0.5, 2.0, 6) * 2.0 ** -7).astype(np.float32)
    m[4] = np.float32(3e-14)
    live = np.ones(6, bool)
    live[4] = False
    m0, M = _class_steps(m, live, None)
    assert M[4] == 0 and np.all(M[live] > 0)
    for c in np.flatnonzero(live):
        assert Fraction(float(m[c])) == int(M[c]) * Fraction(float(m0))
    assert np.gcd.reduce(M[live]) == 1
    m0, M = _class_steps(np.full(3, 0.25, np.float32), np.ones(3, bool), None)
    assert m0 == np.float32(0.25) and list(M) == [1, 1, 1]
