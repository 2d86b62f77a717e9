"""flow.nn: binary layers, their straight-through gradients, TensorNorm."""
import torch

from flow.nn import BinaryLinear, SignAct, TensorNorm, clip_weights


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
