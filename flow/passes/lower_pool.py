"""Lowering of average pooling to sum pooling (a mixin of the Streamliner, flow/passes/streamline.py).

    quantized -> GlobalAveragePool | AveragePool (window = the whole map)   GlobalAccPool
               | ReduceMean (over the spatial axes: AdaptiveAvgPool2d(1))
    quantized -> AveragePool (a k x k window, stride s)                     SlidingWindow + GlobalAccPool
    quantized -> AveragePool -> Trunc (Brevitas TruncAvgPool2d)             GlobalAccPool + Thresholding

The hardware sums the codes; the 1/(H*W) of the average goes into the scale of the sum's
codes, so the next layer's thresholds (or the output logits' scale) absorb it. A QONNX
Trunc after the pool maps each possible sum to its truncated code, evaluated with QONNX's
own Trunc on every reachable sum, and becomes a Thresholding unit on the sums.

A MaxPool inside a layer's float segment (Conv -> BatchNorm -> MaxPool -> QuantReLU) is
moved, before streamlining, to just after the segment's quantizer, where MaxPool lowering
pools the codes (move_maxpools_past_quantizers).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from flow.core.errors import UserError
from flow.core.quant import Codes, bit_width, derive_thresholds
from flow.passes.segments import ACT_QUANT, FLOAT_OPS, LAYER_OPS
from flow.passes.segments import attrs as _attrs
from flow.passes.tensor import Tensor

POOL_OPS = {"GlobalAveragePool", "AveragePool", "ReduceMean"}


class PoolLowering:
    def avgpool(self, t: Tensor, node) -> tuple[Tensor, list]:
        """An average pool as a sum pool (a GlobalAccPool, after a SlidingWindow when the
        window is smaller than the map), a following Trunc as thresholds: (the tensor, the
        ONNX nodes it covers)."""
        c, h, w = t.shape
        k, s = self._pool_window(t, node)
        codes, n = t.codes, k[0] * k[1]
        levels = n * (codes.levels - 1) + 1
        # the engine's sums are at least InputBits + bits(n - 1) wide: codes beyond the reachable ones are unused
        levels = max(levels, (1 << (codes.bits + (n - 1).bit_length() - 1)) + 1)
        sums = Codes(levels, codes.a, codes.o * n, float(np.float64(codes.scale) / n))
        src, (oh, ow) = t.hw, (1, 1)
        if k != (h, w):
            oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
            attrs = {"IFM_H": h, "IFM_W": w, "C": c, "K": k[0], "Stride": s[0], "Pad": 0, "PadValue": 0, "SIMD": 1,
                     "ElemBits": codes.bits}
            if k[0] != k[1] or s[0] != s[1]:
                attrs.update(KW=k[1], StrideW=s[1], PadLeft=0, PadBottom=0, PadRight=0, DilationH=1, DilationW=1)
            src = self.add("SlidingWindow", attrs, {}, [src]).output[0]
        gattrs = {"H": k[0], "W": k[1], "C": c, "PE": 1, "InputBits": codes.bits, "InputSigned": 0,
                  "OutputBits": sums.bits}
        if oh * ow > 1:
            gattrs["NumVectors"] = oh * ow
        gp = self.add("GlobalAccPool", gattrs, {}, [src])
        out = replace(t, codes=sums, shape=(c, oh, ow), hw=gp.output[0], perm=None)
        if node.op_type == "ReduceMean" and not _attrs(node).get("keepdims", 1):  # x.mean((2, 3)): a flat vector
            out = replace(out, shape=(c,), perm=tuple(range(c)))
        readers = self.consumers.get(node.output[0], [])
        if len(readers) == 1 and readers[0].op_type == "Trunc":
            return self.trunc(out, readers[0], codes, n), [node, readers[0]]
        return out, [node]

    def _pool_window(self, t: Tensor, node) -> tuple[tuple, tuple]:
        """((KH, KW), (SH, SW)) of an average pool (the whole map for a global one)."""
        if len(t.shape) != 3 or t.flipped is not None or t.pad is not None:
            raise UserError(f"{node.op_type} {node.name!r}: average pooling of an image or sequence tensor (not "
                            "complemented, not padded) is supported")
        c, h, w = t.shape
        if node.op_type == "ReduceMean":
            self._spatial_mean(t, node)
        if node.op_type != "AveragePool":
            return (h, w), (1, 1)
        at = _attrs(node)
        k = list(at.get("kernel_shape", []))
        s = list(at.get("strides", [1] * len(k)))
        if len(k) != t.rank or any(at.get("pads", [0])) or at.get("ceil_mode", 0) or at.get(
                "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise UserError(f"AveragePool {node.name!r}: kernel {k}, pads {at.get('pads')}; average pools without "
                            "padding or ceil mode over image or sequence tensors are supported")
        if t.rank == 1:
            k, s = [1, k[0]], [1, s[0]]
        if k[0] > h or k[1] > w:
            raise UserError(f"AveragePool {node.name!r}: kernel {k} is larger than the {h}x{w} map")
        return (k[0], k[1]), ((1, 1) if (k[0], k[1]) == (h, w) else (s[0], s[1]))

    def _spatial_mean(self, t: Tensor, node) -> None:
        """Refuse a ReduceMean unless it averages over every spatial axis and no other."""
        at = _attrs(node)
        axes = at.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.mw.get_initializer(node.input[1])
        shape = self.mw.get_tensor_shape(node.input[0])
        # the file's rank (a sequence unsqueezed to (N, C, 1, L) averages over axes 2 and 3)
        ndim = len(shape) if shape and len(shape) in (3, 4) else 2 + t.rank
        got = sorted(int(a) % ndim for a in np.asarray(axes if axes is not None else [], dtype=np.int64).ravel())
        if got != list(range(2, ndim)) or at.get("noop_with_empty_axes", 0):
            raise UserError(f"ReduceMean {node.name!r} over axes {got}; a mean over the spatial axes "
                            f"{list(range(2, ndim))} (global average pooling) is supported")

    def trunc(self, t: Tensor, node, codes: Codes, hw: int) -> Tensor:
        """A QONNX Trunc of an average pool: thresholds on the sums of the codes."""
        # deferred: qonnx (and the onnxruntime it loads) only where a Trunc is lowered
        from qonnx.custom_op.general.trunc import trunc_v2

        vals = [self.mw.get_initializer(i) for i in node.input[1:6]]
        if any(v is None for v in vals):
            raise UserError(f"Trunc {node.name!r} has computed parameters; constants are required")
        scale, zeropt, in_bw, out_scale, out_bw = (np.asarray(v, dtype=np.float32) for v in vals)
        if scale.size != 1 or out_scale.size != 1 or np.any(zeropt != 0):
            raise UserError(f"Trunc {node.name!r}: one scale and a zero point of 0 are supported")
        at = _attrs(node)
        signed, narrow = int(at.get("signed", 1)), int(at.get("narrow", 0))
        bits = bit_width(out_bw, f"Trunc {node.name!r}", 16)
        lo = -(1 << (bits - 1)) + narrow if signed else 0
        hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - narrow
        s = np.arange(t.codes.levels, dtype=np.int64)
        # the pool's output on a map whose codes sum to s, in float32 as the file computes it
        avg = (np.float32(codes.scale) * (codes.a * s + codes.o * hw).astype(np.float32)) / np.float32(hw)
        y = trunc_v2(avg.astype(np.float32), scale, zeropt, in_bw, narrow, signed, out_scale, out_bw,
                     str(at.get("rounding_mode", "FLOOR")))
        nxt = Codes(hi - lo + 1, 1, lo, float(out_scale.ravel()[0]))
        where = f"Trunc {node.name!r}"
        u = nxt.encode(np.asarray(y, np.float32)[:, None], where)
        flip, thr = derive_thresholds(u, s, nxt.levels, where)
        if np.any(flip):
            raise UserError(f"{where}: a decreasing truncation is not supported")
        c = t.shape[0]
        th = self.add("Thresholding", {"NumChannels": c, "PE": 1, "InputBits": t.codes.bits, "InputSigned": 0,
                                       "NumVectors": t.shape[1] * t.shape[2]},
                      {"thresholds": np.repeat(thr, c, axis=0).astype(np.int64)}, [t.hw])
        return replace(t, codes=nxt, hw=th.output[0])



# -- a MaxPool inside a float segment ------------------------------------------------------------
def move_maxpools_past_quantizers(mw) -> None:
    """Move each MaxPool that lies inside the float segment of a layer,

        Conv|MatMul|Gemm -> [elementwise ops] -> MaxPool -> [elementwise ops] -> quantizer,

    to just after the quantizer, where it pools the codes (the graph is rewritten in place).
    Exact: the ops after the pool and the quantizer are per channel and non-decreasing (checked;
    a negative BatchNorm gamma or scale there is refused), and for a non-decreasing g the maximum
    of g over a window is g of the window's maximum. The ops before the pool may decrease a
    channel (its weight row is negated as anywhere else). MaxPool's own window (padding with
    -inf, which never wins, included) is the same on the codes; its lowering says which windows
    the hardware takes."""
    pooled = [n.output[0] for n in mw.graph.node if n.op_type == "MaxPool"]
    for name in pooled:
        pool = next(n for n in mw.graph.node if n.op_type == "MaxPool" and n.output[0] == name)
        found = _pool_segment(mw, pool)
        if found is not None:
            _check_movable(mw, pool, *found)
            _move_after(mw, pool, *found[1:])


def _chain_input(mw, node) -> str | None:
    """The one computed input of an elementwise node whose other inputs are constants, else None."""
    if node.op_type not in FLOAT_OPS | {"Identity"}:
        return None
    dyn = [i for i in node.input if i and mw.get_initializer(i) is None]
    if len(dyn) != 1 or (node.op_type == "BatchNormalization" and dyn[0] != node.input[0]):
        return None
    return dyn[0]


def _pool_segment(mw, pool):
    """(layer, ops before the pool, ops after it, quantizer) when `pool` lies in a layer's float
    segment with single-reader elementwise ops on both sides, else None (lowered as it is)."""
    g, readers = mw.graph, {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}
    pre, t, layer = [], pool.input[0], None
    while layer is None:
        n = producer.get(t)
        if n is None or len(readers.get(t, [])) != 1:
            return None
        if n.op_type in LAYER_OPS:
            layer = n
        else:
            t = _chain_input(mw, n)
            if t is None:
                return None
            pre.insert(0, n)
    post, t, outputs = [], pool.output[0], {o.name for o in g.output}
    while t not in outputs and len(readers.get(t, [])) == 1:
        n = readers[t][0]
        if n.op_type in ACT_QUANT:
            return layer, pre, post, n
        if _chain_input(mw, n) != t:
            return None
        post.append(n)
        t = n.output[0]
    return None


def _check_movable(mw, pool, layer, pre, post, quant) -> None:
    """Refuse (one sentence) a pool whose move past `post` and `quant` would not be exact."""
    if len(pool.output) > 1 and pool.output[1]:
        raise UserError(f"MaxPool {pool.name!r} also returns the indices of its maxima, which the hardware does not "
                        "compute; a MaxPool with one output is supported")
    shape = mw.get_tensor_shape(pool.input[0])
    if not shape or len(shape) < 3:
        raise UserError(f"MaxPool {pool.name!r} after layer {layer.name!r} has no inferred image input shape")
    for n in pre + post:
        _check_per_channel(mw, n, pool, len(shape))
    signs = [_direction(mw, n, pool, shape) for n in post]
    down = np.nonzero(np.prod(signs, axis=0) < 0)[0] if signs else []
    if len(down):
        ch = int(down[0])
        n = next(n for n, s in zip(post, signs) if s[ch] < 0)
        raise UserError(f"MaxPool {pool.name!r} is followed by {n.op_type} {n.name!r}, which makes channel {ch} "
                        f"decreasing before quantizer {quant.name!r}, so the pool's maximum would become the minimum "
                        "of the codes; a MaxPool inside a float segment is supported where every op after it keeps "
                        "each channel non-decreasing (no negative BatchNorm gamma or scale between them)")


def _check_per_channel(mw, node, pool, rank: int) -> None:
    """Every constant of `node` must be the same at every position (a scalar or one value per channel)."""
    if node.op_type == "BatchNormalization":
        return  # its parameters are one per channel
    for i in node.input:
        k = mw.get_initializer(i) if i else None
        if k is None:
            continue
        dims = (1,) * (rank - np.ndim(k)) + tuple(np.shape(k))
        if len(dims) > rank or any(d != 1 for a, d in enumerate(dims) if a != 1):
            raise UserError(f"node {node.name!r} ({node.op_type}) in the float segment around MaxPool {pool.name!r} "
                            f"has a constant of shape {list(np.shape(k))} that differs between positions; per-channel "
                            "constants are supported there")


def _direction(mw, node, pool, shape) -> np.ndarray:
    """Per channel: +1 where `node` (elementwise, per-channel constants) is non-decreasing in its
    computed input, -1 where non-increasing, 0 where constant."""
    c, rank = shape[1], len(shape)

    def per_channel(name):
        k = np.asarray(mw.get_initializer(name), dtype=np.float64)
        return np.broadcast_to(k.reshape((1,) * (rank - k.ndim) + k.shape), (1, c) + (1,) * (rank - 2)).reshape(c)

    op, x = node.op_type, _chain_input(mw, node)
    if op == "BatchNormalization":
        gamma = np.asarray(mw.get_initializer(node.input[1]), dtype=np.float64).ravel()  # one per channel
        return np.sign(np.broadcast_to(gamma, (c,))).astype(np.int64)
    if op == "Mul" or (op == "Div" and node.input[0] == x):
        k = per_channel(next(i for i in node.input if i != x))
        return np.where(k < 0, -1, np.where(k > 0, 1, 0 if op == "Mul" else 1))
    if op == "Div":
        raise UserError(f"Div {node.name!r} after MaxPool {pool.name!r} divides by the pooled tensor, which is not "
                        "monotone; per-channel scales and offsets are supported after a MaxPool inside a float segment")
    if op == "Sub" and node.input[1] == x:
        return -np.ones(c, dtype=np.int64)
    return np.ones(c, dtype=np.int64)  # Add, Sub of a constant, Relu, Identity


def _move_after(mw, pool, pre, post, quant) -> None:
    """Rewire layer -> pre -> pool -> post -> quant as layer -> pre -> post -> quant -> pool,
    the pool's output keeping the quantizer's output name (which the rest of the graph reads)."""
    g = mw.graph
    x, pooled, q_out = pool.input[0], pool.output[0], quant.output[0]
    shape = mw.get_tensor_shape(x)
    names = {t for n in g.node for t in [*n.input, *n.output]}
    codes = next(f"{q_out}_unpooled{k or ''}" for k in range(len(names) + 1) if f"{q_out}_unpooled{k or ''}" not in names)
    first = post[0] if post else quant
    first.input[list(first.input).index(pooled)] = x
    quant.output[0] = codes
    pool.input[0], pool.output[0] = codes, q_out
    for vi in [v for v in g.value_info if v.name == pooled]:
        g.value_info.remove(vi)
    for t in [*(n.output[0] for n in post), codes]:
        mw.set_tensor_shape(t, shape)
    dt = mw.get_tensor_datatype(q_out)
    if dt.name != "FLOAT32":
        mw.set_tensor_datatype(codes, dt)
    nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in g.node]
    moved = nodes.pop(next(i for i, n in enumerate(nodes) if n.op_type == "MaxPool" and n.output[0] == q_out))
    nodes.insert(next(i for i, n in enumerate(nodes) if codes in n.output) + 1, moved)
    del g.node[:]
    g.node.extend(nodes)
