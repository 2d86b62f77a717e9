"""A fuzz spec (flow.fuzz.spec) as a Brevitas model with its weights set, BatchNorms and
activation scales calibrated on random inputs of its type, exported to QONNX as a user would
(brevitas.export.export_qonnx on the model as it is)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from flow.fuzz.spec import Block, Spec

# integer inputs x of each input type; the float model sees x * SEEN[type]
RANGES = {"uint8": (0, 255), "int8": (-128, 127), "bipolar": (-1, 1)}
SEEN = {"uint8": 1 / 255, "int8": 1.0, "bipolar": 1.0}
CALIB_IMAGES = 32
MIN_ACT_SCALE = 1e-3


def build_flag(spec: Spec) -> str | None:
    """The build's --input-type for the spec's input (None: the default uint8 pixels p/255)."""
    return None if spec.input_type == "uint8" else spec.input_type


def inputs(spec: Spec, n: int, seed: int) -> np.ndarray:
    """`n` integer inputs of the spec's type and shape (uniform over the type's values)."""
    rng = np.random.default_rng(seed)
    if spec.input_type == "bipolar":
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, *spec.shape))
    lo, hi = RANGES[spec.input_type]
    x = rng.integers(lo, hi + 1, (n, *spec.shape))
    return x.astype(np.uint8) if spec.input_type == "uint8" else x.astype(np.int64)


def to_float(spec: Spec, x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32) * np.float32(SEEN[spec.input_type]))


# --- layers ---------------------------------------------------------------------------------

def _weight_quant(bits: int, scale: str, kind: str = "random") -> dict:
    from brevitas.quant import (Int8WeightPerChannelFloat, Int8WeightPerTensorFixedPoint,
                                Int8WeightPerTensorFloat, SignedBinaryWeightPerTensorConst)

    if bits == 1:
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    quant = {"float": Int8WeightPerTensorFloat, "channel": Int8WeightPerChannelFloat,
             "pow2": Int8WeightPerTensorFixedPoint}[scale]
    if kind == "zero":  # a scale from the statistics of all-zero weights would be Brevitas's minimum
        return {"weight_quant": quant, "weight_bit_width": bits, "weight_scaling_impl_type": "const",
                "weight_scaling_const": 0.125}
    return {"weight_quant": quant, "weight_bit_width": bits}


def act(kind: str, bits: int) -> nn.Module:
    from brevitas.nn import QuantIdentity, QuantReLU

    if kind == "bipolar":
        return QuantIdentity(quant_type="binary", scaling_impl_type="const", bit_width=1, min_val=-1.0, max_val=1.0)
    # a floor on the calibrated scale: a dead activation (constant 0 on the calibration inputs)
    # would otherwise get Brevitas's minimum, 1e-10, and overflow everything after it
    if kind == "relu":
        return QuantReLU(bit_width=bits, scaling_min_val=MIN_ACT_SCALE)
    return QuantIdentity(bit_width=max(2, bits), scaling_min_val=MIN_ACT_SCALE)


def _compute(b: Block, dims: int, cin: int, cout: int, groups: int = 1, k: int | None = None,
             pad: int | None = None, stride: int | None = None) -> nn.Module:
    """The layer of a conv/dw/fc block (or of one branch), without its activation."""
    from brevitas.nn import QuantConv1d, QuantConv2d, QuantLinear

    wq = _weight_quant(b.w_bits, b.scale, b.weights)
    if dims == 0:
        return QuantLinear(cin, cout, bias=b.bias, **wq)
    conv = QuantConv1d if dims == 1 else QuantConv2d
    return conv(cin, cout, b.k if k is None else k, stride=b.stride if stride is None else stride,
                padding=b.pad if pad is None else pad, groups=groups, bias=b.bias, **wq)


def _norm(b: Block, dims: int, c: int) -> nn.Module:
    if not b.bn:
        return nn.Identity()
    return nn.BatchNorm2d(c) if dims == 2 else nn.BatchNorm1d(c)


class Join(nn.Module):
    """Two computing branches from one tensor: summed (add) or concatenated on channels (cat),
    each ending in a shared quantizer (or one each, `two_scales`), then a requantizer. A shortcut
    add has one branch only, ending in the quantizer that produced its input (`in_q`); without
    one (after an average pool, or on an input read directly) it has two branches."""

    def __init__(self, b: Block, dims: int, c: int, in_q: nn.Module | None, weighted: list):
        super().__init__()
        self.kind = b.kind
        same = {"pad": b.k // 2, "stride": 1} if dims else {}
        self.a = nn.Sequential(_compute(b, dims, c, b.out, **same), _norm(b, dims, b.out))
        weighted.append((self.a[0], b))
        self.shortcut = b.shortcut and in_q is not None
        self.b = None
        if not self.shortcut:
            self.b = nn.Sequential(_compute(b, dims, c, b.out, k=1, pad=0, stride=1), _norm(b, dims, b.out))
            weighted.append((self.b[0], b))
        self.qa = in_q if self.shortcut else act(b.act, b.act_bits)
        self.qb = act(b.act, b.act_bits) if b.two_scales else self.qa
        self.requant = act(b.act, b.act_bits) if (b.kind == "add" or b.two_scales) else None
        self.out_q = self.requant if self.requant is not None else self.qa

    def forward(self, x):
        a = self.qa(self.a(x))
        other = x if self.shortcut else self.qb(self.b(x))
        y = a + other if self.kind == "add" else torch.cat([a, other], dim=1)
        return y if self.requant is None else self.requant(y)


def _after(b: Block, shape: list) -> list:
    """The shape (without batch) a block gives on `shape`."""
    c, sizes = shape[0], shape[1:]
    if b.kind in ("conv", "dw"):
        return [c if b.kind == "dw" else b.out] + [(s + 2 * b.pad - b.k) // b.stride + 1 for s in sizes]
    if b.kind == "fc":
        return [b.out]
    if b.kind in ("add", "cat"):
        return [2 * b.out if b.kind == "cat" else b.out] + sizes
    if b.kind == "maxpool":
        return [c] + [(s - b.k) // b.stride + 1 for s in sizes]
    if b.kind == "avgpool":
        return [c]
    if b.kind == "flatten":
        return [int(np.prod(shape))]
    raise ValueError(f"unknown block kind {b.kind!r}")


def _body(spec: Spec, weighted: list) -> tuple[nn.Sequential, list]:
    """The blocks as layers and the shape they give; `weighted` collects (layer, block) of every
    layer with weights."""
    shape = list(spec.shape)
    layers: list[nn.Module] = []
    last_q = None  # the quantizer whose grid the current tensor is on
    if spec.in_quant:
        last_q = act(spec.in_act, spec.in_quant)
        layers.append(last_q)
    for b in spec.blocks:
        dims, c = len(shape) - 1, shape[0]
        nxt = _after(b, shape)
        if b.kind in ("conv", "dw", "fc"):
            layers += [_compute(b, dims, c, nxt[0], groups=c if b.kind == "dw" else 1), _norm(b, dims, nxt[0])]
            weighted.append((layers[-2], b))
            last_q = act(b.act, b.act_bits)
            layers.append(last_q)
        elif b.kind in ("add", "cat"):
            join = Join(b, dims, c, last_q, weighted)
            layers.append(join)
            last_q = join.out_q
        elif b.kind == "maxpool":
            layers.append((nn.MaxPool2d if dims == 2 else nn.MaxPool1d)(b.k, stride=b.stride))
        elif b.kind == "avgpool":
            layers += [(nn.AdaptiveAvgPool2d if dims == 2 else nn.AdaptiveAvgPool1d)(1), nn.Flatten()]
            last_q = None
        else:
            layers.append(nn.Flatten())
        shape = nxt
    return nn.Sequential(*layers), shape


class FuzzNet(nn.Module):
    def __init__(self, spec: Spec):
        from brevitas.nn import QuantLinear

        super().__init__()
        self.weighted: list = []
        self.body, shape = _body(spec, self.weighted)
        feats = int(np.prod(shape))
        wq = _weight_quant(spec.out_bits, spec.out_scale, spec.out_weights)
        self.head = QuantLinear(feats, spec.classes, bias=spec.out_bias, **wq)
        self.weighted.append((self.head, Block("fc", out=spec.classes, w_bits=spec.out_bits, bias=spec.out_bias,
                                               weights=spec.out_weights, scale=spec.out_scale)))

    def forward(self, x):
        return self.head(self.body(x))


def build_model(spec: Spec) -> nn.Module:
    """The spec's model with its weights set and its BatchNorms and scales calibrated."""
    torch.manual_seed(spec.weight_seed)
    model = FuzzNet(spec).eval()
    rng = np.random.default_rng(spec.weight_seed)
    for layer, blk in model.weighted:
        set_weights(layer, blk, rng, bias_steps=0.25 if layer is model.head else 2.0)
    calibrate(model, to_float(spec, inputs(spec, CALIB_IMAGES, spec.weight_seed + 1)), rng)
    return model.eval()


def weight_codes(rng: np.random.Generator, kind: str, rows: int, per: int, bits: int) -> np.ndarray:
    """Integer weight codes (rows, per) of `kind`; random ones hold the largest code +hi and the
    smallest -hi in every row (so every row's and the tensor's float scale is the same)."""
    hi = 1 if bits == 1 else (1 << (bits - 1)) - 1
    values = np.array([-1, 1]) if bits == 1 else np.arange(-hi, hi + 1)
    if kind == "zero":
        return np.ones((rows, per), np.int64) if bits == 1 else np.zeros((rows, per), np.int64)
    if kind == "equal":
        return np.full((rows, per), rng.choice(values[values != 0]), np.int64)
    if kind == "rows":
        return np.repeat(rng.choice(values, (rows, 1)), per, axis=1).astype(np.int64)
    w = rng.choice(values, (rows, per)).astype(np.int64)
    for r in range(rows):
        at = rng.permutation(per)
        w[r, at[0]] = hi
        if per > 1:
            w[r, at[1]] = -hi
    return w


def set_weights(layer: nn.Module, blk: Block, rng: np.random.Generator, bias_steps: float = 2.0) -> None:
    """Weights = codes * scale (a random float, a power of two, or one per output channel), and
    a random float bias of about `bias_steps` weight steps (small in the output layer, whose
    logit width grows with its biases: networks of one structure then share one design)."""
    shape = tuple(layer.weight.shape)
    codes = weight_codes(rng, blk.weights, shape[0], int(np.prod(shape[1:])), blk.w_bits)
    if blk.w_bits == 1 or blk.scale == "pow2":
        scale = np.full((shape[0], 1), 2.0 ** -int(rng.integers(0, 6)))
    elif blk.scale == "channel":
        scale = 2.0 ** rng.uniform(-6, 0, (shape[0], 1))
    else:
        scale = np.full((shape[0], 1), 2.0 ** rng.uniform(-6, 0))
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy((codes * scale).reshape(shape).astype(np.float32)))
        if layer.bias is not None:
            layer.bias.copy_(torch.from_numpy((rng.normal(0, bias_steps, shape[0]) * scale[:, 0]).astype(np.float32)))


def calibrate(model: nn.Module, x: torch.Tensor, rng: np.random.Generator) -> None:
    """One pass over `x` that sets every BatchNorm from what it sees (running statistics
    perturbed from the measured ones, gamma of random sign and magnitude 0.5..1.5, beta ~
    N(0, 0.25)) while the activation quantizers collect their scale statistics (training mode,
    as Brevitas does while training); then eval mode."""
    from brevitas.proxy.runtime_quant import ActQuantProxyFromInjector

    def fit(bn, args):
        t = args[0].value if hasattr(args[0], "value") else args[0]
        dims = [d for d in range(t.dim()) if d != 1]
        mean, var = t.mean(dim=dims), t.var(dim=dims) if t.numel() > t.shape[1] else torch.ones(t.shape[1])
        n = bn.num_features
        gamma = np.where(rng.random(n) < 0.5, -1.0, 1.0) * (rng.random(n) + 0.5)
        shift, stretch = rng.standard_normal(n), rng.random(n) * 1.5 + 0.5
        t32 = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
        bn.running_mean.copy_(mean + 0.5 * t32(shift) * var.sqrt())
        bn.running_var.copy_(var * t32(stretch) + 1e-3)
        bn.weight.data.copy_(t32(gamma))
        bn.bias.data.copy_(t32(rng.standard_normal(n) * 0.5))

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    hooks = [bn.register_forward_pre_hook(fit) for bn in norms]
    model.eval()
    for mod in model.modules():
        if isinstance(mod, ActQuantProxyFromInjector):
            mod.train()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    model.eval()


def export(spec: Spec, model: nn.Module, path: Path) -> Path:
    """QONNX export with brevitas.export.export_qonnx (TorchScript exporter) on one input."""
    from brevitas.export import export_qonnx

    from flow.frontend.export import _quiet

    path = Path(path)
    with _quiet(), contextlib.redirect_stdout(io.StringIO()):
        export_qonnx(model.eval(), to_float(spec, inputs(spec, 1, 0)), str(path), dynamo=False)
    return path


def torch_logits(spec: Spec, model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = model.eval()(to_float(spec, x))
    return (y.value if hasattr(y, "value") else y).numpy()
