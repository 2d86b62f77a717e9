"""Streamline a cleaned QONNX graph of a binarized MLP into a dataflow graph.

The graph must be a chain:  input -> [shape/affine ops] -> BipolarQuant ->
( MatMul|Gemm (binary weights) -> [affine ops, BatchNorm] -> BipolarQuant )* ->
MatMul|Gemm -> [affine ops] -> output.

Every float segment between two quantizers is turned into integer thresholds by
evaluating it (with onnxruntime, optimisations off, exactly the float32 ops of the
file) on every value its integer input can take: 256 pixel values for the input
binariser, every reachable XNOR-popcount accumulator for a hidden layer. The
thresholds therefore agree with the float model on every reachable value, not only on
the images tried. The output segment must be one increasing (or decreasing) function
shared by all classes; its table maps integer logits to the model's float logits.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from flow.errors import UserError
from flow.graph import DataflowGraph

SHAPE_OPS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze"}
AFFINE_OPS = {"Mul", "Add", "Sub", "Div", "BatchNormalization"}
LAYER_OPS = {"MatMul", "Gemm"}
ACT_QUANT = {"BipolarQuant"}


def _chain(mw) -> list[onnx.NodeProto]:
    """The nodes from the graph input to its output, checking there is no branching."""
    g = mw.graph
    inits = {i.name for i in g.initializer}
    tensor = [i.name for i in g.input if i.name not in inits][0]
    out_name = g.output[0].name
    nodes = []
    seen = set()
    while tensor != out_name:
        consumers = [n for n in g.node if tensor in n.input]
        if len(consumers) != 1:
            what = "no consumer" if not consumers else f"{len(consumers)} consumers"
            raise UserError(f"tensor {tensor!r} has {what}; only a single chain of layers (no branches) is supported in this version")
        node = consumers[0]
        if node.name in seen:
            raise UserError(f"node {node.name!r} forms a cycle")
        seen.add(node.name)
        dyn = [i for i in node.input if i and i not in inits]
        if len(dyn) != 1:
            raise UserError(f"node {node.name!r} ({node.op_type}) combines {len(dyn)} computed tensors; only single-input layers are supported in this version")
        nodes.append(node)
        tensor = node.output[0]
    if len(nodes) != len(g.node):
        extra = [n for n in g.node if n.name not in seen][0]
        raise UserError(f"node {extra.name!r} ({extra.op_type}) is not on the path from input to output")
    return nodes


def _ort_session(mw, nodes, in_name: str, in_shape, out_name: str):
    import onnxruntime as ort

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
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run([out_name], {in_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def _scalar_scale(mw, node) -> float:
    s = mw.get_initializer(node.input[1])
    if s is None or np.asarray(s).size != 1 or float(np.asarray(s).ravel()[0]) <= 0:
        raise UserError(f"activation quantizer {node.name!r} must have one positive scale; per-channel activation scales are not supported")
    return float(np.asarray(s).ravel()[0])


def _check_ops(nodes, allowed: set, where: str) -> None:
    for n in nodes:
        if n.op_type in ("Quant", "IntQuant", "Trunc", "QuantReLU"):
            raise UserError(f"node {n.name!r} is a multi-bit quantizer ({n.op_type}); only binary (BipolarQuant) activations are supported in this version")
        if n.op_type not in allowed:
            raise UserError(f"node {n.name!r} has op type {n.op_type!r}, which is not supported {where}; supported there: {', '.join(sorted(allowed))}")


def _layer_weights(mw, node) -> tuple[np.ndarray, np.ndarray]:
    """Return (sign bits (MH, MW) uint8, per-row magnitude (MH,)) of a MatMul/Gemm."""
    w = mw.get_initializer(node.input[1])
    if w is None:
        raise UserError(f"layer {node.name!r} ({node.op_type}) has no constant weights")
    w = np.asarray(w, dtype=np.float32)
    if node.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA", 0):
            raise UserError(f"layer {node.name!r}: Gemm with transA=1 is not supported")
        if len(node.input) > 2 and node.input[2]:
            raise UserError(f"layer {node.name!r} has a bias; binary layers without bias are supported in this version")
        w = w if attrs.get("transB", 0) else w.T
        w = w * np.float32(attrs.get("alpha", 1.0))
    else:
        w = w.T
    if w.ndim != 2:
        raise UserError(f"layer {node.name!r}: weights of rank {w.ndim}; only 2-D (fully connected) weights are supported in this version")
    mag = np.abs(w)
    row = mag[:, :1]
    if not np.all(mag == row) or np.any(row == 0):
        raise UserError(f"layer {node.name!r} has float or multi-bit weights; only binary (BipolarQuant) weights are supported in this version")
    return (w > 0).astype(np.uint8), row[:, 0].astype(np.float32)


def _monotone_threshold(bits: np.ndarray, values: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """bits (K, C) of a sign over ascending `values` (K,) -> (flip (C,) bool, threshold (C,)).

    Without flip: bit == (value >= thr). With flip: bit == (value <= thr), i.e.
    bit == (-value >= -thr); `thr` returned is then for the negated value.
    Unreachable thresholds are values[-1]+1 (never) and values[0] (always).
    """
    k, c = bits.shape
    flips = np.zeros(c, dtype=bool)
    thr = np.zeros(c, dtype=np.int64)
    for ch in range(c):
        b = bits[:, ch].astype(np.int8)
        d = np.diff(b)
        if np.all(d >= 0):
            ones = np.nonzero(b)[0]
            thr[ch] = values[ones[0]] if ones.size else values[-1] + 1
        elif np.all(d <= 0):
            flips[ch] = True
            ones = np.nonzero(b)[0]
            # bit = value <= v_last_one  <=>  -value >= -v_last_one
            thr[ch] = -values[ones[-1]] if ones.size else -values[0] + 1
        else:
            raise UserError(f"{what}, channel {ch}: the activation is not monotone in its input, so it cannot be a threshold")
    return flips, thr


def streamline(mw, input_scale: float | None = None, model_name: str = "model") -> DataflowGraph:
    """Turn a cleaned QONNX binarized MLP into a dataflow graph (unfolded: PE=SIMD=1)."""
    nodes = _chain(mw)
    g = mw.graph
    inits = {i.name for i in g.initializer}
    in_vi = [i for i in g.input if i.name not in inits][0]
    in_shape = [d.dim_value for d in in_vi.type.tensor_type.shape.dim]

    # ---- segment the chain ---------------------------------------------------------
    q_idx = [i for i, n in enumerate(nodes) if n.op_type in ACT_QUANT]
    l_idx = [i for i, n in enumerate(nodes) if n.op_type in LAYER_OPS]
    if not l_idx:
        raise UserError("the model has no MatMul/Gemm layer; nothing to accelerate")
    if not q_idx or q_idx[0] > l_idx[0]:
        first = nodes[l_idx[0]]
        raise UserError(f"layer {first.name!r} receives an unquantized float input; the input must be binarised by a BipolarQuant before the first layer")
    pre = nodes[: q_idx[0]]
    _check_ops(pre, SHAPE_OPS | AFFINE_OPS, "before the input quantizer")

    # ---- input binariser: evaluate on all 256 pixel values ---------------------------
    scale = np.float32(input_scale) if input_scale is not None else None
    pixel = np.arange(256, dtype=np.float32)
    x_vals = pixel * scale if scale is not None else pixel / np.float32(255.0)
    qin = nodes[q_idx[0]]
    run = _ort_session(mw, pre, in_vi.name, in_shape, qin.input[0]) if pre else None
    rows = []
    for v in x_vals:
        x = np.full(in_shape, v, dtype=np.float32)
        rows.append((run(x) if run else x).ravel())
    y = np.stack(rows)  # (256, F)
    in_bits = (y >= 0).astype(np.uint8)
    in_flip, in_thr = _monotone_threshold(in_bits, np.arange(256), f"input quantizer {qin.name!r}")
    if np.any(in_flip):
        # a decreasing pixel map: threshold the complement and flip the next layer's column
        # bit = (p <= P) with thr = -P; its complement is p >= P + 1
        in_thr = np.where(in_flip, -in_thr + 1, in_thr)
    features = y.shape[1]
    act_scale = _scalar_scale(mw, qin)
    perm = _nhwc_permutation(in_shape, features)

    dfg = DataflowGraph.empty(model_name)
    dfg.add_node("Thresholding", "Thresholding_0",
                 {"NumChannels": features, "PE": 1, "InputBits": 8, "InputSigned": 0},
                 {"thresholds": in_thr[perm].reshape(-1, 1).astype(np.int64)})

    # ---- layers ------------------------------------------------------------------------
    col_flip = in_flip[perm]
    prev_width = features
    pos = q_idx[0] + 1
    layer_no = 0
    while pos < len(nodes):
        shape_nodes = []
        while pos < len(nodes) and nodes[pos].op_type in SHAPE_OPS:
            shape_nodes.append(nodes[pos])
            pos += 1
        if pos >= len(nodes) or nodes[pos].op_type not in LAYER_OPS:
            bad = nodes[pos] if pos < len(nodes) else nodes[-1]
            raise UserError(f"node {bad.name!r} ({bad.op_type}) follows a quantizer; a MatMul/Gemm layer was expected there")
        layer = nodes[pos]
        w_bits, w_mag = _layer_weights(mw, layer)
        mh, mw_ = w_bits.shape
        if mw_ != prev_width:
            raise UserError(f"layer {layer.name!r} expects {mw_} inputs but receives {prev_width}")
        if layer_no == 0:
            w_bits = w_bits[:, perm]
        w_bits = np.where(col_flip[None, :], 1 - w_bits, w_bits).astype(np.uint8)
        end = pos + 1
        while end < len(nodes) and nodes[end].op_type not in ACT_QUANT:
            end += 1
        seg = nodes[pos + 1:end]
        _check_ops(seg, AFFINE_OPS | {"Identity"}, "between a layer and its activation")
        acc = np.arange(-mw_, mw_ + 1, 2, dtype=np.int64)  # every reachable accumulator
        mult = (np.float32(act_scale) * w_mag).astype(np.float32)
        x = acc.astype(np.float32)[:, None] * mult[None, :]
        target = nodes[end].input[0] if end < len(nodes) else nodes[-1].output[0]
        if not seg:
            y = x
        else:
            y = _ort_session(mw, seg, layer.output[0], x.shape, target)(x)
        name = f"BinaryMVU_{layer_no}"
        if end < len(nodes):
            bits = (y >= 0).astype(np.uint8)
            flip, thr_acc = _monotone_threshold(bits, acc, f"layer {layer.name!r}")
            w_bits = np.where(flip[:, None], 1 - w_bits, w_bits).astype(np.uint8)
            # acc = 2*pc - MW  ->  pc >= ceil((thr_acc + MW) / 2)
            thr_pc = np.clip(-((-(thr_acc + mw_)) // 2), 0, mw_ + 1)
            dfg.add_node("BinaryMVU", name, {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 1,
                                             "ram_style": "auto"},
                         {"weights": w_bits, "thresholds": thr_pc.reshape(-1, 1).astype(np.int64)})
            act_scale = _scalar_scale(mw, nodes[end])
            col_flip = np.zeros(mh, dtype=bool)
            prev_width = mh
            pos = end + 1
            layer_no += 1
            continue
        # ---- output layer: integer logits and their float table ----------------------
        table = np.asarray(y, dtype=np.float32).reshape(len(acc), -1)
        if table.shape[1] != mh:
            raise UserError(f"the output after layer {layer.name!r} has {table.shape[1]} values per class row; expected {mh}")
        if not np.all(table == table[:, :1]):
            raise UserError(f"the output layer {layer.name!r} is followed by a per-class affine; only one scale and bias shared by all classes is supported")
        col = table[:, 0]
        d = np.diff(col)
        if np.all(d > 0):
            logits_table = col  # indexed by (acc+MW)/2 = popcount
        elif np.all(d < 0):
            w_bits = (1 - w_bits).astype(np.uint8)  # popcount' = MW - popcount
            logits_table = col[::-1]
        else:
            raise UserError(f"the output of layer {layer.name!r} is not strictly monotone in the accumulator, so integer top-1 would differ from the float model")
        dfg.add_node("BinaryMVU", name, {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0,
                                         "ram_style": "auto"},
                     {"weights": w_bits})
        dfg.add_node("LabelSelect", "LabelSelect_0", {"Labels": mh, "PE": 1, "InputBits": 1}, {})
        pcs = np.arange(mw_ + 1, dtype=np.float64)
        sc = float((np.float64(logits_table[-1]) - np.float64(logits_table[0])) / mw_)
        dfg.set_initializer("output_table", logits_table.astype(np.float32))
        dfg.set_meta("output", {"scale": sc, "bias": float(logits_table[0]), "logits": "popcount",
                                "max_affine_error": float(np.max(np.abs(sc * pcs + float(logits_table[0]) - logits_table)))})
        break
    dfg.set_meta("input", {"shape": in_shape, "scale": float(input_scale) if input_scale is not None else None,
                           "convention": "uint8 pixels p; the model sees p/255" if input_scale is None
                           else f"uint8 pixels p; the model sees p*{input_scale}",
                           "wire_order": "NHWC"})
    # the label select reads popcounts of the last MVU
    last_mvu = [n for n in dfg.nodes if n.op_type == "BinaryMVU"][-1]
    ops = {o.name: o for o in dfg.ops()}
    ops["LabelSelect_0"].set_attr("InputBits", ops[last_mvu.name].out_bits())
    dfg.finalize_io()
    return dfg


def _nhwc_permutation(in_shape: list[int], features: int) -> np.ndarray:
    """Feature index (NCHW ravel order) for each position of the NHWC wire order."""
    dims = in_shape[1:]
    if int(np.prod(dims)) != features:
        raise UserError(f"the input quantizer produces {features} values but the input has {int(np.prod(dims))}")
    if len(dims) == 3:
        c, h, w = dims
        return np.arange(features).reshape(c, h, w).transpose(1, 2, 0).ravel()
    return np.arange(features)
