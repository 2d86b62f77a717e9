"""flow.train.nn: binary layers, their straight-through gradients, TensorNorm."""
import torch

from flow.train.nn import BinaryLinear, SignAct, TensorNorm, clip_weights


def test_sign_act_values_are_bipolar_with_sign_of_zero_positive():
    x = torch.tensor([-3.0, -1.0, -1e-6, 0.0, 1e-6, 0.7, 5.0])
    y = SignAct()(x)
    assert torch.equal(y, torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]))
    assert set(SignAct()(torch.randn(1000)).unique().tolist()) == {-1.0, 1.0}


def test_sign_act_ste_passes_gradient_only_where_abs_x_le_1():
    # Brevitas' ClampedBinaryQuant clamps to [-1, 1] before the sign: gradient 1 inside
    # the closed interval (both ends included), 0 outside.
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    g = torch.arange(1.0, 8.0)
    SignAct()(x).backward(g)
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]))


def test_binary_linear_uses_sign_of_weights_and_no_bias():
    torch.manual_seed(0)
    layer = BinaryLinear(20, 7)
    assert layer.bias is None
    wq = layer.quant_weight().value
    assert set(wq.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(wq, torch.where(layer.weight >= 0, 1.0, -1.0))
    x = torch.randn(5, 20)
    assert torch.allclose(layer(x), x @ wq.T, atol=1e-5)


def test_binary_linear_weight_ste_passes_gradient_everywhere():
    # Weights use BinaryQuant (no clamp): d out / d w is the plain straight-through identity.
    torch.manual_seed(1)
    layer = BinaryLinear(4, 3)
    with torch.no_grad():
        layer.weight[0, 0] = 3.0  # outside [-1, 1]: still receives gradient
    x = torch.randn(6, 4)
    layer(x).sum().backward()
    assert torch.allclose(layer.weight.grad, x.sum(0).expand(3, 4))


def test_clip_weights_clamps_latent_weights():
    layer = BinaryLinear(4, 3)
    with torch.no_grad():
        layer.weight.mul_(10)
    clip_weights(layer)
    assert layer.weight.abs().max() <= 1.0


def test_tensor_norm_training_and_eval():
    tn = TensorNorm()
    x = torch.randn(8, 10) * 3 + 2
    y = tn.train()(x)
    assert abs(float(y.detach().mean())) < 1e-5
    assert torch.allclose(tn.running_mean, 0.1 * x.mean().reshape(1))
    assert torch.allclose(tn.running_var, 0.9 + 0.1 * x.var(unbiased=True).reshape(1))
    with torch.no_grad():
        tn.weight.fill_(-2.0)
        tn.bias.fill_(0.5)
    ref = (x - tn.running_mean) / (tn.running_var + tn.eps).sqrt() * -2.0 + 0.5
    assert torch.allclose(tn.eval()(x), ref)


# --- low-bit grids, conv, ReSTE -------------------------------------------------------------

import pytest  # noqa: E402

from flow.train.nn import BinaryConv2d, InputQuant, QuantAct, QuantConv2dLayer, QuantLinearLayer, reste_sign  # noqa: E402


@pytest.mark.parametrize("bits,grid", [(1, [-1.0, 1.0]), (2, [-1.0, 0.0, 1.0]),
                                       (3, [-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75])])
def test_n_bit_activation_grid_has_power_of_two_scale(bits, grid):
    act = QuantAct(bits).eval()
    assert act(torch.linspace(-3, 3, 301)).unique().tolist() == grid
    scale = float(act.act_quant.scale())
    assert scale == (1.0 if bits <= 2 else 2.0 ** -(bits - 1))


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_n_bit_weights_on_power_of_two_grid(bits):
    layer = QuantLinearLayer(50, 20, bits)
    qw = layer.quant_weight()
    scale = float(qw.scale)
    assert scale == (1.0 if bits <= 2 else 2.0 ** -(bits - 1))
    ints = qw.value / scale
    assert torch.equal(ints, torch.round(ints)) and ints.abs().max() <= 2 ** (bits - 1) - (bits > 1)


def test_input_quant_is_q1_7():
    q = InputQuant(8).eval()
    assert float(q.act_quant.scale()) == 2.0 ** -7
    y = q(torch.tensor([-2.0, -1.0, 0.5, 0.99999, 3.0]))
    assert y.tolist() == [-1.0, -1.0, 0.5, 127 / 128, 127 / 128]


def test_binary_conv_is_sign_weights_without_padding():
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 5, 3).eval()
    x = torch.randn(2, 3, 8, 8)
    wq = torch.where(conv.weight >= 0, 1.0, -1.0)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, wq), atol=1e-5)
    assert conv(x).shape == (2, 5, 6, 6)
    assert int(QuantConv2dLayer(3, 4, 3, weight_bits=2).quant_weight().value.abs().max()) == 1


def test_reste_gradient_is_the_power_function_derivative():
    o, t, interval = 3.0, 1.5, 0.1
    x = torch.tensor([-2.0, -1.5, -0.5, -0.05, 0.0, 0.05, 0.2, 1.0, 1.4, 1.6], requires_grad=True)
    y = reste_sign(x, o, t, interval)
    assert y.tolist() == [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    a = x.detach().abs()
    expect = torch.where(a <= interval, torch.full_like(a, interval ** (1 / o) / interval),
                         (1 / o) * a.clamp_min(interval) ** ((1 - o) / o))
    expect = torch.where(a <= t, expect, torch.zeros_like(a))
    assert torch.allclose(x.grad, expect)
    assert x.grad[0] == 0 and x.grad[-1] == 0 and x.grad[1] > 0  # |x| = t still passes
    assert torch.isclose(x.grad[7], torch.tensor(1 / 3))  # at |x| = 1: 1/o


def test_reste_layers_keep_forward_values_and_export_path():
    torch.manual_seed(2)
    a, b = BinaryLinear(10, 4, estimator="reste"), BinaryLinear(10, 4)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 10)
    assert torch.equal(a.train()(x), b.train()(x)) and torch.equal(a.eval()(x), b.eval()(x))
    act, ref = SignAct(estimator="reste").train(), SignAct().train()
    z = torch.randn(100, requires_grad=True)
    assert torch.equal(act(z), ref(z))
    act(z).sum().backward()
    assert (z.grad[z.detach().abs() > 1.5] == 0).all() and (z.grad[z.detach().abs() < 1.5] > 0).all()
    with pytest.raises(ValueError, match="1-bit"):
        QuantAct(2, estimator="reste")
