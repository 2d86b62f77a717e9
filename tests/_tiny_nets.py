"""Tiny QONNX networks written directly as ONNX (no exporter): a flat input, an input
quantizer, fully connected layers with quantized weights and BatchNorm, and an output
layer. Every parameter is given, so tests can make weights all zero or constant and the
BatchNorm degenerate."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX = "qonnx.custom_op.general"


@dataclass
class Layer:
    """One fully connected layer: integer weights (MH, MW) times `w_scale`, `w_bits` bits
    (0 for bipolar +1/-1 weights); BatchNorm (gamma, beta, mean, var) or None; then an
    activation of `act_bits` (0: bipolar; ignored for the output layer)."""

    weights: np.ndarray
    w_bits: int
    w_scale: float = 1.0
    w_narrow: int = 0
    bn: tuple | None = None
    act_bits: int = 0
    act_signed: int = 0
    act_scale: float = 1.0


@dataclass
class TinyNet:
    features: int
    in_bits: int            # 0: bipolar input (pixel/255 - 0.5 >= 0)
    layers: list[Layer]     # the last one is the output layer
    in_scale: float = 1.0 / 255
    out_mul: float | None = None  # a scalar Mul after the output layer
    extra: dict = field(default_factory=dict)


class _Builder:
    def __init__(self):
        self.nodes, self.inits, self.k = [], [], 0

    def name(self, stem: str) -> str:
        self.k += 1
        return f"{stem}{self.k}"

    def const(self, value, stem="c") -> str:
        n = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), n))
        return n

    def node(self, op, inputs, domain="", **attrs) -> str:
        out = self.name(op.lower() + "_out")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), domain=domain, **attrs))
        return out

    def quant(self, x, bits, scale, signed=1, narrow=0) -> str:
        if bits == 0:
            return self.node("BipolarQuant", [x, self.const(scale, "s")], domain=QONNX)
        return self.node("Quant", [x, self.const(scale, "s"), self.const(0.0, "z"), self.const(float(bits), "b")],
                         domain=QONNX, signed=signed, narrow=narrow, rounding_mode="ROUND")


def to_onnx(net: TinyNet, batch: int = 1) -> onnx.ModelProto:
    b = _Builder()
    x = b.node("Mul", ["x", b.const(np.float32(255.0) * np.float32(net.in_scale))])
    if net.in_bits == 0:
        x = b.quant(b.node("Sub", [x, b.const(0.5)]), 0, 1.0)
    else:
        x = b.quant(x, net.in_bits, 1.0 / ((1 << net.in_bits) - 1), signed=0)
    for i, lay in enumerate(net.layers):
        w = np.asarray(lay.weights, dtype=np.float64) * lay.w_scale
        wq = b.quant(b.const(w.T.astype(np.float32), "w"), lay.w_bits, lay.w_scale, signed=1, narrow=lay.w_narrow)
        x = b.node("MatMul", [x, wq])
        if lay.bn is not None:
            x = b.node("BatchNormalization", [x, *(b.const(np.asarray(p, np.float32)) for p in lay.bn)],
                       epsilon=1e-5)
        if i + 1 < len(net.layers):
            x = b.quant(x, lay.act_bits, lay.act_scale, signed=lay.act_signed)
    if net.out_mul is not None:
        x = b.node("Mul", [x, b.const(net.out_mul)])
    b.nodes[-1].output[0] = "y"
    mh = np.asarray(net.layers[-1].weights).shape[0]
    graph = helper.make_graph(b.nodes, "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, net.features])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, mh])], initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX, 1)])
    model.ir_version = 8
    return model


def save(net: TinyNet, path: Path) -> Path:
    onnx.save(to_onnx(net), str(path))
    return Path(path)
