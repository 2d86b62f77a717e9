"""Lowering of one Conv/MatMul/Gemm layer and its float segment to integer hardware ops.

A mixin of the Streamliner (flow/passes/streamline.py). The float segment after a layer (affine
ops, BatchNorm, Relu) up to the next quantizer is evaluated, exactly as the ONNX file computes
it in float32, on every reachable accumulator value when the range has at most
MAX_ACC_VALUES values; beyond that the thresholds are found by bisection, which is exact
because every op allowed in the segment (multiplication, addition, division by constants,
BatchNorm, Relu, Clip, rounding quantizers) is monotone in float32 arithmetic.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from flow.core.errors import UserError
from flow.core.quant import Codes, activation_codes, derive_thresholds, weight_integers
from flow.ops.semantics import pads4, window_out_hw
from flow.passes.accumulator import DECISION, Accumulator, Placement, accumulator, stored_weight_bits, weight_mode
from flow.passes.lower_output import OutputLowering
from flow.passes.segments import attrs as _attrs, ort_session as _ort_session
from flow.passes.tensor import Tensor

MAX_ACC_VALUES = 1 << 20  # exhaustive threshold search range per layer


class LayerLowering(OutputLowering):
    def layer_weights(self, t: Tensor, node):
        """Integer weights (MH, MW) in stream order, per-row scale, mode, bits, conv geometry."""
        if t.codes.per_channel:
            raise UserError(f"layer {node.name!r} reads a tensor with per-channel activation scales; those are "
                            "supported before depthwise convolutions, pooling and requantization")
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
            geom = conv_geometry(node, at, w)
            w = _block_diagonal(w, at.get("group", 1), t.shape[0], node)
            oc, ic = w.shape[:2]
            w = w.reshape(oc, ic, *geom[0])  # a 1-D kernel as 1 x K
            w2 = w.transpose(0, 2, 3, 1).reshape(oc, -1)  # (ky, kx, c) order
        elif node.op_type == "Gemm":
            if at.get("transA", 0):
                raise UserError(f"layer {node.name!r}: Gemm with transA=1 is not supported")
            if at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0:
                raise UserError(f"layer {node.name!r}: Gemm with alpha or beta other than 1 is not supported")
            w2 = w if at.get("transB", 0) else w.T
        else:
            w2 = w.T
        if w2.ndim != 2:
            raise UserError(f"layer {node.name!r}: weights of rank {w2.ndim} are not supported")
        wi, rs, mode, bits = weight_integers(w2, self.wq.get(wname), f"layer {node.name!r}")
        if mode == "bipolar" and not np.isin(wi, (-1, 1)).all():  # zeros outside the groups
            mode, bits = "int", 2
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

    def layer_bias(self, node, seg, mh: int):
        """(bias (MH,) float32 or None, the segment after it, the tensor it starts from): the
        layer's own bias input, or a constant Add that directly follows a MatMul."""
        if node.op_type in ("Gemm", "Conv") and len(node.input) > 2 and node.input[2]:
            b = self.mw.get_initializer(node.input[2])
            if b is None:
                raise UserError(f"layer {node.name!r} has a computed bias; a constant bias is supported")
            return _bias_vector(b, mh, node), seg, node.output[0]
        if node.op_type == "MatMul" and seg and seg[0].op_type == "Add":
            add = seg[0]
            vals = [c for c in (self.mw.get_initializer(i) for i in add.input) if c is not None]
            if len(vals) == 1 and np.asarray(vals[0]).size in (1, mh):
                return _bias_vector(vals[0], mh, add), seg[1:], add.output[0]
        return None, seg, node.output[0]

    def layer(self, t: Tensor, node, seg, qnext):
        """Emit (sliding window +) MVU (+ thresholds) for one layer; return the new tensor, or
        None for an output layer that gives integer logits. A single-output layer at the
        graph output gives its decision instead: code 1 where the float output is >= 0."""
        if self.is_depthwise(t, node):
            return self.depthwise(t, node, seg, qnext)
        t = self.zero_padded(t, node)
        wi, rs, mode, bits, geom = self.layer_weights(t, node)
        bias, seg, start = self.layer_bias(node, seg, wi.shape[0])
        src, vectors, out_shape = self._window(t, node, geom, wi.shape[0])
        spatial = ((1,) * t.rank) if geom is not None else ()  # a conv output's per-position shape
        acc = accumulator(node, t.codes, wi, rs, mode, bits, Placement(src, vectors, out_shape, spatial, start), bias)
        if qnext is None and acc.mh == 1 and vectors == 1:
            nxt = DECISION
        elif qnext is None:
            self._emit_output(acc, seg)
            return None
        else:
            nxt = next_codes(self.mw, qnext, acc.mh)
        evaluate = self._segment(acc, seg, qnext.input[0] if qnext is not None else self.out_name)
        where = f"layer {node.name!r}"
        if acc.hi - acc.lo + 1 <= MAX_ACC_VALUES:
            a = np.arange(acc.lo, acc.hi + 1, dtype=np.int64)
            u = nxt.encode(evaluate(np.repeat(a[:, None], acc.mh, axis=1)), where)
            flip, thr = derive_thresholds(u, a, nxt.levels, where)
        else:
            flip, thr = bisect_thresholds(lambda a: nxt.encode(evaluate(a), where), acc.lo, acc.hi, nxt.levels, acc.mh)
        return Tensor(nxt, out_shape, self._emit_mvu(acc, flip, thr), rank=t.rank)

    def zero_padded(self, t: Tensor, node) -> Tensor:
        """A bipolar tensor read by a Conv that pads with zeros (its own pads, or a Pad of 0),
        re-coded by a Thresholding unit as the 3-level code u - 1 in {-1, 0, +1} (bit 0 -> u 0,
        bit 1 -> u 2), which holds the zero; the Conv then becomes an IntMVU on those codes
        (bipolar weights add and subtract). Other tensors, and a Pad of +1/-1, are left as they are."""
        codes = t.codes
        if node.op_type != "Conv" or not codes.bipolar or len(t.shape) != 3:
            return t
        w = self.mw.get_initializer(node.input[1])
        own = w is not None and any(conv_geometry(node, _attrs(node), np.asarray(w))[2])
        zero_pad = t.pad is not None and t.pad[1] is None
        if not (own or zero_pad):
            return t
        if t.flipped is not None or codes.per_channel:
            raise UserError(f"Conv {node.name!r} pads a complemented or per-channel-scaled binary tensor with zeros; "
                            "zero padding is supported on binary tensors with one scale")
        c, h, w_ = t.shape
        thr = self.add("Thresholding", {"NumChannels": c, "PE": 1, "InputBits": 1, "InputSigned": 0,
                                        "NumVectors": h * w_}, {"thresholds": np.ones((c, 2), np.int64)}, [t.hw])
        pad = None if t.pad is None else (t.pad[0], 1 if t.pad[1] is None else 2 * t.pad[1])
        return replace(t, codes=Codes(3, 1, -1, codes.scale, codes.rounding), hw=thr.output[0], pad=pad)

    def _window(self, t: Tensor, node, geom, mh: int) -> tuple[str, int, tuple]:
        """The stream the MVU reads (a sliding window for a convolution), its vectors, the output shape."""
        codes = t.codes
        if geom is None:
            if t.pad is not None:
                raise UserError(f"layer {node.name!r} follows a Pad; padding is supported before a Conv")
            return t.hw, 1, (mh,)
        c, h, w = t.shape
        k, s, p, d = geom
        pad_code = 0
        if any(p):
            zc = codes.zero_code()
            if zc is None:
                raise UserError(f"Conv {node.name!r} pads with zeros, which a binary (+1/-1) tensor cannot represent")
            pad_code = zc
        if t.pad is not None:
            if any(p) and t.pad[1] != pad_code:
                raise UserError(f"Conv {node.name!r}: a Pad and the convolution's own padding use different values")
            p, pad_code = tuple(a + b for a, b in zip(p, pads4(t.pad[0]))), t.pad[1]
        oh, ow = window_out_hw(h, w, k, s, p, d)
        src = t.hw
        if not (k == (1, 1) and s == (1, 1) and not any(p)):
            attrs = {"IFM_H": h, "IFM_W": w, "C": c, "K": k[0], "Stride": s[0], "Pad": p[0], "PadValue": pad_code,
                     "SIMD": 1, "ElemBits": codes.bits}
            if k[0] != k[1] or s[0] != s[1] or len(set(p)) > 1 or d != (1, 1):
                attrs.update(KW=k[1], StrideW=s[1], PadLeft=p[1], PadBottom=p[2], PadRight=p[3], DilationH=d[0],
                             DilationW=d[1])
            src = self.add("SlidingWindow", attrs, {}, [src]).output[0]
        return src, oh * ow, (mh, oh, ow)

    def _segment(self, acc: Accumulator, seg, target: str):
        """Float32 segment output for accumulators a (K, MH), one column per neuron."""
        mh, node = acc.mh, acc.node
        shape = ("N", mh, *acc.place.spatial)
        run = _ort_session(self.mw, seg, acc.place.start, shape, target) if seg else None

        def evaluate(a: np.ndarray) -> np.ndarray:
            out = []
            step = max(1, (1 << 22) // mh)
            for i in range(0, len(a), step):
                x = acc.value(a[i:i + step]).astype(np.float32)
                x = x.reshape(*x.shape, *acc.place.spatial)
                y = run(x) if run else x
                out.append(np.asarray(y, dtype=np.float32).reshape(len(x), -1))
            y = np.concatenate(out)
            if y.shape[1] != mh:
                raise UserError(f"the float ops after layer {node.name!r} produce {y.shape[1]} values per position; "
                                f"expected {mh}")
            return y

        return evaluate

    def _emit_mvu(self, acc: Accumulator, flip: np.ndarray, thr: np.ndarray) -> str:
        """The MVU of a thresholded layer (rows with a decreasing activation negated); its output stream."""
        mw_, mh, vectors = acc.mw, acc.mh, acc.place.vectors
        if acc.binary:
            w_bits = np.where(flip[:, None], 1 - acc.w_bits, acc.w_bits).astype(np.uint8)
            # thresholds of flipped rows are on -popcount; the flipped row counts MW - popcount
            thr = np.where(flip[:, None], thr + mw_, thr)
            thr = np.clip(thr, 0, mw_ + 1)
            mvu = self.add("BinaryMVU", {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1,
                                         "NumThresholds": thr.shape[1], "NumVectors": vectors, "ram_style": "auto"},
                           {"weights": w_bits, "thresholds": thr.astype(np.int64)}, [acc.place.src])
        else:
            wi = np.where(flip[:, None], -acc.wi, acc.wi)
            wm, k, sb = weight_mode(wi, acc.mode)
            mvu = self.add("IntMVU", {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1,
                                      "NumThresholds": thr.shape[1], "NumVectors": vectors,
                                      "InputBits": acc.codes.bits, "WeightMode": wm,
                                      "WeightBits": stored_weight_bits(wi, acc.bits), "K": k,
                                      "ShiftBits": sb, "ram_style": "auto"},
                           {"weights": wi.astype(np.int64), "thresholds": thr.astype(np.int64)}, [acc.place.src])
        return mvu.output[0]

    # -- depthwise convolutions ----------------------------------------------------------------
    def is_depthwise(self, t: Tensor, node) -> bool:
        """A Conv with one group per channel and one kernel per group (a VVU); other grouped
        convolutions become an MVU with block-diagonal weights."""
        if node.op_type != "Conv" or len(t.shape) != 3:
            return False
        w = self.mw.get_initializer(node.input[1])
        c = t.shape[0]
        return _attrs(node).get("group", 1) == c > 1 and w is not None and tuple(np.shape(w)[:2]) == (c, 1)

    def depthwise_weights(self, t: Tensor, node):
        """Integer kernels (C, KH*KW) in (ky, kx) tap order, per-channel scale, mode, bits and the
        geometry of flow.passes.lower_layer.conv_geometry (a 1-D kernel as 1 x K)."""
        w = self.mw.get_initializer(node.input[1])
        if w is None:
            raise UserError(f"layer {node.name!r} ({node.op_type}) has no constant weights")
        w = np.asarray(w, dtype=np.float32)
        at = _attrs(node)
        if len(t.shape) != 3:
            raise UserError(f"Conv {node.name!r} needs an image input")
        c = t.shape[0]
        if at.get("group") != c or w.ndim not in (3, 4) or w.shape[:2] != (c, 1):
            raise UserError(f"Conv {node.name!r} has {at.get('group')} groups over {c} channels; grouped convolutions "
                            "are supported as depthwise convolutions (groups = input channels = output channels)")
        geom = conv_geometry(node, at, w)
        wi, rs, mode, bits = weight_integers(w.reshape(c, -1), self.wq.get(node.input[1]), f"layer {node.name!r}")
        return wi, rs, mode, bits, geom

    def depthwise(self, t: Tensor, node, seg, qnext):
        """Emit (sliding window +) VVU + thresholds for a depthwise convolution (with or without
        bias; 1-D or 2-D); the codes' scale may be per channel (each channel's accumulator has
        its own step)."""
        wi, rs, mode, bits, geom = self.depthwise_weights(t, node)
        codes = t.codes
        if codes.bipolar:
            raise UserError(f"layer {node.name!r}: depthwise convolutions of binary inputs are not supported")
        if qnext is None:
            raise UserError(f"the depthwise convolution {node.name!r} must be followed by an activation quantizer")
        c, (kh, kw) = t.shape[0], geom[0]
        bias, seg, _start = self.layer_bias(node, seg, c)
        src, vectors, out_shape = self._window(t, node, geom, c)
        m = (codes.scales(c) * rs).astype(np.float32)  # per channel: the value of one accumulator step
        umax = codes.levels - 1
        lo, hi = int(np.minimum(wi, 0).sum(axis=1).min()) * umax, int(np.maximum(wi, 0).sum(axis=1).max()) * umax
        offs = (codes.o * wi.sum(axis=1)).astype(np.int64)
        nxt, flip, thr = self.segment_thresholds(node, seg, qnext, m, offs, codes.a, lo, hi, bias)
        wi = np.where(flip[:, None], -wi, wi)
        wm, k, sb = weight_mode(wi, mode)
        vvu = self.add("VVU", {"Channels": c, "Taps": kh * kw, "NumVectors": vectors, "PE": 1, "SIMD": 1,
                               "InputBits": codes.bits, "WeightMode": wm, "WeightBits": stored_weight_bits(wi, bits),
                               "K": k, "ShiftBits": sb, "NumThresholds": thr.shape[1], "ram_style": "auto"},
                       {"weights": wi.astype(np.int64), "thresholds": thr.astype(np.int64)}, [src])
        return replace(t, codes=nxt, shape=out_shape, hw=vvu.output[0], pad=None)

    def segment_thresholds(self, node, seg, qnext, m, offs, a: int, lo: int, hi: int, bias=None):
        """(next codes, flip, thresholds) of the float segment from a per-channel layer's
        accumulators (value m * (a*acc + offs) per channel, plus the layer's float32 bias) to the
        next quantizer."""
        ch = len(m)
        nxt = next_codes(self.mw, qnext, ch)
        where = f"layer {node.name!r}"
        run = _ort_session(self.mw, seg, node.output[0], ("N", ch, 1, 1), qnext.input[0]) if seg else None

        def codes_of(acc: np.ndarray) -> np.ndarray:
            out = []
            step = max(1, (1 << 22) // ch)
            for i in range(0, len(acc), step):
                x = (m[None, :] * (a * acc[i:i + step] + offs[None, :]).astype(np.float32)).astype(np.float32)
                if bias is not None:
                    x = (x + bias[None, :]).astype(np.float32)
                y = np.asarray(run(x[:, :, None, None]) if run else x, dtype=np.float32).reshape(len(x), -1)
                if y.shape[1] != ch:
                    raise UserError(f"the float ops after layer {node.name!r} produce {y.shape[1]} values per position; "
                                    f"expected {ch}")
                out.append(y)
            return nxt.encode(np.concatenate(out), where)

        if hi - lo + 1 <= MAX_ACC_VALUES:
            acc = np.arange(lo, hi + 1, dtype=np.int64)
            flip, thr = derive_thresholds(codes_of(np.repeat(acc[:, None], ch, axis=1)), acc, nxt.levels, where)
        else:
            flip, thr = bisect_thresholds(codes_of, lo, hi, nxt.levels, ch)
        return nxt, flip, thr


def next_codes(mw, qnext, channels: int):
    """The codes of the quantizer after a layer of `channels` outputs (per-channel scales checked)."""
    nxt = activation_codes(mw, qnext)
    if nxt.per_channel and len(nxt.scale) != channels:
        raise UserError(f"quantizer {qnext.name!r} has {len(nxt.scale)} scales for {channels} channels")
    return nxt


def _block_diagonal(w: np.ndarray, groups: int, channels: int, node) -> np.ndarray:
    """Grouped Conv weights (OC, C/groups, k, k) as dense (OC, C, k, k) weights, zero outside
    each output channel's group (exact: the zero weights add nothing)."""
    oc, icg = w.shape[:2]
    if groups == 1:
        return w
    if groups < 1 or icg * groups != channels or oc % groups:
        raise UserError(f"Conv {node.name!r}: {groups} groups do not divide its {channels} input and {oc} output "
                        "channels")
    dense = np.zeros((oc, channels, *w.shape[2:]), dtype=w.dtype)
    per = oc // groups
    for o in range(oc):
        g = o // per
        dense[o, g * icg:(g + 1) * icg] = w[o]
    return dense


def conv_geometry(node, at: dict, w: np.ndarray) -> tuple:
    """((KH, KW), (SH, SW), (top, left, bottom, right), (DH, DW)) of a 2-D Conv, or of a
    1-D one as a 2-D convolution of height 1."""
    rank = w.ndim - 2
    if rank not in (1, 2):
        raise UserError(f"Conv {node.name!r}: {rank}-D convolutions are not supported; 1-D and 2-D are")
    k = list(at.get("kernel_shape", list(w.shape[2:])))
    s, d = list(at.get("strides", [1] * rank)), list(at.get("dilations", [1] * rank))
    p = list(at.get("pads", [0] * 2 * rank))
    if at.get("auto_pad", "NOTSET") != "NOTSET":
        raise UserError(f"Conv {node.name!r}: auto_pad is not supported; explicit pads are")
    if rank == 1:
        return (1, k[0]), (1, s[0]), (0, p[0], 0, p[1]), (1, d[0])
    return (k[0], k[1]), (s[0], s[1]), (p[0], p[1], p[2], p[3]), (d[0], d[1])


def bisect_thresholds(codes_of, lo: int, hi: int, levels: int, channels: int):
    """Thresholds over a large accumulator range [lo, hi] by bisection.

    codes_of(A) maps accumulators A (K, channels) to next-quantizer codes; it must be
    monotone per channel (true for the affine segments allowed after a layer). Returns
    (flip, thr) as derive_thresholds does: a decreasing channel is searched on -acc.
    """
    ends = codes_of(np.array([[lo] * channels, [hi] * channels], dtype=np.int64))
    flip = ends[1] < ends[0]
    sgn = np.where(flip, -1, 1)
    blo = np.where(flip, -hi, lo).astype(np.int64)
    bhi = np.where(flip, -lo, hi).astype(np.int64)
    j = np.arange(1, levels, dtype=np.int64)[:, None]          # (levels-1, 1)
    left = np.repeat(blo[None, :], levels - 1, axis=0)           # smallest b with code >= j lies
    right = np.repeat(bhi[None, :] + 1, levels - 1, axis=0)      # in [left, right]; right = never
    while np.any(left < right):
        mid = (left + right) // 2
        hit = codes_of(sgn[None, :] * np.minimum(mid, bhi[None, :])) >= j
        hit &= mid <= bhi[None, :]
        right = np.where(hit & (left < right), mid, right)
        left = np.where(~hit & (left < right), mid + 1, left)
    return flip, left.T.astype(np.int64)


def _bias_vector(b, mh: int, node) -> np.ndarray:
    b = np.asarray(b, dtype=np.float32)
    if b.size == 1:
        return np.full(mh, b.ravel()[0], np.float32)
    if b.size != mh:
        raise UserError(f"node {node.name!r} adds a bias of {b.size} values to {mh} outputs")
    return b.ravel().copy()
