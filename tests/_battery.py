"""A battery of ordinary Brevitas networks of the kinds FINN's end-to-end tests and notebooks
compile, with random weights, randomised BatchNorm (both signs of gamma) and activation
scales calibrated on random inputs, as a user would after training.

Each builder returns a `Battery` entry: the PyTorch model in eval mode, the input shape (without
the batch dimension), how integer inputs map to the float tensor the model sees, and the
command-line flags that tell `bnnflow build` the same. Every builder has a `small` variant for the
default test run and a full one for the slow tier.

Inputs (integers `p`, the model sees `p * scale`):
- "uint8": p in 0..255, scale 1/255 (bnnflow's default `--input-scale`);
- "int8": p in -128..127, scale 1/128 (the grid of Brevitas's default 8-bit QuantIdentity);
- "bipolar": p in {-1, +1}, scale 1 (FINN's BIPOLAR input datatype).

Outputs: "class" (top-1 of the logits, lowest index on exact ties) or "bipolar" (the integer
code, -1 or +1, of the final bipolar quantizer).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


INPUTS = {"uint8": (0, 255, 1 / 255), "int8": (-128, 127, 1 / 128), "bipolar": (-1, 1, 1.0)}
CIFAR, MNIST = (3, 32, 32), (1, 28, 28)


@dataclass
class Battery:
    model: nn.Module
    shape: tuple
    input_type: str
    output: str = "class"
    cli: list = field(default_factory=list)
    exporter: str = "dynamo"
    export_batch: int = 1

    def inputs(self, n: int, seed: int) -> np.ndarray:
        """`n` integer inputs of the model's input type: for "uint8" and "int8" smooth noise
        (images: in both spatial axes) with a random contrast and brightness per input, so that
        inputs differ from one another as real ones do."""
        rng = np.random.default_rng(seed)
        lo, hi, _scale = INPUTS[self.input_type]
        if self.input_type == "bipolar":
            return rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, *self.shape))
        x = rng.integers(lo, hi + 1, (n, *self.shape)).astype(np.float64)
        for axis in range(2, len(self.shape) + 1)[-2:]:
            x = (x + np.roll(x, 1, axis=axis) + np.roll(x, -1, axis=axis)) / 3
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        gain = rng.uniform(0.3, 1.5, (n,) + (1,) * len(self.shape))
        shift = rng.uniform(-0.5, 0.5, gain.shape) * half
        x = np.clip(np.round(mid + (x - mid) * gain + shift), lo, hi)
        return x.astype(np.uint8 if self.input_type == "uint8" else np.int64)

    def to_float(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32) * np.float32(INPUTS[self.input_type][2]))

    def torch_outputs(self, x: np.ndarray, exact_accumulation: bool = True):
        """PyTorch on integer inputs `x`: (expected integer outputs (N,), rows whose float logits
        tie exactly at the maximum (N,), the indices that reach the maximum (N, classes) or None
        for a bipolar decision).

        With `exact_accumulation` every quantized layer sums its products without rounding (in
        float64, where sums of quantized values are exact) and rounds the sum to float32 once, then
        adds its bias: the semantics bnnflow implements (integer accumulators, README "What is
        verified"). Without it, PyTorch's float32 convolutions round partial sums in an order of
        their own, which moves a value across a quantizer's rounding boundary now and then on
        deep networks (MobileNet-v1 at 224x224: 3 of 50 inputs)."""
        with torch.no_grad(), (_exact_accumulation(self.model) if exact_accumulation else contextlib.nullcontext()):
            y = self.model(self.to_float(x))
        y = (y.value if hasattr(y, "value") else y).numpy().reshape(len(x), -1)
        if self.output == "bipolar":
            # bnnflow gives a final quantizer's codes u (README "Output kinds"): 1 for +1, 0 for -1
            return np.where(y[:, 0] > 0, 1, 0).astype(np.int64), np.zeros(len(x), bool), None
        if self.output == "decision":  # a single output, no quantizer: 1 where it is >= 0
            return np.where(y[:, 0] >= 0, 1, 0).astype(np.int64), np.zeros(len(x), bool), None
        allowed = y == y.max(axis=1, keepdims=True)
        return y.argmax(axis=1), allowed.sum(axis=1) > 1, allowed


@contextlib.contextmanager
def _exact_accumulation(model: nn.Module):
    """Every Brevitas weight layer of `model` accumulates exactly (see Battery.torch_outputs):
    the integer codes are summed exactly (float64 holds these sums) and the sum is scaled in
    float32 by the float32 value of one accumulator step, input scale x weight scale, as bnnflow
    does; a layer whose operands carry no integer codes sums their float64 values instead."""
    from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer

    def value(t):
        return t.value if hasattr(t, "value") else t

    def coded(t) -> bool:
        return hasattr(t, "int") and hasattr(t, "scale") and not torch.any(t.zero_point != 0)

    def exact(inner):
        def forward(x, weight, bias):
            if coded(x) and coded(weight):
                acc = inner(x.int().double(), weight.int().double(), None)
                step = x.scale.double() * weight.scale.double().reshape(1, -1, *[1] * (acc.dim() - 2))
                y = step.float() * acc.float()
            else:
                y = inner(value(x).double(), value(weight).double(), None).float()
            return y if bias is None else y + value(bias).reshape(1, -1, *[1] * (y.dim() - 2))
        return forward

    layers = [m for m in model.modules() if isinstance(m, QuantWeightBiasInputOutputLayer)]
    for m in layers:
        m.inner_forward_impl = exact(m.inner_forward_impl)
    try:
        yield
    finally:
        for m in layers:
            del m.inner_forward_impl


def _fit(model: nn.Module, x: torch.Tensor, seed: int) -> None:
    """One pass over `x` that sets every BatchNorm and activation scale from what it sees, in
    order: running mean and variance perturbed from the measured ones, gamma of random sign and
    magnitude 0.5..1.5, beta ~ N(0, 0.25); then the activation quantizers collect their scale
    statistics in training mode (as Brevitas does while training), BatchNorm and Dropout in eval."""
    from brevitas.proxy.runtime_quant import ActQuantProxyFromInjector

    g = torch.Generator().manual_seed(seed)

    def draw(n):
        sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
        return (torch.randn(n, generator=g), torch.rand(n, generator=g) * 1.5 + 0.5,
                sign * (torch.rand(n, generator=g) + 0.5), torch.randn(n, generator=g) * 0.5)

    draws = {bn: draw(bn.num_features) for bn in model.modules() if isinstance(bn, nn.modules.batchnorm._BatchNorm)}

    def fit(bn, args):
        t = args[0].value if hasattr(args[0], "value") else args[0]
        dims = [d for d in range(t.dim()) if d != 1]
        mean, var = t.mean(dim=dims), t.var(dim=dims)
        shift, stretch, gamma, beta = draws[bn]
        bn.running_mean.copy_(mean + 0.5 * shift * var.sqrt())
        bn.running_var.copy_(var * stretch + 1e-3)
        if bn.affine:  # (BatchNorm2d(affine=False) has only its running statistics)
            bn.weight.data.copy_(gamma)
            bn.bias.data.copy_(beta)

    hooks = [bn.register_forward_pre_hook(fit) for bn in draws]
    model.eval()
    for mod in model.modules():
        if isinstance(mod, ActQuantProxyFromInjector):
            mod.train()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    model.eval()


def _balance(model: nn.Module, x: torch.Tensor) -> None:
    """Centre the output layer's bias on the outputs it gives on `x` (per-class means; the median
    of a single output), so that every class or decision occurs, as in a trained network."""
    from brevitas.nn import QuantLinear

    last = [m for m in model.modules() if isinstance(m, QuantLinear)][-1]
    if last.bias is None:
        return
    seen = []
    hook = last.register_forward_hook(lambda _m, _i, out: seen.append(out.value if hasattr(out, "value") else out))
    with torch.no_grad():
        model(x)
        hook.remove()
        y = seen[0]
        last.bias -= y.median(dim=0).values if y.shape[1] == 1 else y.mean(dim=0)


def _finish(model, shape, input_type, seed, calib=32, **kw) -> Battery:
    entry = Battery(model, tuple(shape), input_type, **kw)
    x = entry.to_float(entry.inputs(calib, seed + 1))
    _fit(model, x, seed + 2)
    _balance(model, x)
    return entry


# --- FINN's cybersecurity MLP (notebooks/end2end_example/cybersecurity) -----------------------

class CybSecMLPForExport(nn.Module):
    """The notebook's export wrapper: bipolar inputs to {0, 1}, a bipolar decision on the output."""

    def __init__(self, mlp: nn.Module):
        super().__init__()
        from brevitas.nn import QuantIdentity

        self.pretrained = mlp
        self.qnt_output = QuantIdentity(quant_type="binary", scaling_impl_type="const", bit_width=1,
                                        min_val=-1.0, max_val=1.0)

    def forward(self, x):
        return self.qnt_output(self.pretrained((x + 1.0) / 2.0))


def cybsec_mlp(seed: int = 0, small: bool = False) -> Battery:
    from brevitas.nn import QuantLinear, QuantReLU

    torch.manual_seed(seed)
    hidden = 64
    layers, width = [], 600
    for _ in range(3):
        layers += [QuantLinear(width, hidden, bias=True, weight_bit_width=2), nn.BatchNorm1d(hidden),
                   nn.Dropout(0.5), QuantReLU(bit_width=2)]
        width = hidden
    layers.append(QuantLinear(hidden, 1, bias=True, weight_bit_width=2))
    model = CybSecMLPForExport(nn.Sequential(*layers))
    return _finish(model, (600,), "bipolar", seed, output="bipolar",
                   cli=["--input-type", "bipolar"])


# --- brevitas_examples.bnn_pynq ResNet-18 4w4a ------------------------------------------------

class MiniResNet(nn.Module):
    """QuantResNet's structure (brevitas_examples.bnn_pynq.models.resnet) at small widths: the same
    QuantBasicBlock with its shared ReLU quantizers, TruncAvgPool2d and 8-bit last layer."""

    def __init__(self, planes=(8, 16, 32), num_classes=10, bits=4, pool=8):
        super().__init__()
        from brevitas.nn import QuantLinear, QuantReLU, TruncAvgPool2d
        from brevitas.quant import Int8WeightPerTensorFloat, Int32Bias, TruncTo8bit
        from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock, make_quant_conv2d
        from brevitas.quant import Int8WeightPerChannelFloat

        self.conv1 = make_quant_conv2d(3, planes[0], 3, 8, Int8WeightPerChannelFloat, padding=1)
        self.bn1 = nn.BatchNorm2d(planes[0])
        shared = QuantReLU(bit_width=bits, return_quant_tensor=True)
        self.relu = shared
        blocks, inp = [], planes[0]
        for i, p in enumerate(planes):
            block = QuantBasicBlock(inp, p, stride=1 if i == 0 else 2, shared_quant_act=shared, act_bit_width=bits,
                                    weight_bit_width=bits, weight_quant=Int8WeightPerChannelFloat)
            blocks.append(block)
            shared, inp = block.relu_out, p
        self.layers = nn.Sequential(*blocks)
        self.final_pool = TruncAvgPool2d(kernel_size=pool, trunc_quant=TruncTo8bit, float_to_int_impl_type="FLOOR")
        self.linear = QuantLinear(inp, num_classes, weight_bit_width=8, bias=True, bias_quant=Int32Bias,
                                  weight_quant=Int8WeightPerTensorFloat)

    def forward(self, x):
        out = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.linear(self.final_pool(out).view(x.shape[0], -1))


def resnet18_4w4a(seed: int = 0, small: bool = False) -> Battery:
    torch.manual_seed(seed)
    if small:
        model = MiniResNet()
    else:
        from brevitas_examples.bnn_pynq.models import model_with_cfg

        model, _cfg = model_with_cfg("resnet18_4w4a", pretrained=False)
    # QuantBasicBlock asserts isinstance(x, QuantTensor), which torch.export's tracing breaks
    return _finish(model, CIFAR, "uint8", seed, exporter="torchscript")


# --- brevitas_examples.imagenet_classification MobileNet-v1 4-bit ----------------------------

def mobilenet_v1_4b(seed: int = 0, small: bool = False) -> Battery:
    torch.manual_seed(seed)
    if small:  # the same MobileNet class: depthwise + pointwise blocks, per-channel ReLU scales
        from brevitas_examples.imagenet_classification.models.mobilenetv1 import MobileNet

        model = MobileNet(channels=[[8], [16], [32, 32], [64]], first_stage_stride=False, act_bit_width=4,
                          weight_bit_width=4, last_layer_bit_width=4, round_average_pool=False,
                          avg_pool_kernel_size=4, num_classes=10)
        shape = CIFAR
    else:
        from brevitas_examples.imagenet_classification.models import model_with_cfg

        model, _cfg = model_with_cfg("quant_mobilenet_v1_4b", pretrained=None)
        shape = (3, 224, 224)
    return _finish(model, shape, "uint8", seed, calib=16 if not small else 32)


# --- hand-written networks ------------------------------------------------------------------

def _conv_bn_relu(conv_cls, cin, cout, bits, **conv):
    from brevitas.nn import QuantReLU

    bn = nn.BatchNorm1d(cout) if conv_cls.__name__ == "QuantConv1d" else nn.BatchNorm2d(cout)
    return [conv_cls(cin, cout, bias=False, weight_bit_width=bits, **conv), bn, QuantReLU(bit_width=bits)]


def kws_conv1d(seed: int = 0, small: bool = False) -> Battery:
    """Keyword spotting on 10 MFCC coefficients x 49 frames: Conv1d blocks, pooling, 12 classes."""
    from brevitas.nn import QuantConv1d, QuantIdentity, QuantLinear

    torch.manual_seed(seed)
    ch = 8 if small else 32
    layers = [QuantIdentity(bit_width=8)]
    layers += _conv_bn_relu(QuantConv1d, 10, ch, 4, kernel_size=3, padding=1)
    layers += _conv_bn_relu(QuantConv1d, ch, ch, 4, kernel_size=3, stride=2)        # 49 -> 24
    layers += [nn.MaxPool1d(2)]                                                      # 24 -> 12
    layers += _conv_bn_relu(QuantConv1d, ch, 2 * ch, 4, kernel_size=3, padding=1)
    layers += [nn.MaxPool1d(2), nn.Flatten(), QuantLinear(2 * ch * 6, 12, weight_bit_width=4)]
    return _finish(nn.Sequential(*layers), (10, 49), "int8", seed, cli=["--input-type", "fixed<8,1>"])


def mlp8_bias(seed: int = 0, small: bool = False) -> Battery:
    """An 8-bit MLP with biases: 8-bit input quantizer, QuantLinear(bias=True), QuantReLU 8-bit."""
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    hidden = (32,) if small else (64, 64)
    layers, width = [QuantIdentity(bit_width=8), nn.Flatten()], 28 * 28
    for h in hidden:
        layers += [QuantLinear(width, h, bias=True, weight_bit_width=8), nn.BatchNorm1d(h), QuantReLU(bit_width=8)]
        width = h
    layers.append(QuantLinear(width, 10, bias=True, weight_bit_width=8))
    return _finish(nn.Sequential(*layers), MNIST, "uint8", seed)


def cnn_asym(seed: int = 0, small: bool = False) -> Battery:
    """3x1 and 1x3 kernels, a stride-2 conv, MaxPool2d(3, stride 2), Brevitas's default 8-bit weights."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    c = 8 if small else 16
    layers = [QuantIdentity(bit_width=8),
              QuantConv2d(3, c, (3, 1), padding=(1, 0), bias=False), nn.BatchNorm2d(c), QuantReLU(bit_width=4),
              QuantConv2d(c, c, (1, 3), stride=2, padding=(0, 1), bias=False), nn.BatchNorm2d(c),
              QuantReLU(bit_width=4),                                                # 32 -> 16
              nn.MaxPool2d(3, stride=2),                                             # 16 -> 7
              QuantConv2d(c, 2 * c, 3, bias=False), nn.BatchNorm2d(2 * c), QuantReLU(bit_width=4),  # 7 -> 5
              nn.Flatten(), QuantLinear(2 * c * 25, 10)]
    return _finish(nn.Sequential(*layers), CIFAR, "uint8", seed)


class TwoBranches(nn.Module):
    """A stem, two computing branches (3x3 and 1x1 conv, each + BN + QuantReLU) from its quantized
    output, joined by Add (a QuantIdentity requantizes the sum) or by torch.cat, then a conv,
    pooling and a linear layer. Both branches end in one shared ReLU quantizer, the Brevitas idiom
    for a join (QuantCat, FINN's StreamingConcat and AddStreams take inputs of one scale)."""

    def __init__(self, join: str, c: int = 8, bits: int = 4, classes: int = 10):
        super().__init__()
        from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

        self.join = join
        self.inp = QuantIdentity(bit_width=8)
        self.stem = nn.Sequential(*_conv_bn_relu(QuantConv2d, 3, c, bits, kernel_size=3, stride=2, padding=1))
        relu_a = QuantReLU(bit_width=bits, return_quant_tensor=join == "add")
        relu_b = relu_a
        self.a = nn.Sequential(QuantConv2d(c, c, 3, padding=1, bias=False, weight_bit_width=bits), nn.BatchNorm2d(c), relu_a)
        self.b = nn.Sequential(QuantConv2d(c, c, 1, bias=False, weight_bit_width=bits), nn.BatchNorm2d(c), relu_b)
        self.requant = QuantIdentity(bit_width=bits) if join == "add" else nn.Identity()
        width = c if join == "add" else 2 * c
        self.head = nn.Sequential(*_conv_bn_relu(QuantConv2d, width, 2 * c, bits, kernel_size=3, stride=2, padding=1),
                                  nn.MaxPool2d(2), nn.Flatten(), QuantLinear(2 * c * 16, classes, weight_bit_width=bits))

    def forward(self, x):
        t = self.stem(self.inp(x))
        j = self.a(t) + self.b(t) if self.join == "add" else torch.cat([self.a(t), self.b(t)], dim=1)
        return self.head(self.requant(j))


def branch_add(seed: int = 0, small: bool = False) -> Battery:
    torch.manual_seed(seed)
    return _finish(TwoBranches("add", c=8 if small else 16), CIFAR, "uint8", seed)


def branch_concat(seed: int = 0, small: bool = False) -> Battery:
    torch.manual_seed(seed)
    return _finish(TwoBranches("concat", c=8 if small else 16), CIFAR, "uint8", seed)


def tfc_2w2a(seed: int = 0, small: bool = False) -> Battery:
    """Control: BNN-PYNQ's TFC-w2a2 (brevitas_examples.bnn_pynq), a network bnnflow compiles."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _cfg = model_with_cfg("tfc_2w2a", pretrained=False)
    return _finish(model, MNIST, "uint8", seed)


BATTERY = {f.__name__: f for f in (tfc_2w2a, cybsec_mlp, resnet18_4w4a, mobilenet_v1_4b, kws_conv1d, mlp8_bias, cnn_asym,
                                   branch_add, branch_concat)}


def export(entry: Battery, path) -> None:
    """QONNX export with brevitas.export.export_qonnx on an input of the entry's type, with the
    entry's exporter (PyTorch's default, dynamo, unless the model says otherwise)."""
    from brevitas.export import export_qonnx

    with contextlib.redirect_stdout(io.StringIO()):  # the dynamo exporter prints its progress
        export_qonnx(entry.model.eval(), entry.to_float(entry.inputs(entry.export_batch, 0)), str(path),
                     dynamo=entry.exporter == "dynamo")


# the second set of networks (tests/_battery_more.py) builds on the helpers above
from _battery_more import MORE  # noqa: E402

BATTERY.update(MORE)
