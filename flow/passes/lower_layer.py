"""Lowering of one Conv/MatMul/Gemm layer and its float segment to integer hardware ops.

A mixin of the Streamliner (flow/passes/streamline.py). The float segment after a layer (affine
ops, BatchNorm) up to the next quantizer is evaluated, exactly as the ONNX file computes
it in float32, on every reachable accumulator value when the range has at most
MAX_ACC_VALUES values; beyond that the thresholds are found by bisection, which is exact
because every op allowed in the segment (multiplication, addition, division by constants,
BatchNorm, rounding quantizers) is monotone in float32 arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from flow.core.errors import UserError
from flow.core.quant import activation_codes, derive_thresholds, weight_integers
from flow.passes.segments import attrs as _attrs, ort_session as _ort_session

if TYPE_CHECKING:
    from flow.passes.streamline import Tensor

MAX_ACC_VALUES = 1 << 20  # exhaustive threshold search range per layer
KHOT_MAX_TERMS = 2        # weights with at most this many power-of-two terms use shift-add


@dataclass(frozen=True)
class Accumulator:
    """A layer's integer accumulators: acc in [lo, hi] per row, the layer output (before
    its float segment) value(acc) = m * (a*acc + offs) + bias in float32."""

    wi: np.ndarray              # integer weights (MH, MW) in stream order
    w_bits: np.ndarray | None   # XNOR weight bits (binary layers)
    mode: str
    bits: int
    binary: bool
    lo: int
    hi: int
    a: int
    offs: np.ndarray            # (MH,) int64
    m: np.ndarray               # (MH,) float32, the value of one accumulator step
    bias: np.ndarray | None     # (MH,) float32

    def value(self, acc: np.ndarray) -> np.ndarray:
        x = self.m[None, :] * (self.a * acc + self.offs[None, :]).astype(np.float32)
        return x + self.bias[None, :] if self.bias is not None else x


class LayerLowering:
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
            geom, w2 = _conv_weights(t, node, at, w)
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

    def accumulator(self, t: Tensor, node) -> tuple[Accumulator, tuple | None]:
        """The layer's integer accumulator model and its conv geometry."""
        wi, rs, mode, bits, geom = self.layer_weights(t, node)
        mh, mw_ = wi.shape
        codes = t.codes
        m = (np.float64(codes.scale) * rs).astype(np.float32)  # per-row value of one accumulator step
        if codes.bipolar and mode == "bipolar":
            return Accumulator(wi, (wi > 0).astype(np.uint8), mode, bits, True, 0, mw_, 2,
                               np.full(mh, -mw_, np.int64), m, None), geom
        umax = codes.levels - 1
        lo = int(np.minimum(wi, 0).sum(axis=1).min()) * umax
        hi = int(np.maximum(wi, 0).sum(axis=1).max()) * umax
        offs = (codes.o * wi.sum(axis=1)).astype(np.int64)
        return Accumulator(wi, None, mode, bits, False, lo, hi, codes.a, offs, m, None), geom

    def window(self, t: Tensor, node, geom, mh: int):
        """The sliding window in front of a convolution: (stream, vectors, output shape)."""
        if geom is None:
            if t.pad is not None:
                raise UserError(f"layer {node.name!r} follows a Pad; padding is supported before a Conv")
            return t.hw, 1, (mh,)
        codes, src = t.codes, t.hw
        c, h, w = t.shape
        k, s, p = geom
        pad_code = 0
        if p:
            zc = codes.zero_code()
            if zc is None:
                raise UserError(f"Conv {node.name!r} pads with zeros, which a binary (+1/-1) tensor cannot represent")
            pad_code = zc
        if t.pad is not None:
            if p and t.pad[1] != pad_code:
                raise UserError(f"Conv {node.name!r}: a Pad and the convolution's own padding use different values")
            p, pad_code = p + t.pad[0], t.pad[1]
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if not (k == 1 and s == 1 and p == 0):
            swg = self.add("SlidingWindow", {"IFM_H": h, "IFM_W": w, "C": c, "K": k, "Stride": s, "Pad": p,
                                             "PadValue": pad_code, "SIMD": 1, "ElemBits": codes.bits}, {}, [src])
            src = swg.output[0]
        return src, oh * ow, (mh, oh, ow)

    def layer(self, t: Tensor, node, seg, qnext):
        """Emit (sliding window +) MVU (+ thresholds) for one layer; return the new tensor."""
        from flow.passes.streamline import Tensor

        acc, geom = self.accumulator(t, node)
        mh = acc.wi.shape[0]
        bias, seg, start = self.layer_bias(node, seg, mh)
        acc = replace(acc, bias=bias)
        src, vectors, out_shape = self.window(t, node, geom, mh)
        if qnext is None:
            self._emit_output(node, acc, t.codes, vectors, src, seg, start)
            return None
        evaluate = self._segment(node, seg, start, qnext.input[0], acc, geom is not None)
        nxt = activation_codes(self.mw, qnext)
        where = f"layer {node.name!r}"
        if acc.hi - acc.lo + 1 <= MAX_ACC_VALUES:
            a = np.arange(acc.lo, acc.hi + 1, dtype=np.int64)
            u = nxt.encode(evaluate(np.repeat(a[:, None], mh, axis=1)), where)
            flip, thr = derive_thresholds(u, a, nxt.levels, where)
        else:
            flip, thr = bisect_thresholds(lambda a: nxt.encode(evaluate(a), where), acc.lo, acc.hi, nxt.levels, mh)
        hw = self._emit_mvu(node, acc, flip, thr, vectors, src, t.codes)
        return Tensor(nxt, out_shape, hw)

    def _segment(self, node, seg, start: str, target: str, acc: Accumulator, conv_rank: bool):
        """Float32 segment output for accumulators a (K, MH), one column per neuron."""
        mh = acc.wi.shape[0]
        run = _ort_session(self.mw, seg, start, ("N", mh, 1, 1) if conv_rank else ("N", mh), target) if seg else None

        def evaluate(a: np.ndarray) -> np.ndarray:
            out = []
            step = max(1, (1 << 22) // mh)
            for i in range(0, len(a), step):
                x = acc.value(a[i:i + step]).astype(np.float32)
                if conv_rank:
                    x = x[:, :, None, None]
                y = run(x) if run else x
                out.append(np.asarray(y, dtype=np.float32).reshape(len(x), -1))
            y = np.concatenate(out)
            if y.shape[1] != mh:
                raise UserError(f"the float ops after layer {node.name!r} produce {y.shape[1]} values per position; "
                                f"expected {mh}")
            return y

        return evaluate

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

    def _int_mvu(self, wi, mode, bits, thr, vectors, src, codes):
        wm, k, sb = self._weight_mode(wi, mode)
        inits = {"weights": wi.astype(np.int64)}
        if thr is not None:
            inits["thresholds"] = thr.astype(np.int64)
        return self.add("IntMVU", {"MW": wi.shape[1], "MH": wi.shape[0], "PE": 1, "SIMD": 1,
                                   "NumThresholds": 0 if thr is None else thr.shape[1], "NumVectors": vectors,
                                   "InputBits": codes.bits, "WeightMode": wm,
                                   "WeightBits": _stored_weight_bits(wi, bits), "K": k, "ShiftBits": sb,
                                   "ram_style": "auto"}, inits, [src])

    def _emit_mvu(self, node, acc: Accumulator, flip, thr, vectors, src, codes):
        mw_ = acc.wi.shape[1]
        if acc.binary:
            w_bits = np.where(flip[:, None], 1 - acc.w_bits, acc.w_bits).astype(np.uint8)
            # thresholds of flipped rows are on -popcount; the flipped row counts MW - popcount
            thr = np.where(flip[:, None], thr + mw_, thr)
            thr = np.clip(thr, 0, mw_ + 1)
            mvu = self.add("BinaryMVU", {"MW": mw_, "MH": acc.wi.shape[0], "PE": 1, "SIMD": 1,
                                         "NumThresholds": thr.shape[1], "NumVectors": vectors, "ram_style": "auto"},
                           {"weights": w_bits, "thresholds": thr.astype(np.int64)}, [src])
        else:
            mvu = self._int_mvu(np.where(flip[:, None], -acc.wi, acc.wi), acc.mode, acc.bits, thr, vectors, src, codes)
        return mvu.output[0]

    def _emit_output(self, node, acc: Accumulator, codes, vectors: int, src: str, seg, start: str):
        """The last layer: integer logits (a per-class bias in fixed point), a label select,
        and the logits -> float table."""
        if vectors != 1:
            raise UserError(f"the output layer {node.name!r} produces {vectors} positions; a flat class vector is required")
        if not np.all(acc.m == acc.m[0]):
            raise UserError(f"the output layer {node.name!r} has per-class weight scales; one scale shared by "
                            "all classes is supported")
        mh = acc.wi.shape[0]
        curve = self._output_curve(node, acc.m[0], mh, seg, start)
        # the real logit of class c is m * (L_c + B_c), L_c = a*acc_c + offs_c, B_c = bias_c / m
        B = np.zeros(mh) if acc.bias is None else np.asarray(acc.bias, np.float64) / np.float64(acc.m[0])
        lo_l, hi_l = acc.a * acc.lo + int(acc.offs.min()), acc.a * acc.hi + int(acc.offs.max())
        ends = curve(np.array([lo_l + B.min(), hi_l + B.max()]))
        if not ends[1] != ends[0]:
            raise UserError(f"the output of layer {node.name!r} is constant over its accumulator range")
        sign = 1 if ends[1] > ends[0] else -1
        if acc.binary and acc.bias is None:
            self._binary_logits(acc, sign, src, curve, node)
            return
        k, beta = _fraction_bits(sign * B, node)
        if acc.binary:  # popcount' in [0, MW] (the complement where sign < 0); sign*L = 2*pop' - MW
            w_bits = acc.w_bits if sign > 0 else (1 - acc.w_bits).astype(np.uint8)
            mvu = self.add("BinaryMVU", {"MW": acc.wi.shape[1], "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0,
                                         "NumVectors": 1, "ram_style": "auto"}, {"weights": w_bits}, [src])
            alo, ahi, offs = acc.lo, acc.hi, acc.offs
        else:  # negated weights where the output decreases: sign*L = a*acc' + sign*offs
            mvu = self._int_mvu(sign * acc.wi, acc.mode, acc.bits, None, 1, src, codes)
            alo, ahi = (acc.lo, acc.hi) if sign > 0 else (-acc.hi, -acc.lo)
            offs = sign * acc.offs
        lows, highs = (acc.a * alo + offs) * (1 << k) + beta, (acc.a * ahi + offs) * (1 << k) + beta
        lmin, lmax = int(lows.min()), int(highs.max())
        if lmax - lmin + 1 > MAX_ACC_VALUES:
            raise UserError(f"the output layer {node.name!r} has a logit range too large for an exact table")
        acc_bits = self.dfg.ops()[-1].out_stream().bits
        lbits = max(1, int(lmax - lmin).bit_length())
        # hardware logits: 2^k * sign*L + beta - lmin >= 0 (a constant shift keeps the argmax)
        last = self.add("FixedScale", {"NumChannels": mh, "PE": 1, "NumVectors": 1, "InputBits": acc_bits,
                                       "InputSigned": 0 if acc.binary else 1, "OutputBits": lbits, "OutputSigned": 0,
                                       "Shift": 0, "Rounding": 0},
                        {"mult": np.full(mh, acc.a << k, dtype=np.int64),
                         "bias": (offs * (1 << k) + beta - lmin).astype(np.int64)}, [mvu.output[0]])
        table = curve(sign * (np.arange(lmin, lmax + 1, dtype=np.float64) / (1 << k)))
        self._finish_output(node, mh, lbits, last, table, strict=k == 0)

    def _binary_logits(self, acc: Accumulator, sign: int, src: str, curve, node) -> None:
        """A bipolar output layer without bias: the popcount is the integer logit."""
        mw_, mh = acc.wi.shape[1], acc.wi.shape[0]
        w_bits = acc.w_bits if sign > 0 else (1 - acc.w_bits).astype(np.uint8)  # popcount' = MW - popcount
        last = self.add("BinaryMVU", {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0,
                                      "NumVectors": 1, "ram_style": "auto"}, {"weights": w_bits}, [src])
        pop = np.arange(0, mw_ + 1, dtype=np.float64)
        self._finish_output(node, mh, max(1, int(mw_).bit_length()), last, curve(sign * (2 * pop - mw_)), True)

    def _finish_output(self, node, mh: int, lbits: int, last, table, strict: bool) -> None:
        """The label select and the integer logits -> float table (increasing)."""
        d = np.diff(table)
        if not (np.all(d > 0) if strict else np.all(d >= 0) and table[-1] > table[0]):
            raise UserError(f"the output of layer {node.name!r} is not strictly monotone in the accumulator, so "
                            "integer top-1 would differ from the float model")
        self.add("LabelSelect", {"Labels": mh, "PE": 1, "InputBits": lbits}, {}, [last.output[0]])
        table = np.asarray(table, dtype=np.float32)
        n = len(table) - 1
        sc = float((np.float64(table[-1]) - np.float64(table[0])) / n) if n else 0.0
        idx = np.arange(len(table), dtype=np.float64)
        self.dfg.set_initializer("output_table", table)
        self.dfg.set_meta("output", {"scale": sc, "bias": float(table[0]), "logits": "integer, 0-based",
                                     "max_affine_error": float(np.max(np.abs(sc * idx + float(table[0]) - table)))})

    def _output_curve(self, node, m, mh: int, seg, start: str):
        """The output segment as a function of the real logit L (the layer outputs m*L); one
        curve for all classes."""
        run = _ort_session(self.mw, seg, start, ("N", mh), self.out_name) if seg else None

        def curve(lv: np.ndarray) -> np.ndarray:
            x = np.repeat((np.float32(m) * np.asarray(lv).astype(np.float32))[:, None], mh, axis=1)
            if run is not None:
                step = max(1, (1 << 22) // mh)
                x = np.concatenate([np.asarray(run(x[i:i + step]), dtype=np.float32).reshape(-1, mh)
                                    for i in range(0, len(x), step)])
            if not np.all(x == x[:, :1]):
                raise UserError(f"the output layer {node.name!r} is followed by a per-class affine; only one scale "
                                "and bias shared by all classes is supported")
            return _finite_logits(x[:, 0], node)

        return curve


def _conv_weights(t, node, at: dict, w: np.ndarray):
    """(geometry (k, stride, pad), weights (OC, k*k*C) in (ky, kx, c) order) of a Conv."""
    if len(t.shape) != 3:
        raise UserError(f"Conv {node.name!r} needs an image input")
    k = at.get("kernel_shape", list(w.shape[2:]))
    s, p = at.get("strides", [1, 1]), at.get("pads", [0, 0, 0, 0])
    if at.get("group", 1) != 1 or any(d != 1 for d in at.get("dilations", [1, 1])):
        raise UserError(f"Conv {node.name!r}: grouped or dilated convolutions are not supported")
    if k[0] != k[1] or s[0] != s[1] or len(set(p)) > 1 or at.get("auto_pad", "NOTSET") != "NOTSET":
        raise UserError(f"Conv {node.name!r}: square kernels, equal strides and symmetric padding are supported")
    oc = w.shape[0]
    return (k[0], s[0], p[0] if p else 0), w.transpose(0, 2, 3, 1).reshape(oc, -1)


def _bias_vector(b, mh: int, node) -> np.ndarray:
    b = np.asarray(b, dtype=np.float32)
    if b.size == 1:
        return np.full(mh, b.ravel()[0], np.float32)
    if b.size != mh:
        raise UserError(f"node {node.name!r} adds a bias of {b.size} values to {mh} outputs")
    return b.ravel().copy()


MAX_FRACTION_BITS = 16


def _fraction_bits(B: np.ndarray, node) -> tuple[int, np.ndarray]:
    """(k, beta): the fewest fraction bits k with beta = rint(B * 2^k) ordering every pair of
    classes as the real biases B do (L_c + B_c against L_d + B_d for all integers L)."""
    if not np.any(B):
        return 0, np.zeros(len(B), np.int64)
    r = B[None, :] - B[:, None]            # r[c, d] = B_d - B_c
    near = np.abs(r - np.rint(r)) <= 1e-6 * np.maximum(1.0, np.abs(r))
    for k in range(MAX_FRACTION_BITS + 1):
        beta = np.rint(B * (1 << k)).astype(np.int64)
        rq = (beta[None, :] - beta[:, None]) / (1 << k)
        same = np.where(near, rq == np.rint(r), (np.floor(rq) == np.floor(r)) & (rq != np.floor(rq)))
        if np.all(same):
            return k, beta
    raise UserError(f"the biases of the output layer {node.name!r} need more than {MAX_FRACTION_BITS} fraction bits "
                    "to keep the order of the classes' logits")


def _stored_weight_bits(wi: np.ndarray, bits: int) -> int:
    """The quantizer's bit width (at least 2), wider where a negated row (a decreasing
    activation or output) holds -min, which the quantizer's range does not."""
    from flow.ops.int_mvu import signed_bits

    return max(bits, 2, signed_bits(int(wi.min(initial=0)), int(wi.max(initial=0))))


def _finite_logits(y: np.ndarray, node) -> np.ndarray:
    """The float logits over the accumulator range, refused where one is NaN or infinite."""
    bad = ~np.isfinite(y)
    if np.any(bad):
        raise UserError(f"the output layer {node.name!r} gives {float(y[bad].flat[0])} for some accumulator values; "
                        "its float parameters overflow, so the logits table would not be finite")
    return y



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
