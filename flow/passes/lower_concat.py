"""Lowering of joins: a Concat along channels (StreamingConcat of the codes of N >= 2 quantized
tensors) and an Add of two quantized tensors of different scales.

A mixin of the Streamliner (flow/passes/streamline.py). N inputs of a Concat become a chain of
two-input StreamingConcats, cat(x0, x1, x2) = cat(cat(x0, x1), x2): per vector the chain emits
x0's channels, then x1's, then x2's, the order the N-way concat streams in channels last.
Tensors of one scale concatenate as they are. Tensors of different scales (each branch its own
quantizer) concatenate where a quantizer follows the Concat, through float ops only: the
concatenated codes carry one scale per channel, and that quantizer becomes per-channel
thresholds on them (Streamliner.requantize), so every channel is requantized exactly from its
own scale. Anywhere else a Concat of different scales is refused, naming the node.

An Add of codes ua, ub of different scalar scales sa = Ma*m0, sb = Mb*m0 (Ma, Mb integers, m0
their common float32 step: flow.core.quant.common_step) becomes z = Ma*ua + Mb*ub in hardware
(FixedScale on a branch whose M is not 1, AddStreams) and a Thresholding of z to the quantizer
after the Add. Its thresholds come from the file's own float32 arithmetic on every reachable pair
(ua, ub): fl32(xa + xb) through the float ops to the quantizer, encoded; the codes must be a
non-decreasing function of z (flow.core.quant.pair_thresholds), else the Add is refused.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from flow.core.errors import UserError
from flow.core.quant import activation_codes, common_step, pair_thresholds
from flow.passes.segments import FLOAT_OPS
from flow.passes.segments import attrs as _attrs
from flow.passes.segments import check_ops as _check_ops
from flow.passes.segments import ort_session as _ort_session
from flow.passes.tensor import Tensor


MAX_ADD_PAIRS = 1 << 18      # pairs of input codes an Add of two scales is evaluated on
MAX_ADD_MULT = 1 << 31       # the largest integer weight of an Add input (learned scales give ~2^25)
MAX_ADD_BITS = 40            # the widest integer sum
CHUNK = 1 << 22              # float values per onnxruntime call


class ConcatLowering:
    def concat_node(self, node, ins: list[Tensor]) -> None:
        """Lower `node` (a Concat of the tensors `ins`), with the quantizer after it where the
        scales differ."""
        if len([i for i in node.input if i]) != len(ins):
            raise UserError(f"Concat {node.name!r} reads a constant tensor; concatenating quantized tensors "
                            "computed by the network is supported")
        follow = None
        scales = [t.codes.scale for t in ins]
        if any(s != scales[0] for s in scales):
            follow = self.quantizer_after(node)
            if follow is None:
                raise UserError(f"Concat {node.name!r}: its inputs have the scales {' and '.join(map(str, scales))}; "
                                "concatenating tensors of one scale is supported, or of different scales where an "
                                "activation quantizer follows the Concat (through float ops only)")
        t = ins[0]
        for nxt in ins[1:]:
            t = self.concat(t, nxt, node)
        if follow is None:
            self.publish(node.output[0], t)
            self.done.add(node.name)
            return
        seg, qnext = follow
        self.publish(qnext.output[0], self.requantize(t, seg, qnext, f"Concat {node.name!r}"))
        self.done.update(x.name for x in [node, *seg, qnext])

    def concat(self, a: Tensor, b: Tensor, node) -> Tensor:
        """StreamingConcat of the codes of a and b (channels of a first); the result has one
        scale, or one per channel where a and b differ."""
        ca, cb = a.codes, b.codes
        if (ca.a, ca.o, ca.bipolar) != (cb.a, cb.o, cb.bipolar) \
                or any(x is not None for x in (a.flipped, b.flipped, a.pad, b.pad)):
            raise UserError(f"Concat {node.name!r}: its inputs are quantized differently (signedness, range or "
                            "a pending Pad); concatenating outputs of one kind of quantizer is supported")
        axis = int(_attrs(node).get("axis", 1))
        rank = len(a.shape)
        if len(b.shape) != rank or axis not in (1, -rank) or a.shape[1:] != b.shape[1:]:
            raise UserError(f"Concat {node.name!r}: concatenating along channels (axis 1) of tensors with equal "
                            f"other dimensions is supported, got {a.shape} and {b.shape} on axis {axis}")
        vectors = int(np.prod(a.shape[1:]))
        c = self.add("StreamingConcat", {"NumVectors": vectors, "ChannelsA": a.shape[0], "ChannelsB": b.shape[0],
                                         "ElemBitsA": ca.bits, "ElemBitsB": cb.bits, "SIMD": 1}, {},
                     self.join_inputs(a, b))
        perm = None
        if rank == 1 and (stream_order(a) or stream_order(b)):
            pa, pb = (list(t.perm) if t.perm is not None else list(range(t.shape[0])) for t in (a, b))
            perm = tuple(pa + [a.shape[0] + i for i in pb])
        scale = ca.scale if ca.scale == cb.scale else \
            tuple(float(s) for s in np.concatenate([ca.scales(a.shape[0]), cb.scales(b.shape[0])]))
        codes = replace(ca, levels=max(ca.levels, cb.levels), scale=scale)
        return Tensor(codes, (a.shape[0] + b.shape[0], *a.shape[1:]), c.output[0], perm, rank=a.rank)

    def add_node(self, node, a: Tensor, b: Tensor) -> None:
        """Lower `node` (an Add of a and b) with the quantizer after it: AddStreams of the codes where
        they share one scale, else the integer sum of the codes weighted by their scales (scaled_add)."""
        ca, cb = a.codes, b.codes
        same = ca.a == 1 and cb.a == 1 and ca.scale == cb.scale
        s = self.join(a, b, node) if same else None
        seg, qnext = self.chain_to_quantizer(node.output[0], node)
        if qnext is None:
            raise UserError(f"Add {node.name!r} must be followed by an activation quantizer")
        where = f"Add {node.name!r}"
        out = self.requantize(s, seg, qnext, where) if same else self.scaled_add(a, b, node, seg, qnext)
        self.publish(qnext.output[0], out)
        self.done.update(x.name for x in [node, *seg, qnext])

    def scaled_add(self, a: Tensor, b: Tensor, node, seg, qnext) -> Tensor:
        """Add of two scales: FixedScale (z = Ma*ua + Mb*ub) -> AddStreams -> Thresholding of z."""
        where = f"Add {node.name!r}"
        _check_ops(seg, FLOAT_OPS | {"Identity"}, "between an Add and its quantizer")
        if a.shape != b.shape or stream_order(a) != stream_order(b) \
                or any(x is not None for x in (a.flipped, b.flipped, a.pad, b.pad)):
            raise UserError(f"{where}: both inputs must be quantized tensors of one shape and order")
        if a.codes.per_channel or b.codes.per_channel:
            raise UserError(f"{where}: its inputs have different scales, one of them per channel; an Add of "
                            "different scales is supported for one scale per input")
        w = _add_weights(a.codes, b.codes, where)
        z, pairs = _pairs(a.codes, b.codes, w, where)
        thr = self._pair_thresholds(a, b, z, pairs, node, seg, qnext)
        streams = self.join_inputs(a, b)
        c, elems = a.shape[0], int(np.prod(a.shape))
        for i, t in enumerate((a, b)):
            if w[i] != 1:
                top = w[i] * (t.codes.levels - 1)
                f = self.add("FixedScale", {"NumChannels": c, "PE": 1, "NumVectors": elems // c,
                                            "InputBits": t.codes.bits, "InputSigned": 0,
                                            "OutputBits": max(1, top.bit_length()), "OutputSigned": 0, "Shift": 0,
                                            "Rounding": 0},
                             {"mult": np.full(c, w[i], np.int64), "bias": np.zeros(c, np.int64)}, [streams[i]])
                streams[i] = f.output[0]
        zbits = max(1, int(z.max()).bit_length())
        bits = [max(1, (w[i] * (t.codes.levels - 1)).bit_length()) for i, t in enumerate((a, b))]
        s = self.add("AddStreams", {"NumElems": elems, "PE": 1, "InBitsA": bits[0], "InBitsB": bits[1],
                                    "OutputBits": zbits, "Signed": 0}, {}, streams)
        node_t = self.add("Thresholding", {"NumChannels": c, "PE": 1, "InputBits": zbits, "InputSigned": 0,
                                           "NumVectors": elems // c}, {"thresholds": thr}, [s.output[0]])
        return Tensor(activation_codes(self.mw, qnext), a.shape, node_t.output[0], a.perm, rank=a.rank)

    def _pair_thresholds(self, a: Tensor, b: Tensor, z, pairs, node, seg, qnext) -> np.ndarray:
        """Thresholds on z from the file's float32 arithmetic on every pair of codes (`pairs` (P, 2))."""
        where = f"Add {node.name!r}"
        xs = [(np.float32(t.codes.scale) * (t.codes.a * pairs[:, i] + t.codes.o).astype(np.float32))
              .astype(np.float32) for i, t in enumerate((a, b))]
        x = (xs[0] + xs[1]).astype(np.float32)  # the Add, rounded to float32 as the file computes it
        c = a.shape[0]
        shape = ("N", c, *(1,) * a.rank) if len(a.shape) == 3 else ("N", c)
        run = _ort_session(self.mw, seg, node.output[0], shape, qnext.input[0]) if seg else None
        nxt = activation_codes(self.mw, qnext)
        codes = np.empty((len(x), c), np.int64)
        step = max(1, CHUNK // c)
        for i in range(0, len(x), step):
            xc = np.repeat(x[i:i + step, None], c, axis=1).reshape(-1, *shape[1:])
            y = np.asarray(run(xc) if run else xc, np.float32).reshape(len(xc), -1)
            if y.shape[1] != c:
                raise UserError(f"{where}: the float ops produce {y.shape[1]} values per position, expected {c}")
            codes[i:i + step] = nxt.encode(y, where)
        thr = pair_thresholds(z, codes, nxt.levels, where)
        return thr[list(a.perm)] if a.perm is not None else thr


def _add_weights(ca, cb, where: str) -> list[int]:
    """Integer weights (wa, wb) of the codes with xa + xb = m0 * (wa*ua + wb*ub + const) exactly."""
    found = common_step([ca.scale, cb.scale])
    if found is None:
        raise UserError(f"{where}: its input scales {ca.scale} and {cb.scale} have no common float32 step")
    _m0, (ma, mb) = found
    if max(ma, mb) > MAX_ADD_MULT:
        raise UserError(f"{where}: its input scales {ca.scale} and {cb.scale} are {ma}:{mb} as integers, wider "
                        f"than {MAX_ADD_MULT.bit_length() - 1} bits; an Add of scales with a simpler ratio is supported")
    w = [ma * ca.a, mb * cb.a]
    g = math.gcd(*w)
    return [v // g for v in w]


def _pairs(ca, cb, w: list[int], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(z (P,), pairs (P, 2)): every pair of codes (ua, ub) and its integer sum wa*ua + wb*ub."""
    if ca.levels * cb.levels > MAX_ADD_PAIRS:
        raise UserError(f"{where}: its inputs of different scales have {ca.levels} and {cb.levels} levels, "
                        f"more than {MAX_ADD_PAIRS} pairs to evaluate; narrower inputs are supported")
    ua, ub = np.meshgrid(np.arange(ca.levels), np.arange(cb.levels), indexing="ij")
    pairs = np.stack([ua.ravel(), ub.ravel()], axis=1).astype(np.int64)
    z = w[0] * pairs[:, 0] + w[1] * pairs[:, 1]
    if int(z.max()).bit_length() > MAX_ADD_BITS:
        raise UserError(f"{where}: the integer sum of its inputs' codes needs {int(z.max()).bit_length()} bits; "
                        f"at most {MAX_ADD_BITS} are supported")
    return z, pairs


def stream_order(t: Tensor) -> tuple | None:
    """The stream order of a flattened tensor, None where it is the logical order."""
    if t.perm is None or t.perm == tuple(range(len(t.perm))):
        return None
    return t.perm
