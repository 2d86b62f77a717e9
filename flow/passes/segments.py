"""Evaluating float segments of a QONNX graph exactly as the file computes them."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from flow.core.errors import UserError

SHAPE_OPS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze"}
AFFINE_OPS = {"Mul", "Add", "Sub", "Div", "BatchNormalization"}
FLOAT_OPS = AFFINE_OPS | {"Relu", "Clip"}  # monotone float ops a float segment absorbs into thresholds
LAYER_OPS = {"MatMul", "Gemm", "Conv"}
ACT_QUANT = {"BipolarQuant", "Quant"}


def attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def ort_session(mw, nodes, in_name: str, in_shape, out_name: str):
    """A function running `nodes` (float ops only) from `in_name` to `out_name` in
    onnxruntime with graph optimisations off, so each op rounds as the file says."""
    import onnxruntime as ort  # deferred: heavy, and only the streamline of float segments runs it

    g = mw.graph
    names = {i for n in nodes for i in n.input}
    inits = [i for i in g.initializer if i.name in names]
    graph = helper.make_graph(
        list(nodes), "segment",
        [helper.make_tensor_value_info(in_name, onnx.TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, None)],
        initializer=inits,
    )
    opsets = [o for o in mw.model.opset_import if o.domain in ("", "ai.onnx")]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = min(mw.model.ir_version, 10)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime rejects what it cannot run
        raise UserError(f"the float ops after {in_name!r} could not be evaluated ({type(exc).__name__})") from None
    return lambda x: sess.run([out_name], {in_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def nhwc_permutation(shape: tuple) -> np.ndarray:
    """Logical NCHW-flat index at each position of the NHWC stream order."""
    if len(shape) == 3:
        c, h, w = shape
        return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
    return np.arange(int(np.prod(shape)))


def channels_last_permutation(shape: tuple) -> np.ndarray:
    """Logical (C-order) flat index at each position of the channels-last stream order
    (NHWC for (C, H, W), NLC for (C, L)); a vector as it is."""
    n = int(np.prod(shape))
    if len(shape) < 2:
        return np.arange(n)
    return np.arange(n).reshape(shape).transpose(*range(1, len(shape)), 0).ravel()


def check_ops(nodes, allowed: set, where: str) -> None:
    for n in nodes:
        if n.op_type in ("IntQuant", "Trunc", "QuantReLU", "BinaryQuant"):
            raise UserError(f"node {n.name!r} ({n.op_type}) is a quantizer the hardware cannot realise there")
        if n.op_type not in allowed:
            raise UserError(f"node {n.name!r} has op type {n.op_type!r}, which is not supported {where}; supported "
                            f"there: {', '.join(sorted(allowed))}")


def check_binary_after_relu(nodes) -> None:
    """Refuse a BipolarQuant that reads a Relu: Brevitas exports every 1-bit activation
    quantizer as BipolarQuant, the unsigned one of QuantReLU(bit_width=1) included, whose
    PyTorch output (0 or scale) the file then no longer computes (the BipolarQuant makes
    every value +scale)."""
    relu = {o: n for n in nodes if n.op_type == "Relu" for o in n.output}
    for n in nodes:
        if n.op_type == "BipolarQuant" and n.input and n.input[0] in relu:
            raise UserError(f"BipolarQuant {n.name!r} reads Relu {relu[n.input[0]].name!r}, so it gives +scale for "
                            "every value: Brevitas exports a 1-bit unsigned activation (QuantReLU with bit_width=1) "
                            "this way, which no longer computes the PyTorch model's 0 or scale; use bit_width >= 2 for "
                            "QuantReLU, or a signed binary activation (QuantIdentity with a binary act_quant)")
