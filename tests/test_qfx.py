"""flow.train.nn.qfx: modes, gradients, the learned binary point, K-hot weights, fixed-point layers, export."""
import numpy as np
import pytest
import torch

from flow.core.errors import UserError
from flow.train.nn import (OVERFLOW, ROUNDING, FixedAct, FixedAdd, FixedBatchNorm, FixedConv2d, FixedLinear,
                     FixedPointQuant, KHotQuant, khot_levels, naf_weight, quantize_fixed)
from flow.ops.semantics import khot_terms


def test_rounding_modes_on_ties():
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=torch.float64)
    expect = {"TRN": [-3, -2, -1, 0, 1, 2], "TRN_ZERO": [-2, -1, 0, 0, 1, 2], "RND": [-2, -1, 0, 1, 2, 3],
              "RND_ZERO": [-2, -1, 0, 0, 1, 2], "RND_INF": [-3, -2, -1, 1, 2, 3],
              "RND_MIN_INF": [-3, -2, -1, 0, 1, 2], "RND_CONV": [-2, -2, 0, 0, 2, 2]}
    for mode, want in expect.items():
        assert quantize_fixed(x, 8, 8, mode).tolist() == want, mode


def test_overflow_modes_signed_and_unsigned():
    x = torch.tensor([-9.0, -8.0, 7.0, 8.0, 9.0])
    assert quantize_fixed(x, 4, 4, "TRN", "SAT").tolist() == [-8, -8, 7, 7, 7]
    assert quantize_fixed(x, 4, 4, "TRN", "SAT_SYM").tolist() == [-7, -7, 7, 7, 7]
    assert quantize_fixed(x, 4, 4, "TRN", "SAT_ZERO").tolist() == [0, -8, 7, 0, 0]
    assert quantize_fixed(x, 4, 4, "TRN", "WRAP").tolist() == [7, -8, 7, -8, -7]
    assert quantize_fixed(x, 4, 4, "TRN", "SAT", signed=False).tolist() == [0, 0, 7, 8, 9]
    assert quantize_fixed(x * 2, 4, 4, "TRN", "WRAP", signed=False).tolist() == [14, 0, 14, 0, 2]


@pytest.mark.parametrize("rounding", ROUNDING)
@pytest.mark.parametrize("overflow", OVERFLOW)
def test_float32_path_equals_float64(rounding, overflow):
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(4000, generator=g) * 6, torch.randint(-80, 80, (2000,), generator=g) / 8 + 1 / 16])
    a = quantize_fixed(x, 7, 3, rounding, overflow)
    b = quantize_fixed(x.double(), 7, 3, rounding, overflow).float()
    assert a.dtype == torch.float32 and torch.equal(a, b)


def test_ste_gradient_is_one_in_range_zero_on_overflow():
    x = torch.tensor([-5.0, -1.3, 0.2, 1.6, 1.9], requires_grad=True)  # 1.9 rounds to 2.0: overflow
    quantize_fixed(x, 4, 2, "RND_CONV", "SAT").sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_binary_point_gradient_has_lsq_form():
    ib = torch.tensor(2.0, requires_grad=True)
    x = torch.tensor([0.3, 5.0])  # step 2^(2-4) = 0.25: 0.3 -> 0.25 (in range), 5.0 -> 1.75 (saturated)
    y = quantize_fixed(x, 4, ib, "RND_CONV", "SAT")
    assert y.tolist() == [0.25, 1.75]
    y.sum().backward()
    s = 0.25
    expect = ((1.0 - 1.2) + 7.0) * s * np.log(2.0)  # (round(x/s) - x/s) in range, max int when saturated
    assert ib.grad.item() == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("start", [-1.0, 7.0])
def test_learned_binary_point_moves_toward_less_error(start):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, generator=g) * 3.0  # best ap_fixed<6, I>: I about 3..4
    q = FixedPointQuant(6, int_bits=start)
    opt = torch.optim.Adam(q.parameters(), lr=0.05)
    err0 = float(((q(x) - x) ** 2).mean().detach())
    for _ in range(120):
        loss = ((q(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    err1 = float(((q(x) - x) ** 2).mean().detach())
    best = min(range(-2, 9), key=lambda i: float(((quantize_fixed(x, 6, i) - x) ** 2).mean()))
    assert err1 < 0.5 * err0
    assert abs(int(q.binary_point()) - best) <= 1


def test_per_channel_binary_point_and_calibration():
    x = torch.randn(32, 3, 5, 5) * torch.tensor([0.1, 1.0, 10.0]).reshape(1, 3, 1, 1)
    q = FixedAct(8, channels=3).train()
    assert not bool(q.initialized)
    y = q(x)
    ib = q.binary_point().tolist()
    assert ib[0] < ib[1] < ib[2] and bool(q.initialized)
    for c in range(3):
        assert torch.equal(y[:, c], quantize_fixed(x[:, c], 8, ib[c]))
        assert x[:, c].abs().max() < 2 ** (ib[c] - 1)  # fits without overflow


def test_naf_weight_matches_khot_terms():
    ints = np.arange(-200, 201)
    terms = khot_terms(ints, 8)
    assert np.array_equal(naf_weight(ints), (terms[..., 0] != 0).sum(-1))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_khot_weights_decompose_into_at_most_k_terms(k):
    g = torch.Generator().manual_seed(k)
    w = torch.randn(64, 40, generator=g) * 0.3
    q = KHotQuant(8, k=k, channels=64, channel_dim=0)
    q.calibrate(w)
    ints = q.integer_weights(w).numpy()
    terms = khot_terms(ints, k)  # raises if any weight needs more than k terms
    assert (terms[..., 0] != 0).sum(-1).max() <= k
    wq = q(w).detach()
    assert torch.equal(wq, torch.from_numpy(ints).float() * q.scale_for(w))
    # nearest K-hot level: no level of the table is closer to w / s than the chosen one
    levels = khot_levels(8, k, True, True).numpy()
    v = (w / q.scale_for(w)).numpy().clip(levels[0], levels[-1])
    best = np.abs(v[..., None] - levels).min(-1)
    assert np.allclose(np.abs(v - ints), best)


def test_khot_gradient_is_straight_through_in_range():
    w = torch.tensor([[0.3, -0.45, 5.0]], requires_grad=True)
    q = KHotQuant(6, k=1, int_bits=1.0, learn=False)  # levels up to +-16 * 2^-5 = +-0.5
    q(w).sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0, 0.0]]


def test_fixed_layers_forward():
    torch.manual_seed(0)
    lin = FixedLinear(20, 6, width=6)
    x = torch.randn(3, 20)
    wq = lin.quant_weight().detach()
    steps = lin.weight_quant.scale_for(lin.weight)
    assert steps.shape == (6, 1) and torch.equal(torch.round(wq / steps), wq / steps)
    assert torch.allclose(lin(x), x @ wq.T)
    conv = FixedConv2d(2, 4, 3, width=5, k=2)
    ints = conv.weight_quant.integer_weights(conv.weight).numpy()
    assert (naf_weight(ints) <= 2).all()
    assert conv(torch.randn(1, 2, 6, 6)).shape == (1, 4, 4, 4)
    bn = FixedBatchNorm(4).train()
    y = bn(torch.randn(16, 4, 5, 5) * 3 + 1)
    assert y.shape == (16, 4, 5, 5) and not torch.equal(bn.running_mean, torch.zeros(4))
    add = FixedAdd(8, int_bits=3.0)
    s = add(torch.tensor([1.0, 3.0]), torch.tensor([0.126, 2.0]))
    assert s.tolist() == [1.125, 3.96875]


def test_export_refuses_what_qonnx_cannot_express(tmp_path):
    from flow.frontend.export import export_qonnx

    for kwargs, word in [({"overflow": "WRAP"}, "WRAP"), ({"overflow": "SAT_ZERO"}, "SAT_ZERO"),
                         ({"rounding": "RND"}, "RND"), ({"rounding": "RND_MIN_INF"}, "RND_MIN_INF")]:
        model = torch.nn.Sequential(torch.nn.Flatten(), FixedAct(8, int_bits=2.0, **kwargs))
        with pytest.raises(UserError, match=rf"quantizer '1' uses \w+ mode {word}, which a QONNX Quant node"):
            export_qonnx(model, tmp_path / "x.onnx", input_shape=(1, 1, 2, 2), check_images=0)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("rounding,overflow,signed", [
    ("TRN", "SAT", True), ("TRN_ZERO", "SAT_SYM", True), ("RND_ZERO", "SAT", False),
    ("RND_INF", "SAT_SYM", True), ("RND_CONV", "SAT", True), ("RND_CONV", "SAT_SYM", False)])
def test_exported_quant_node_matches_quantize_fixed(tmp_path, rounding, overflow, signed):
    from qonnx.core.modelwrapper import ModelWrapper

    from flow.frontend.export import compare, export_qonnx, random_images

    model = torch.nn.Sequential(torch.nn.Flatten(), FixedAct(5, int_bits=-1.0, signed=signed, rounding=rounding,
                                                             overflow=overflow))
    path = export_qonnx(model, tmp_path / "q.onnx", input_shape=(1, 1, 8, 8), check_images=0)
    mw = ModelWrapper(str(path))
    (node,) = mw.get_nodes_by_op_type("Quant")
    attrs = {a.name: (a.s.decode() if a.s else a.i) for a in node.attribute}
    from flow.train.nn.qfx import QONNX_ROUNDING

    assert attrs == {"rounding_mode": QONNX_ROUNDING[rounding], "signed": int(signed),
                     "narrow": int(overflow == "SAT_SYM" and signed)}
    assert float(mw.get_initializer(node.input[1])) == 2.0 ** -6
    assert float(mw.get_initializer(node.input[2])) == 0.0 and float(mw.get_initializer(node.input[3])) == 5.0
    # images / 255 hit many exact ties of the 2^-6 grid only rarely: add a tie-rich check too
    images = random_images(16, (1, 1, 8, 8), seed=3)
    r = compare(model, mw, images)
    assert r["top1_mismatches"] == 0 and r["max_abs_diff"] == 0.0
