"""Streamline a cleaned QONNX graph into an integer dataflow graph.

The graph must be a chain:

    input -> [shape/affine ops] -> activation quantizer ->
    ( [MaxPool | Reshape/Flatten]* -> Conv|MatMul|Gemm (quantized weights)
      -> [affine ops, BatchNorm] -> activation quantizer )* ->
    [MaxPool | Reshape/Flatten]* -> MatMul|Gemm -> [affine ops] -> output

Every float segment between two quantizers becomes integer thresholds by evaluating it
(with onnxruntime, optimisations off: exactly the float32 ops of the file) on every
value its integer input can take: the 256 pixel values for the input quantizer, every
reachable accumulator for a layer. The thresholds therefore agree with the float model
on every reachable value, not only on the images tried. The output segment must be one
monotone function shared by all classes; its table maps integer logits to the model's
float logits.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import helper

from flow.errors import UserError
from flow.graph import DataflowGraph
from flow.quant import Codes, activation_codes, derive_thresholds, weight_integers

SHAPE_OPS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze"}
AFFINE_OPS = {"Mul", "Add", "Sub", "Div", "BatchNormalization"}
LAYER_OPS = {"MatMul", "Gemm", "Conv"}
ACT_QUANT = {"BipolarQuant", "Quant"}
MAX_ACC_VALUES = 1 << 20  # exhaustive threshold search range per layer
KHOT_MAX_TERMS = 2        # weights with at most this many power-of-two terms use shift-add


@dataclass(frozen=True)
class Tensor:
    """A quantized activation as the hardware carries it: codes, logical shape, and for
    a flattened tensor the logical (NCHW-flat) index at each stream position."""

    codes: Codes
    shape: tuple            # (C, H, W) or (F,)
    perm: tuple | None = None
    flipped: tuple | None = None  # per element: the code is complemented (binary input only)


# ---------------------------------------------------------------------------------------
# helpers


def _chain(mw) -> list[onnx.NodeProto]:
    """The nodes from the graph input to its output, checking there is no branching."""
    g = mw.graph
    inits = {i.name for i in g.initializer}
    tensor = [i.name for i in g.input if i.name not in inits][0]
    out_name = g.output[0].name
    nodes, seen = [], set()
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
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime rejects what it cannot run
        raise UserError(f"the float ops after {in_name!r} could not be evaluated ({type(exc).__name__})") from None
    return lambda x: sess.run([out_name], {in_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def _check_ops(nodes, allowed: set, where: str) -> None:
    for n in nodes:
        if n.op_type in ("IntQuant", "Trunc", "QuantReLU", "BinaryQuant"):
            raise UserError(f"node {n.name!r} ({n.op_type}) is a quantizer the hardware cannot realise there")
        if n.op_type not in allowed:
            raise UserError(f"node {n.name!r} has op type {n.op_type!r}, which is not supported {where}; supported there: {', '.join(sorted(allowed))}")


def _attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def nhwc_permutation(shape: tuple) -> np.ndarray:
    """Logical NCHW-flat index at each position of the NHWC stream order."""
    if len(shape) == 3:
        c, h, w = shape
        return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
    return np.arange(int(np.prod(shape)))


# ---------------------------------------------------------------------------------------
# the streamliner


class Streamliner:
    def __init__(self, mw, input_scale: float | None, model_name: str):
        self.mw = mw
        self.input_scale = input_scale
        self.nodes = _chain(mw)
        self.wq = getattr(mw, "weight_quant", {})
        self.dfg = DataflowGraph.empty(model_name)
        self.counts: dict[str, int] = {}
        g = mw.graph
        inits = {i.name for i in g.initializer}
        self.in_vi = [i for i in g.input if i.name not in inits][0]
        self.in_shape = [d.dim_value for d in self.in_vi.type.tensor_type.shape.dim]

    def _name(self, op_type: str) -> str:
        i = self.counts.get(op_type, 0)
        self.counts[op_type] = i + 1
        return f"{op_type}_{i}"

    def add(self, op_type: str, attrs: dict, inits: dict) -> str:
        name = self._name(op_type)
        self.dfg.add_node(op_type, name, attrs, inits)
        return name

    # -- input quantizer -----------------------------------------------------------------
    def input_layer(self, pre, qnode) -> Tensor:
        _check_ops(pre, SHAPE_OPS | AFFINE_OPS, "before the input quantizer")
        codes = activation_codes(self.mw, qnode)
        scale = np.float32(self.input_scale) if self.input_scale is not None else None
        pixel = np.arange(256, dtype=np.float32)
        x_vals = pixel * scale if scale is not None else pixel / np.float32(255.0)
        run = _ort_session(self.mw, pre, self.in_vi.name, self.in_shape, qnode.input[0]) if pre else None
        rows = []
        for v in x_vals:
            x = np.full(self.in_shape, v, dtype=np.float32)
            y = run(x) if run else x
            rows.append(y.ravel())
        out_shape = tuple(run(np.zeros(self.in_shape, np.float32)).shape[1:]) if run else tuple(self.in_shape[1:])
        u = codes.encode(np.stack(rows))  # (256, elements)
        flip, thr = derive_thresholds(u, np.arange(256), codes.levels, f"input quantizer {qnode.name!r}")
        if np.any(flip):
            if not codes.bipolar:
                raise UserError(f"input quantizer {qnode.name!r}: a decreasing pixel map is supported for binary inputs only")
            # bit = (p <= P), thr = -P: carry the complement p >= P + 1 and flip the next layer
            thr = np.where(flip[:, None], -thr + 1, thr)
        if len(out_shape) == 3:
            c, h, w = out_shape
            per = thr.reshape(c, h * w, -1)
            if not np.all(per == per[:, :1]):
                raise UserError(f"input quantizer {qnode.name!r}: the preprocessing differs between pixels of one channel; per-channel preprocessing is supported")
            ch_thr, vectors, chans = per[:, 0], h * w, c
            fl = flip.reshape(c, h * w)[:, 0]
            flipped = tuple(np.tile(fl, h * w).tolist()) if np.any(fl) else None
            if flipped is not None:
                raise UserError(f"input quantizer {qnode.name!r}: a decreasing pixel map is not supported before convolutions")
        else:
            out_shape = (int(np.prod(out_shape)),)
            ch_thr, vectors, chans = thr, 1, out_shape[0]
            flipped = None
        perm = nhwc_permutation(tuple(self.in_shape[1:])) if len(out_shape) == 1 else None
        if perm is not None:
            if perm.size != chans:
                raise UserError(f"the input quantizer produces {chans} values but the input has {perm.size}")
            ch_thr = ch_thr[perm]
            if np.any(flip):
                flipped = tuple(flip[perm].tolist())
        self.add("Thresholding", {"NumChannels": chans, "PE": 1, "InputBits": 8, "InputSigned": 0,
                                  "NumVectors": vectors}, {"thresholds": ch_thr.astype(np.int64)})
        return Tensor(codes, out_shape, tuple(perm.tolist()) if perm is not None else None, flipped)

    # -- structural ops on quantized tensors -------------------------------------------------
    def reshape(self, t: Tensor, node) -> Tensor:
        out = self.mw.get_tensor_shape(node.output[0])
        if out is None:
            raise UserError(f"node {node.name!r} ({node.op_type}) has no inferred output shape")
        out = tuple(out[1:])
        n = int(np.prod(t.shape))
        if int(np.prod(out)) != n:
            raise UserError(f"node {node.name!r} changes the number of elements")
        if len([d for d in out if d != 1]) <= 1:  # a flatten
            if t.perm is not None:
                return t
            return replace(t, shape=(n,), perm=tuple(nhwc_permutation(t.shape).tolist()))
        if out == t.shape:
            return t
        raise UserError(f"node {node.name!r} ({node.op_type}) reshapes to {out}; only flattening is supported")

    def maxpool(self, t: Tensor, node) -> Tensor:
        at = _attrs(node)
        k = at.get("kernel_shape", [1, 1])
        s = at.get("strides", k)
        if len(t.shape) != 3 or k[0] != k[1] or s[0] != s[1] or any(at.get("pads", [0]) ) or at.get("ceil_mode", 0):
            raise UserError(f"MaxPool {node.name!r}: square kernels and strides without padding on image tensors are supported")
        if t.flipped is not None:
            raise UserError(f"MaxPool {node.name!r} follows a complemented input; not supported")
        c, h, w = t.shape
        self.add("MaxPool", {"H": h, "W": w, "C": c, "K": k[0], "Stride": s[0], "PE": 1,
                             "ElemBits": t.codes.bits}, {})
        return replace(t, shape=(c, (h - k[0]) // s[0] + 1, (w - k[0]) // s[0] + 1))

    # -- layers ---------------------------------------------------------------------------------
    def layer_weights(self, t: Tensor, node):
        """Integer weights (MH, MW) in stream order, per-row scale, mode, bits, conv geometry."""
        wname = node.input[1]
        w = self.mw.get_initializer(wname)
        if w is None:
            raise UserError(f"layer {node.name!r} ({node.op_type}) has no constant weights")
        w = np.asarray(w, dtype=np.float32)
        at = _attrs(node)
        geom = None
        if node.op_type == "Conv":
            if len(t.shape) != 3:
                raise UserError(f"Conv {node.name!r} needs an image input")
            k = at.get("kernel_shape", list(w.shape[2:]))
            s, p = at.get("strides", [1, 1]), at.get("pads", [0, 0, 0, 0])
            if at.get("group", 1) != 1 or any(d != 1 for d in at.get("dilations", [1, 1])):
                raise UserError(f"Conv {node.name!r}: grouped or dilated convolutions are not supported")
            if k[0] != k[1] or s[0] != s[1] or len(set(p)) > 1 or at.get("auto_pad", "NOTSET") != "NOTSET":
                raise UserError(f"Conv {node.name!r}: square kernels, equal strides and symmetric padding are supported")
            if len(node.input) > 2 and node.input[2]:
                raise UserError(f"Conv {node.name!r} has a bias; convolutions without bias are supported")
            oc, ic = w.shape[:2]
            geom = (k[0], s[0], p[0] if p else 0)
            w2 = w.transpose(0, 2, 3, 1).reshape(oc, -1)  # (ky, kx, c) order
        elif node.op_type == "Gemm":
            if at.get("transA", 0):
                raise UserError(f"layer {node.name!r}: Gemm with transA=1 is not supported")
            if len(node.input) > 2 and node.input[2]:
                raise UserError(f"layer {node.name!r} has a bias; layers without bias are supported in this version")
            if at.get("alpha", 1.0) != 1.0:
                raise UserError(f"layer {node.name!r}: Gemm with alpha != 1 is not supported")
            w2 = w if at.get("transB", 0) else w.T
        else:
            w2 = w.T
        if w2.ndim != 2:
            raise UserError(f"layer {node.name!r}: weights of rank {w2.ndim} are not supported")
        wi, rs, mode, bits = weight_integers(w2, self.wq.get(wname), f"layer {node.name!r}")
        if geom is None:
            if len(t.shape) != 1:
                raise UserError(f"layer {node.name!r} receives an image tensor; flatten it first")
            if wi.shape[1] != t.shape[0]:
                raise UserError(f"layer {node.name!r} expects {wi.shape[1]} inputs but receives {t.shape[0]}")
            if t.perm is not None:
                wi = wi[:, list(t.perm)]
        if t.flipped is not None:
            wi = np.where(np.asarray(t.flipped)[None, :], -wi, wi)
        return wi, rs, mode, bits, geom

    def layer(self, t: Tensor, node, seg, qnext):
        """Emit (sliding window +) MVU (+ thresholds) for one layer; return the new tensor."""
        wi, rs, mode, bits, geom = self.layer_weights(t, node)
        mh, mw_ = wi.shape
        codes = t.codes
        m = (np.float64(codes.scale) * rs).astype(np.float32)  # per-row value of one accumulator step
        vectors = 1
        if geom is not None:
            c, h, w = t.shape
            k, s, p = geom
            pad_code = 0
            if p:
                zc = codes.zero_code()
                if zc is None:
                    raise UserError(f"Conv {node.name!r} pads with zeros, which a binary (+1/-1) tensor cannot represent")
                pad_code = zc
            oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            if not (k == 1 and s == 1 and p == 0):
                self.add("SlidingWindow", {"IFM_H": h, "IFM_W": w, "C": c, "K": k, "Stride": s, "Pad": p,
                                           "PadValue": pad_code, "SIMD": 1, "ElemBits": codes.bits}, {})
            vectors = oh * ow
            out_shape = (mh, oh, ow)
        else:
            out_shape = (mh,)
        binary = codes.bipolar and mode == "bipolar"
        if binary:
            w_bits = (wi > 0).astype(np.uint8)
            acc = np.arange(0, mw_ + 1, dtype=np.int64)  # popcount
            value = lambda a: m[None, :] * (2 * a[:, None] - mw_).astype(np.float32)  # noqa: E731
        else:
            if codes.bipolar:
                raise UserError(f"layer {node.name!r}: binary inputs with multi-bit weights are not supported in this version")
            umax = codes.levels - 1
            lo = int(np.minimum(wi, 0).sum(axis=1).min()) * umax
            hi = int(np.maximum(wi, 0).sum(axis=1).max()) * umax
            if hi - lo + 1 > MAX_ACC_VALUES:
                raise UserError(f"layer {node.name!r}: accumulator range {hi - lo + 1} is too large for the exact threshold search (max {MAX_ACC_VALUES})")
            acc = np.arange(lo, hi + 1, dtype=np.int64)
            offs = (codes.o * wi.sum(axis=1)).astype(np.int64)
            value = lambda a: m[None, :] * (codes.a * a[:, None] + offs[None, :]).astype(np.float32)  # noqa: E731
        conv_rank = geom is not None
        target = qnext.input[0] if qnext is not None else self.nodes[-1].output[0]
        run = _ort_session(self.mw, seg, node.output[0], ("N", mh, 1, 1) if conv_rank else ("N", mh), target) if seg else None

        def evaluate(a: np.ndarray) -> np.ndarray:
            out = []
            step = max(1, (1 << 22) // mh)
            for i in range(0, len(a), step):
                x = value(a[i:i + step]).astype(np.float32)
                if conv_rank:
                    x = x[:, :, None, None]
                y = run(x) if run else x
                out.append(np.asarray(y, dtype=np.float32).reshape(len(x), -1))
            return np.concatenate(out)

        y = evaluate(acc)
        if y.shape[1] != mh:
            raise UserError(f"the float ops after layer {node.name!r} produce {y.shape[1]} values per position; expected {mh}")
        if qnext is not None:
            nxt = activation_codes(self.mw, qnext)
            u = nxt.encode(y)
            flip, thr = derive_thresholds(u, acc, nxt.levels, f"layer {node.name!r}")
            thr = self._emit_mvu(node, wi, w_bits if binary else None, mode, bits, flip, thr, binary, mw_, vectors)
            return Tensor(nxt, out_shape)
        self._emit_output(node, y, acc, wi, w_bits if binary else None, mode, bits, binary, mw_, codes, vectors, m)
        return None

    def _weight_mode(self, wi: np.ndarray, mode: str) -> tuple[int, int, int]:
        """(WeightMode, K, ShiftBits) for integer weights."""
        from flow.ops.semantics import khot_terms

        if mode == "bipolar":
            return 0, 1, 1
        for k in range(1, KHOT_MAX_TERMS + 1):
            try:
                terms = khot_terms(wi, k)
            except ValueError:
                continue
            return 1, k, max(1, int(terms[..., 1].max()).bit_length())
        return 2, 1, 1

    def _emit_mvu(self, node, wi, w_bits, mode, bits, flip, thr, binary, mw_, vectors):
        if binary:
            w_bits = np.where(flip[:, None], 1 - w_bits, w_bits).astype(np.uint8)
            # thresholds of flipped rows are on -popcount; the flipped row counts MW - popcount
            thr = np.where(flip[:, None], thr + mw_, thr)
            thr = np.clip(thr, 0, mw_ + 1)
            self.add("BinaryMVU", {"MW": mw_, "MH": wi.shape[0], "PE": 1, "SIMD": 1, "NumThresholds": thr.shape[1],
                                   "NumVectors": vectors, "ram_style": "auto"},
                     {"weights": w_bits, "thresholds": thr.astype(np.int64)})
        else:
            wi = np.where(flip[:, None], -wi, wi)
            wm, k, sb = self._weight_mode(wi, mode)
            self.add("IntMVU", {"MW": mw_, "MH": wi.shape[0], "PE": 1, "SIMD": 1, "NumThresholds": thr.shape[1],
                                "NumVectors": vectors, "InputBits": self._in_bits(), "WeightMode": wm,
                                "WeightBits": max(bits, 2), "K": k, "ShiftBits": sb, "ram_style": "auto"},
                     {"weights": wi.astype(np.int64), "thresholds": thr.astype(np.int64)})
        return thr

    def _in_bits(self) -> int:
        last = self.dfg.ops()[-1]
        return last.out_stream().bits

    def _emit_output(self, node, y, acc, wi, w_bits, mode, bits, binary, mw_, codes, vectors, m):
        """The last layer: integer logits, a label select, and the logits -> float table."""
        if vectors != 1:
            raise UserError(f"the output layer {node.name!r} produces {vectors} positions; a flat class vector is required")
        mh = wi.shape[0]
        if not np.all(y == y[:, :1]) and binary:
            raise UserError(f"the output layer {node.name!r} is followed by a per-class affine; only one scale and bias shared by all classes is supported")
        if binary:
            col = y[:, 0]
            d = np.diff(col)
            if np.all(d > 0):
                table = col
            elif np.all(d < 0):
                w_bits = (1 - w_bits).astype(np.uint8)  # popcount' = MW - popcount
                table = col[::-1]
            else:
                raise UserError(f"the output of layer {node.name!r} is not strictly monotone in the accumulator, so integer top-1 would differ from the float model")
            self.add("BinaryMVU", {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0, "NumVectors": 1,
                                   "ram_style": "auto"}, {"weights": w_bits})
            lbits = max(1, int(mw_).bit_length())
        else:
            # integer logits L = a*acc + o*rowsum(W) share one float map f(m*L) for all classes
            if not np.all(m == m[0]):
                raise UserError(f"the output layer {node.name!r} has per-class weight scales; one scale shared by all classes is supported")
            offs = codes.o * wi.sum(axis=1)
            lmin = int(codes.a * acc[0] + offs.min())
            lmax = int(codes.a * acc[-1] + offs.max())
            if lmax - lmin + 1 > MAX_ACC_VALUES:
                raise UserError(f"the output layer {node.name!r} has a logit range too large for an exact table")
            lv = np.arange(lmin, lmax + 1, dtype=np.int64)
            run_y = self._output_curve(node, m[0], lv, mh)
            d = np.diff(run_y)
            sign = 1
            if np.all(d > 0):
                table = run_y
            elif np.all(d < 0):
                sign, table = -1, run_y[::-1]
                lmin, lmax = -lmax, -lmin
            else:
                raise UserError(f"the output of layer {node.name!r} is not strictly monotone in the accumulator, so integer top-1 would differ from the float model")
            wi = sign * wi
            wm, k, sb = self._weight_mode(wi, mode)
            self.add("IntMVU", {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0, "NumVectors": 1,
                                "InputBits": self._in_bits(), "WeightMode": wm, "WeightBits": max(bits, 2), "K": k,
                                "ShiftBits": sb, "ram_style": "auto"}, {"weights": wi.astype(np.int64)})
            # hardware logits: a*acc' + sign*o*rowsum - lmin >= 0 (a constant shift keeps the argmax)
            acc_bits = self.dfg.ops()[-1].out_stream().bits
            bias = (sign * offs - lmin).astype(np.int64)
            lbits = max(1, int(lmax - lmin).bit_length())
            self.add("FixedScale", {"NumChannels": mh, "PE": 1, "NumVectors": 1, "InputBits": acc_bits,
                                    "InputSigned": 1, "OutputBits": lbits, "OutputSigned": 0, "Shift": 0,
                                    "Rounding": 0},
                     {"mult": np.full(mh, codes.a, dtype=np.int64), "bias": bias})
        self.add("LabelSelect", {"Labels": mh, "PE": 1, "InputBits": lbits}, {})
        table = np.asarray(table, dtype=np.float32)
        n = len(table) - 1
        sc = float((np.float64(table[-1]) - np.float64(table[0])) / n) if n else 0.0
        idx = np.arange(len(table), dtype=np.float64)
        self.dfg.set_initializer("output_table", table)
        self.dfg.set_meta("output", {"scale": sc, "bias": float(table[0]), "logits": "integer, 0-based",
                                     "max_affine_error": float(np.max(np.abs(sc * idx + float(table[0]) - table)))})

    def _output_curve(self, node, m, lv, mh):
        """The output segment evaluated on every integer logit; one curve for all classes."""
        seg = self._out_seg
        x = np.repeat((np.float32(m) * lv.astype(np.float32))[:, None], mh, axis=1)
        if seg:
            run = _ort_session(self.mw, seg, node.output[0], ("N", mh), self.nodes[-1].output[0])
            step = max(1, (1 << 22) // mh)
            x = np.concatenate([np.asarray(run(x[i:i + step]), dtype=np.float32).reshape(-1, mh)
                                for i in range(0, len(x), step)])
        if not np.all(x == x[:, :1]):
            raise UserError(f"the output layer {node.name!r} is followed by a per-class affine; only one scale and bias shared by all classes is supported")
        return x[:, 0]

    # -- driver ---------------------------------------------------------------------------------
    def run(self) -> DataflowGraph:
        nodes = self.nodes
        q_idx = [i for i, n in enumerate(nodes) if n.op_type in ACT_QUANT]
        l_idx = [i for i, n in enumerate(nodes) if n.op_type in LAYER_OPS]
        if not l_idx:
            raise UserError("the model has no Conv/MatMul/Gemm layer; nothing to accelerate")
        if not q_idx or q_idx[0] > l_idx[0]:
            first = nodes[l_idx[0]]
            raise UserError(f"layer {first.name!r} receives an unquantized float input; the input must pass an activation quantizer (BipolarQuant or Quant) before the first layer")
        t = self.input_layer(nodes[: q_idx[0]], nodes[q_idx[0]])
        pos = q_idx[0] + 1
        while pos < len(nodes):
            node = nodes[pos]
            if node.op_type in SHAPE_OPS:
                t = self.reshape(t, node)
                pos += 1
                continue
            if node.op_type == "MaxPool":
                t = self.maxpool(t, node)
                pos += 1
                continue
            if node.op_type not in LAYER_OPS:
                raise UserError(f"node {node.name!r} ({node.op_type}) follows a quantizer; a MaxPool, Reshape or Conv/MatMul/Gemm layer was expected there")
            end = pos + 1
            while end < len(nodes) and nodes[end].op_type not in ACT_QUANT:
                end += 1
            seg = nodes[pos + 1:end]
            _check_ops(seg, AFFINE_OPS | {"Identity"}, "between a layer and its activation")
            qnext = nodes[end] if end < len(nodes) else None
            self._out_seg = seg
            t = self.layer(t, node, seg, qnext)
            pos = end + 1
            if t is None:
                break
        if t is not None:
            raise UserError("the model ends in a quantized activation; a final MatMul/Gemm layer producing class scores is required")
        self.dfg.set_meta("input", {"shape": self.in_shape, "scale": self.input_scale,
                                    "convention": "uint8 pixels p; the model sees p/255" if self.input_scale is None
                                    else f"uint8 pixels p; the model sees p*{self.input_scale}",
                                    "wire_order": "NHWC"})
        self.dfg.finalize_io()
        return self.dfg


def streamline(mw, input_scale: float | None = None, model_name: str = "model") -> DataflowGraph:
    """Turn a cleaned QONNX model into an (unfolded) integer dataflow graph."""
    return Streamliner(mw, input_scale, model_name).run()
