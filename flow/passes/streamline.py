"""Streamline a cleaned QONNX graph into an integer dataflow graph.

The graph is walked in topological order. Every tensor that leaves an activation
quantizer (BipolarQuant or QONNX Quant) is carried in hardware as unsigned integer
codes; everything between two quantizers becomes integer hardware:

    input -> [shape/affine ops] -> quantizer                         Thresholding on pixels
    quantized -> Reshape/Flatten | MaxPool | Pad                      absorbed / MaxPool
    quantized -> GlobalAveragePool | AveragePool [-> Trunc]          (SlidingWindow +) GlobalAccPool [+ Thresholding]
    quantized -> Conv|MatMul|Gemm -> [affine, BatchNorm, Relu] -> quantizer  (SlidingWindow +) MVU + thresholds
    quantized -> Conv -> [...] -> MaxPool -> [...] -> quantizer         MVU + thresholds + MaxPool (pool moved)
    quantized -> depthwise Conv -> [affine, BatchNorm, Relu] -> quantizer  (SlidingWindow +) VVU + thresholds
    quantized -> [affine] -> quantizer                                 Thresholding (requantize)
    quantized + quantized (Add) -> [affine] -> quantizer               AddStreams + Thresholding
    Add of two scales -> [affine] -> quantizer                         [FixedScale +] AddStreams + Thresholding
    Concat(quantized, ..., quantized) along channels, one scale        a chain of StreamingConcats
    Concat of several scales -> [affine] -> quantizer                  StreamingConcats + Thresholding
    a quantized tensor read n times                                    n - 1 Duplicates (+ FIFOs on the branches)
    ... -> MatMul|Gemm -> [affine] -> output                           MVU (+ FixedScale) + LabelSelect

Thresholds come from evaluating each float segment, exactly as the ONNX file computes
it in float32, on every value its integer input can take (flow/passes/lower_layer.py), so they
agree with the float model on every reachable value, not only on the images tried.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from flow.core.errors import UserError
from flow.core.intype import NAMES as INPUT_TYPES
from flow.core.intype import InputType, from_datatype, pixels
from flow.ir.graph import DataflowGraph
from flow.passes.lower_concat import ConcatLowering, stream_order
from flow.passes.lower_layer import LayerLowering
from flow.passes.lower_pool import POOL_OPS, PoolLowering, move_maxpools_past_quantizers
from flow.passes.lower_shape import ShapeLowering
from flow.passes.tensor import Tensor
from flow.core.quant import Codes, activation_codes, derive_thresholds
from flow.passes.segments import attrs as _attrs
from flow.passes.segments import check_binary_after_relu
from flow.passes.segments import check_ops as _check_ops
from flow.passes.segments import channels_last_permutation
from flow.passes.segments import ort_session as _ort_session
from flow.passes.segments import ACT_QUANT, FLOAT_OPS, LAYER_OPS, SHAPE_OPS



class Streamliner(LayerLowering, PoolLowering, ConcatLowering, ShapeLowering):
    def __init__(self, mw, intype: InputType, model_name: str):
        self.mw = mw
        self.intype = intype
        g = mw.graph
        self.nodes = list(g.node)
        self.wq = getattr(mw, "weight_quant", {})
        self.dfg = DataflowGraph.empty(model_name)
        self.counts: dict[str, int] = {}
        self.inits = {i.name for i in g.initializer}
        self.in_vi = [i for i in g.input if i.name not in self.inits][0]
        self.in_shape = [d.dim_value for d in self.in_vi.type.tensor_type.shape.dim]
        self.out_name = g.output[0].name
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                if i and i not in self.inits:
                    self.consumers.setdefault(i, []).append(n)
        self.q: dict[str, Tensor] = {}          # quantized ONNX tensors
        self.handouts: dict[str, list[str]] = {}  # hw streams still to hand to consumers
        self.done: set[str] = set()

    # -- bookkeeping -------------------------------------------------------------------------
    def _name(self, op_type: str) -> str:
        i = self.counts.get(op_type, 0)
        self.counts[op_type] = i + 1
        return f"{op_type}_{i}"

    def add(self, op_type: str, attrs: dict, inits: dict, inputs: list[str], outputs: int = 1):
        """Append a hardware op reading `inputs`; return its ONNX node."""
        return self.dfg.add_node(op_type, self._name(op_type), attrs, inits, inputs=inputs, outputs=outputs)

    def publish(self, name: str, t: Tensor) -> None:
        """Make ONNX tensor `name` available as `t`; fork its stream if it is read twice."""
        readers = len(self.consumers.get(name, []))
        streams = [t.hw]
        while len(streams) < readers:
            src = streams.pop(0)
            elems = int(np.prod(t.shape))
            dup = self.add("Duplicate", {"NumElems": elems, "PE": 1, "ElemBits": t.codes.bits}, {}, [src], 2)
            streams += list(dup.output)
        self.q[name] = t
        self.handouts[name] = streams

    def take(self, name: str, node) -> Tensor:
        if name not in self.q:
            raise UserError(f"node {node.name!r} ({node.op_type}) reads {name!r}, which is not a quantized tensor; "
                            "the hardware needs an activation quantizer there")
        return replace(self.q[name], hw=self.handouts[name].pop(0))

    def chain_to_quantizer(self, start: str, node):
        """From tensor `start`, follow single-reader float ops to the next quantizer.

        Returns (segment nodes, quantizer node or None at the graph output)."""
        seg, t = [], start
        while t != self.out_name:
            readers = self.consumers.get(t, [])
            if len(readers) != 1:
                raise UserError(f"the float tensor {t!r} after {node.name!r} is read {len(readers)} times; "
                                "branches must start after an activation quantizer")
            n = readers[0]
            if n.op_type in ACT_QUANT:
                return seg, n
            seg.append(n)
            t = n.output[0]
        return seg, None

    def quantizer_after(self, node):
        """(float ops, quantizer) where only single-reader float ops lead from `node` to a quantizer, else None."""
        seg, t = [], node.output[0]
        while t != self.out_name and len(self.consumers.get(t, [])) == 1:
            n = self.consumers[t][0]
            if n.op_type in ACT_QUANT:
                return seg, n
            if n.op_type not in FLOAT_OPS | {"Identity"}:
                return None
            seg.append(n)
            t = n.output[0]
        return None

    # -- the input -----------------------------------------------------------------------------
    def input_layer(self, pre, qnode) -> Tensor:
        """Input -> [float ops] -> quantizer, as a Thresholding unit on the input codes."""
        _check_ops(pre, SHAPE_OPS | FLOAT_OPS, "before the input quantizer")
        codes = activation_codes(self.mw, qnode)
        if codes.per_channel:
            raise UserError(f"input quantizer {qnode.name!r} has per-channel scales; one scale is supported there")
        it = self.intype
        x_vals = it.float_values(it.values())
        run = _ort_session(self.mw, pre, self.in_vi.name, self.in_shape, qnode.input[0]) if pre else None
        rows = [(run(np.full(self.in_shape, v, np.float32)) if run else np.full(self.in_shape, v, np.float32)).ravel()
                for v in x_vals]
        out_shape = tuple(run(np.zeros(self.in_shape, np.float32)).shape[1:]) if run else tuple(self.in_shape[1:])
        rank = 1 if len(out_shape) == 2 else 2
        if rank == 1:  # a (C, L) sequence: an image of height 1
            out_shape = (out_shape[0], 1, out_shape[1])
        where = f"input quantizer {qnode.name!r}"
        u = codes.encode(np.stack(rows), where)  # (levels, elements)
        flip, thr = derive_thresholds(u, np.arange(it.levels), codes.levels, where)
        if np.any(flip):
            if not codes.bipolar:
                raise UserError(f"input quantizer {qnode.name!r}: a decreasing input map is supported for binary "
                                "quantizers only")
            # bit = (p <= P), thr = -P: carry the complement p >= P + 1 and flip the next layer
            thr = np.where(flip[:, None], -thr + 1, thr)
        flipped = None
        if len(out_shape) == 3 and (len(self.in_shape) == 4 or rank == 1):
            c, h, w = out_shape
            per = thr.reshape(c, h * w, -1)
            if not np.all(per == per[:, :1]):
                raise UserError(f"input quantizer {qnode.name!r}: the preprocessing differs between pixels of one "
                                "channel; per-channel preprocessing is supported")
            if np.any(flip):
                raise UserError(f"input quantizer {qnode.name!r}: a decreasing pixel map is not supported before convolutions")
            ch_thr, vectors, chans, perm = per[:, 0], h * w, c, None
        else:
            out_shape = (int(np.prod(out_shape)),)
            chans, vectors = out_shape[0], 1
            perm = channels_last_permutation(tuple(self.in_shape[1:]))
            if perm.size != chans:
                raise UserError(f"the input quantizer produces {chans} values but the input has {perm.size}")
            ch_thr = thr[perm]
            if np.any(flip):
                flipped = tuple(flip[perm].tolist())
        node = self.add("Thresholding", {"NumChannels": chans, "PE": 1, "InputBits": it.bits, "InputSigned": 0,
                                         "NumVectors": vectors}, {"thresholds": ch_thr.astype(np.int64)},
                        ["global_in"])
        return Tensor(codes, out_shape, node.output[0], tuple(perm.tolist()) if perm is not None else None, flipped,
                      rank=rank)

    def raw_input(self) -> Tensor:
        """The integer input itself as a quantized tensor (no input quantizer in the file)."""
        shape = tuple(self.in_shape[1:])
        if len(shape) in (1, 3):
            return Tensor(self.intype.codes(), shape, "global_in")
        if len(shape) == 2:  # a (C, L) sequence: an image of height 1, channels last on the wire
            return Tensor(self.intype.codes(), (shape[0], 1, shape[1]), "global_in", rank=1)
        perm = channels_last_permutation(shape)
        return Tensor(self.intype.codes(), (int(perm.size),), "global_in", tuple(perm.tolist()))

    def start(self) -> None:
        """Lower the input: through its quantizer when a chain of float ops leads to one, else
        (an integer input type) the input codes go to the layers as they are."""
        pre, t = [], self.in_vi.name
        while True:
            readers = self.consumers.get(t, [])
            n = readers[0] if len(readers) == 1 else None
            if n is not None and n.op_type in ACT_QUANT:
                self.publish(n.output[0], self.input_layer(pre, n))
                self.done.update(x.name for x in pre + [n])
                return
            if n is None or n.op_type in LAYER_OPS:
                break
            pre.append(n)
            t = n.output[0]
        if any(p.op_type in FLOAT_OPS for p in pre):
            self.publish(t, self.mapped_input(pre, t))
            self.done.update(x.name for x in pre)
            return
        readers = self.consumers.get(t, [])
        if self.intype.divisor is not None and len(self.in_shape) != 4 and len(readers) == 1:
            raise UserError(f"node {readers[0].name!r} ({readers[0].op_type}) receives the unquantized float input, "
                            "which is not an image (uint8 pixels p/255 by default); tell bnnflow the input's integer "
                            f"type with --input-type ({', '.join(INPUT_TYPES)}), or put one activation quantizer "
                            "(BipolarQuant or Quant) before the first layer")
        if len(readers) != 1:
            raise UserError(f"tensor {t!r} is read {len(readers)} times before the input quantizer; a single input "
                            f"path is supported: put one activation quantizer (BipolarQuant or Quant) first, or tell "
                            f"bnnflow the input's integer type with --input-type ({', '.join(INPUT_TYPES)})")
        self.publish(self.in_vi.name, self.raw_input())

    def mapped_input(self, pre, target: str) -> Tensor:
        """Float ops between the integer input and the first layer (e.g. (x + 1) / 2 on a bipolar
        input): evaluated on every input value, they must map the codes onto equally spaced
        values, the same for every element, which the layer then reads as its input codes."""
        _check_ops(pre, SHAPE_OPS | FLOAT_OPS, "between the input and the first layer")
        it = self.intype
        run = _ort_session(self.mw, pre, self.in_vi.name, self.in_shape, target)
        rows = np.stack([np.asarray(run(np.full(self.in_shape, v, np.float32)), np.float64).ravel()
                         for v in it.float_values(it.values())])
        first = pre[0]
        if not np.all(rows == rows[:, :1]):
            raise UserError(f"node {first.name!r} ({first.op_type}) maps the input differently per element; an "
                            "element-wise map shared by all inputs is supported before a layer without input quantizer")
        v = rows[:, 0]
        d = v[1] - v[0] if len(v) > 1 else 1.0
        o = v[0] / d if d else np.nan
        if not d > 0 or not np.all(np.diff(v) == d) or o != np.rint(o):
            raise UserError(f"node {first.name!r} ({first.op_type}) maps the input values {it.describe()} to "
                            f"{v.tolist()[:4]}...; a layer can read an increasing, equally spaced map with an integer "
                            "offset, else put an activation quantizer before the first layer")
        shape = tuple(run(np.zeros(self.in_shape, np.float32)).shape[1:])
        raw = self.raw_input()
        return Tensor(Codes(it.levels, 1, int(o), float(d)), shape if len(shape) == len(raw.shape) else raw.shape,
                      "global_in", raw.perm)

    # -- structural ops on quantized tensors ---------------------------------------------------
    def maxpool(self, t: Tensor, node) -> Tensor:
        at = _attrs(node)
        k = list(at.get("kernel_shape", [1, 1]))
        s, d = list(at.get("strides", k)), list(at.get("dilations", [1] * len(k)))
        if len(t.shape) != 3 or len(k) != t.rank or any(at.get("pads", [0])) or at.get("ceil_mode", 0) or any(
                x != 1 for x in d) or at.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise UserError(f"MaxPool {node.name!r}: kernels and strides without padding or dilation on image or "
                            "sequence tensors are supported")
        if t.flipped is not None or t.pad is not None:
            raise UserError(f"MaxPool {node.name!r} follows a complemented input or a Pad; not supported")
        if t.rank == 1:  # a 1-D pool as a 2-D one of height 1
            k, s = [1, k[0]], [1, s[0]]
        c, h, w = t.shape
        attrs = {"H": h, "W": w, "C": c, "K": k[0], "Stride": s[0], "PE": 1, "ElemBits": t.codes.bits}
        if k[0] != k[1] or s[0] != s[1]:
            attrs.update(KW=k[1], StrideW=s[1])
        mp = self.add("MaxPool", attrs, {}, [t.hw])
        return replace(t, shape=(c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1), hw=mp.output[0])

    def pad(self, t: Tensor, node) -> Tensor:
        """A constant Pad of H and W only; it becomes the next convolution's padding."""
        at = _attrs(node)
        pads = self.mw.get_initializer(node.input[1]) if len(node.input) > 1 and node.input[1] else at.get("pads")
        value = self.mw.get_initializer(node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0
        pads = [int(p) for p in np.asarray(pads).ravel()]
        if at.get("mode", "constant") != "constant" or len(t.shape) != 3 or len(pads) != 8 or t.rank != 2:
            raise UserError(f"Pad {node.name!r}: constant padding of an image tensor is supported")
        if any(pads[i] for i in (0, 1, 4, 5)) or t.pad is not None or min(pads) < 0:
            raise UserError(f"Pad {node.name!r}: only padding of height and width is supported")
        v = np.float32(np.asarray(value).ravel()[0]) if np.asarray(value).size else np.float32(0)
        if t.codes.bipolar and v == 0:  # zeros: the Conv re-codes the binary tensor (LayerLowering.zero_padded)
            return replace(t, pad=((pads[2], pads[3], pads[6], pads[7]), None))
        code = int(t.codes.encode(np.array([v]))[0])
        back = np.asarray(t.codes.scale, dtype=np.float32) * np.float32(t.codes.a * code + t.codes.o)
        if np.any(back != v):
            raise UserError(f"Pad {node.name!r} pads with {float(v)}, which the quantized tensor cannot represent")
        return replace(t, pad=((pads[2], pads[3], pads[6], pads[7]), code))

    def structural(self, node, src: str) -> None:
        """A shape op, max-pool, Pad or average pool on the quantized tensor `src`."""
        t, covered = self.take(src, node), [node]
        if node.op_type in POOL_OPS:
            t, covered = self.avgpool(t, node)
        elif node.op_type == "MaxPool":
            t = self.maxpool(t, node)
        elif node.op_type == "Transpose":
            t = self.transpose(t, node)
        else:
            t = self.pad(t, node) if node.op_type == "Pad" else self.reshape(t, node)
        self.publish(covered[-1].output[0], t)
        self.done.update(x.name for x in covered)

    # -- requantization and joins ----------------------------------------------------------------
    def requantize(self, t: Tensor, seg, qnext, where: str) -> Tensor:
        """Codes -> [float ops] -> quantizer, as a Thresholding unit on the codes."""
        _check_ops(seg, FLOAT_OPS | {"Identity"}, "between two quantizers")
        if t.flipped is not None or t.pad is not None:
            raise UserError(f"{where}: requantizing a complemented or padded tensor is not supported")
        codes = t.codes
        c = t.shape[0]
        u = np.arange(codes.levels, dtype=np.int64)
        steps = (codes.a * u + codes.o).astype(np.float32)
        x = (codes.scales(c).astype(np.float32)[None, :] * steps[:, None]).astype(np.float32)  # (levels, C)
        if len(t.shape) == 3:
            x = x.reshape(len(u), c, *(1,) * t.rank)
            shape = ("N", c, *(1,) * t.rank)
        else:
            shape = ("N", c)
        y = _ort_session(self.mw, seg, seg[0].input[0], shape, qnext.input[0])(x) if seg else x
        y = np.asarray(y, np.float32).reshape(len(u), -1)
        if y.shape[1] != c:
            raise UserError(f"{where}: the float ops produce {y.shape[1]} values per position, expected {c}")
        nxt = activation_codes(self.mw, qnext)
        flip, thr = derive_thresholds(nxt.encode(y, where), u, nxt.levels, where)
        if np.any(flip):
            raise UserError(f"{where}: a decreasing requantization is not supported")
        if t.perm is not None:
            thr = thr[list(t.perm)]
        vectors = int(np.prod(t.shape[1:])) if len(t.shape) == 3 else 1
        node = self.add("Thresholding", {"NumChannels": c, "PE": 1, "InputBits": codes.bits, "InputSigned": 0,
                                         "NumVectors": vectors}, {"thresholds": thr.astype(np.int64)}, [t.hw])
        return Tensor(nxt, t.shape, node.output[0], t.perm, rank=t.rank)

    def join(self, a: Tensor, b: Tensor, node) -> Tensor:
        """Add of two quantized tensors with one scale: AddStreams of the codes."""
        ca, cb = a.codes, b.codes
        if ca.a != 1 or cb.a != 1 or ca.scale != cb.scale or a.shape != b.shape or stream_order(a) != stream_order(b):
            raise UserError(f"Add {node.name!r}: both inputs must be multi-bit quantized tensors of one shape and one scale")
        elems = int(np.prod(a.shape))
        levels = ca.levels + cb.levels - 1
        s = self.add("AddStreams", {"NumElems": elems, "PE": 1, "InBitsA": ca.bits, "InBitsB": cb.bits,
                                    "OutputBits": max(1, int(levels - 1).bit_length()), "Signed": 0}, {},
                     self.join_inputs(a, b))
        return Tensor(Codes(levels, 1, ca.o + cb.o, ca.scale), a.shape, s.output[0], a.perm, rank=a.rank)

    def join_inputs(self, a: Tensor, b: Tensor) -> list[str]:
        """The streams a join reads: a branch straight from a fork (a copy) waits in a FIFO while
        the other computes; when both branches compute, each ends in a FIFO (flow.passes.fifo
        sizes them from the ops' dependency curves)."""
        direct = [self._from_fork(t) for t in (a, b)]
        inputs = []
        for t, d in zip((a, b), direct):
            if d or not any(direct):
                elems = int(np.prod(t.shape))
                f = self.add("StreamFIFO", {"Elems": elems, "ElemBits": t.codes.bits, "PE": 1, "DepthElems": elems},
                             {}, [t.hw])
                inputs.append(f.output[0])
            else:
                inputs.append(t.hw)
        return inputs

    def _from_fork(self, t: Tensor) -> bool:
        src = self.dfg.producer(t.hw)
        return src is not None and src.op_type == "Duplicate"

    # -- driver -----------------------------------------------------------------------------------
    def run(self) -> DataflowGraph:
        if not any(n.op_type in LAYER_OPS for n in self.nodes):
            raise UserError("the model has no Conv/MatMul/Gemm layer; nothing to accelerate")
        check_binary_after_relu(self.nodes)
        self.start()
        finished = False
        for node in self.nodes:
            if node.name in self.done:
                continue
            if finished:
                raise UserError(f"node {node.name!r} ({node.op_type}) comes after the output layer")
            finished = self.step(node)
        if not finished:
            if self.out_name not in self.q:
                raise UserError("the model's output is not computed by a layer or a quantizer; it must end in a "
                                "MatMul/Gemm layer (class scores) or an activation quantizer (codes)")
            self.codes_output(self.q[self.out_name], decision=False)
        self.dfg.set_meta("input", self.input_meta())
        self.dfg.finalize_io()
        return self.dfg

    def step(self, node) -> bool:
        """Lower one node (with the float segment it starts); True when it produced the output."""
        dyn = [i for i in node.input if i and i not in self.inits]
        kind = node.op_type
        if kind in SHAPE_OPS | POOL_OPS | {"MaxPool", "Pad", "Transpose"}:
            self.structural(node, dyn[0])
        elif kind in LAYER_OPS:
            t = self.take(dyn[0], node)
            seg, qnext = self.chain_to_quantizer(node.output[0], node)
            _check_ops(seg, FLOAT_OPS | {"Identity"}, "between a layer and its activation" if qnext else
                       "after the output layer (a class-score layer followed only by per-class float ops; a "
                       "fully convolutional head averaged by a pool without a quantizer is not supported)")
            out = self.layer(t, node, seg, qnext)
            self.done.update(x.name for x in [node, *seg] + ([qnext] if qnext else []))
            if qnext is None:
                if out is not None:
                    self.codes_output(out, decision=True)
                return True
            self.publish(qnext.output[0], out)
        elif kind == "Add" and len(dyn) == 2:
            self.add_node(node, self.take(dyn[0], node), self.take(dyn[1], node))
        elif kind == "Concat" and dyn:
            self.concat_node(node, [self.take(x, node) for x in dyn])
        elif kind in ACT_QUANT | FLOAT_OPS and len(dyn) == 1:
            self.requantize_from(node, dyn[0])
        else:
            _check_ops([node], SHAPE_OPS | FLOAT_OPS | LAYER_OPS | ACT_QUANT | POOL_OPS | {"MaxPool", "Pad", "Concat"},
                       "in this position")
            raise UserError(f"node {node.name!r} ({kind}) combines {len(dyn)} computed tensors; Add joins two, "
                            "Concat two or more")
        return False

    def requantize_from(self, node, name: str) -> None:
        """A quantizer, or float ops leading to one, on a quantized tensor: a Thresholding unit."""
        t = self.take(name, node)
        if node.op_type in ACT_QUANT:
            seg, qnext = [], node
        else:
            seg, qnext = self.chain_to_quantizer(node.output[0], node)
            seg = [node, *seg]
        if qnext is None:
            raise UserError(f"node {node.name!r} ({node.op_type}) on a quantized tensor must lead to an activation "
                            "quantizer or a layer")
        self.publish(qnext.output[0], self.requantize(t, seg, qnext, f"quantizer {qnext.name!r}"))
        self.done.update(x.name for x in [*seg, qnext])

    def input_meta(self) -> dict:
        it = self.intype
        return {"shape": self.in_shape, "scale": None if it.divisor is not None else it.step, "type": it.meta(),
                "convention": it.convention(), "wire_order": WIRE_ORDER.get(len(self.in_shape) - 1, "channels last")}


WIRE_ORDER = {1: "flat", 2: "NLC", 3: "NHWC"}


def input_type(mw, declared: InputType | None = None, input_scale: float | None = None) -> InputType:
    """The input's integer type: the one declared (--input-type), else uint8 pixels times
    --input-scale, else the file's qonnx datatype annotation of the input, else uint8 pixels p/255."""
    if declared is not None:
        return declared
    if input_scale is not None:
        return pixels(input_scale)
    name = [i.name for i in mw.graph.input if i.name not in {x.name for x in mw.graph.initializer}][0]
    dt = mw.get_tensor_datatype(name)
    if dt.name != "FLOAT32":
        found = from_datatype(dt)
        if found is None:
            raise UserError(f"the model input {name!r} is annotated {dt.name}, which bnnflow cannot take as an input "
                            f"type; override it with --input-type ({', '.join(INPUT_TYPES)})")
        return found
    return pixels()


def streamline(mw, input_scale: float | None = None, model_name: str = "model",
               declared: InputType | None = None) -> DataflowGraph:
    """Turn a cleaned QONNX model into an (unfolded) integer dataflow graph (a MaxPool inside a
    layer's float segment is first moved past its quantizer, in place: flow.passes.lower_pool)."""
    move_maxpools_past_quantizers(mw)
    return Streamliner(mw, input_type(mw, declared, input_scale), model_name).run()
