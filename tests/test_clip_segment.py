"""A float nn.Hardtanh (ONNX `Clip`) between a layer's BatchNorm and its activation quantizer, or
between two quantizers: Clip with constant bounds is non-decreasing, so the float segment's
thresholds absorb it as they do a Relu (found by the fourth battery round, relu6_hardtanh_mlp,
which bnnflow refused: "op type 'Clip' ... not supported between a layer and its activation")."""
from __future__ import annotations

import numpy as np
import onnx
import torch

from _models import export, randomize_norms
from flow.frontend.load import load_qonnx
from flow.passes.streamline import streamline
from flow.sim.execute import execute_numpy


def _model(seed: int = 3):
    import brevitas.nn as qnn

    torch.manual_seed(seed)
    const = dict(scaling_impl_type="const", min_val=-1.0, max_val=1.0)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=8), torch.nn.Flatten(),
        qnn.QuantLinear(64, 24, bias=True, weight_bit_width=4), torch.nn.BatchNorm1d(24),
        torch.nn.Hardtanh(-0.25, 0.5), qnn.QuantIdentity(bit_width=4, **const),   # the clip bites inside the range
        torch.nn.Hardtanh(-0.5, 0.25), qnn.QuantIdentity(bit_width=3, **const),   # a Clip between two quantizers
        qnn.QuantLinear(24, 10, bias=True, weight_bit_width=4))
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 1, 8, 8, generator=g) * 2 - 0.5)
    return randomize_norms(model, seed + 1)


def test_hardtanh_before_a_quantizer_is_exact(tmp_path):
    model = _model()
    path = export(model, tmp_path / "m.onnx", (1, 8, 8))
    assert sum(n.op_type == "Clip" for n in onnx.load(str(path)).graph.node) == 2
    graph = streamline(load_qonnx(path))
    x = np.random.default_rng(5).integers(0, 256, (200, 1, 8, 8), dtype=np.uint8)
    with torch.no_grad():
        pre = model.eval()[:4](torch.from_numpy(x).float() / 255.0)
        want = model(torch.from_numpy(x).float() / 255.0).numpy().argmax(axis=1)
    assert (pre > 0.5).any() and (pre < -0.25).any(), "the first clip changes some values"
    got = execute_numpy(graph, x)
    assert np.array_equal(got, want), f"{np.sum(got != want)} mismatches"
    assert len(np.unique(want)) >= 2
