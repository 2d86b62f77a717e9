"""Lowering of one Conv/MatMul/Gemm layer and its float segment to integer hardware ops.

A mixin of the Streamliner (flow/passes/streamline.py). The float segment after a layer (affine
ops, BatchNorm) up to the next quantizer is evaluated, exactly as the ONNX file computes
it in float32, on every reachable accumulator value when the range has at most
MAX_ACC_VALUES values; beyond that the thresholds are found by bisection, which is exact
because every op allowed in the segment (multiplication, addition, division by constants,
BatchNorm, rounding quantizers) is monotone in float32 arithmetic.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from flow.core.errors import UserError
from flow.core.quant import activation_codes, derive_thresholds, weight_integers
from flow.passes.segments import attrs as _attrs, ort_session as _ort_session

if TYPE_CHECKING:
    from flow.passes.streamline import Tensor

MAX_ACC_VALUES = 1 << 20  # exhaustive threshold search range per layer
KHOT_MAX_TERMS = 2        # weights with at most this many power-of-two terms use shift-add


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
            if len(t.shape) != 3:
                raise UserError(f"Conv {node.name!r} needs an image input")
            geom = conv_geometry(node, at, w)
            if len(node.input) > 2 and node.input[2]:
                raise UserError(f"Conv {node.name!r} has a bias; convolutions without bias are supported")
            oc, ic = w.shape[:2]
            w = w.reshape(oc, ic, *geom[0])  # a 1-D kernel as 1 x K
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
        src = t.hw
        if geom is not None:
            src, vectors, out_shape = self._emit_window(t, node, geom, mh)
        else:
            if t.pad is not None:
                raise UserError(f"layer {node.name!r} follows a Pad; padding is supported before a Conv")
            out_shape = (mh,)
        binary = codes.bipolar and mode == "bipolar"
        if binary:
            w_bits = (wi > 0).astype(np.uint8)
            acc = np.arange(0, mw_ + 1, dtype=np.int64)  # popcount
            lo, hi = 0, mw_
            value = lambda a: m[None, :] * (2 * a - mw_).astype(np.float32)  # noqa: E731
        else:
            if codes.bipolar:
                raise UserError(f"layer {node.name!r}: binary inputs with multi-bit weights are not supported in this version")
            umax = codes.levels - 1
            lo = int(np.minimum(wi, 0).sum(axis=1).min()) * umax
            hi = int(np.maximum(wi, 0).sum(axis=1).max()) * umax
            offs = (codes.o * wi.sum(axis=1)).astype(np.int64)
            value = lambda a: m[None, :] * (codes.a * a + offs[None, :]).astype(np.float32)  # noqa: E731
        spatial = ((1,) * t.rank) if geom is not None else ()  # a conv output's per-position shape
        target = qnext.input[0] if qnext is not None else self.out_name
        run = _ort_session(self.mw, seg, node.output[0], ("N", mh, *spatial), target) if seg else None

        def evaluate(a: np.ndarray) -> np.ndarray:
            """Float32 segment output for accumulators a (K, MH), one column per neuron."""
            out = []
            step = max(1, (1 << 22) // mh)
            for i in range(0, len(a), step):
                x = value(a[i:i + step]).astype(np.float32)
                x = x.reshape(*x.shape, *spatial)
                y = run(x) if run else x
                out.append(np.asarray(y, dtype=np.float32).reshape(len(x), -1))
            y = np.concatenate(out)
            if y.shape[1] != mh:
                raise UserError(f"the float ops after layer {node.name!r} produce {y.shape[1]} values per position; "
                                f"expected {mh}")
            return y

        if qnext is not None:
            nxt = activation_codes(self.mw, qnext)
            where = f"layer {node.name!r}"
            if hi - lo + 1 <= MAX_ACC_VALUES:
                acc = np.arange(lo, hi + 1, dtype=np.int64)
                u = nxt.encode(evaluate(np.repeat(acc[:, None], mh, axis=1)), where)
                flip, thr = derive_thresholds(u, acc, nxt.levels, where)
            else:
                flip, thr = bisect_thresholds(lambda a: nxt.encode(evaluate(a), where), lo, hi, nxt.levels, mh)
            from flow.passes.streamline import Tensor

            hw = self._emit_mvu(node, wi, w_bits if binary else None, mode, bits, flip, thr, binary, mw_, vectors,
                                src, codes)
            return Tensor(nxt, out_shape, hw, rank=t.rank)
        acc = np.arange(lo, hi + 1, dtype=np.int64)
        if len(acc) > MAX_ACC_VALUES:
            raise UserError(f"the output layer {node.name!r} has an accumulator range too large for an exact logits table")
        y = _finite_logits(evaluate(np.repeat(acc[:, None], mh, axis=1)), node)
        self._emit_output(node, y, acc, wi, w_bits if binary else None, mode, bits, binary, mw_, codes, vectors, m,
                          src, seg)
        return None

    def _emit_window(self, t: Tensor, node, geom, mh: int):
        """The sliding window of a convolution (none for a dense 1 x 1 one): (its stream,
        output positions, output shape)."""
        from flow.ops.semantics import window_out_hw

        c, h, w = t.shape
        k, s, p, d = geom
        codes = t.codes
        pad_code = 0
        if any(p):
            zc = codes.zero_code()
            if zc is None:
                raise UserError(f"Conv {node.name!r} pads with zeros, which a binary (+1/-1) tensor cannot represent")
            pad_code = zc
        if t.pad is not None:
            if any(p) and t.pad[1] != pad_code:
                raise UserError(f"Conv {node.name!r}: a Pad and the convolution's own padding use different values")
            p, pad_code = tuple(a + b for a, b in zip(p, _pads4(t.pad[0]))), t.pad[1]
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

    def _emit_mvu(self, node, wi, w_bits, mode, bits, flip, thr, binary, mw_, vectors, src, codes):
        if binary:
            w_bits = np.where(flip[:, None], 1 - w_bits, w_bits).astype(np.uint8)
            # thresholds of flipped rows are on -popcount; the flipped row counts MW - popcount
            thr = np.where(flip[:, None], thr + mw_, thr)
            thr = np.clip(thr, 0, mw_ + 1)
            mvu = self.add("BinaryMVU", {"MW": mw_, "MH": wi.shape[0], "PE": 1, "SIMD": 1,
                                         "NumThresholds": thr.shape[1], "NumVectors": vectors, "ram_style": "auto"},
                           {"weights": w_bits, "thresholds": thr.astype(np.int64)}, [src])
        else:
            wi = np.where(flip[:, None], -wi, wi)
            wm, k, sb = self._weight_mode(wi, mode)
            mvu = self.add("IntMVU", {"MW": mw_, "MH": wi.shape[0], "PE": 1, "SIMD": 1,
                                      "NumThresholds": thr.shape[1], "NumVectors": vectors, "InputBits": codes.bits,
                                      "WeightMode": wm, "WeightBits": _stored_weight_bits(wi, bits), "K": k,
                                      "ShiftBits": sb, "ram_style": "auto"},
                           {"weights": wi.astype(np.int64), "thresholds": thr.astype(np.int64)}, [src])
        return mvu.output[0]

    def _emit_output(self, node, y, acc, wi, w_bits, mode, bits, binary, mw_, codes, vectors, m, src, seg):
        """The last layer: integer logits, a label select, and the logits -> float table."""
        if vectors != 1:
            raise UserError(f"the output layer {node.name!r} produces {vectors} positions; a flat class vector is required")
        mh = wi.shape[0]
        if not np.all(y == y[:, :1]) and binary:
            raise UserError(f"the output layer {node.name!r} is followed by a per-class affine; only one scale and "
                            "bias shared by all classes is supported")
        if binary:
            col = y[:, 0]
            d = np.diff(col)
            if np.all(d > 0):
                table = col
            elif np.all(d < 0):
                w_bits = (1 - w_bits).astype(np.uint8)  # popcount' = MW - popcount
                table = col[::-1]
            else:
                raise UserError(f"the output of layer {node.name!r} is not strictly monotone in the accumulator, so "
                                "integer top-1 would differ from the float model")
            last = self.add("BinaryMVU", {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0,
                                          "NumVectors": 1, "ram_style": "auto"}, {"weights": w_bits}, [src])
            lbits = max(1, int(mw_).bit_length())
        else:
            # integer logits L = a*acc + o*rowsum(W) share one float map f(m*L) for all classes
            if not np.all(m == m[0]):
                raise UserError(f"the output layer {node.name!r} has per-class weight scales; one scale shared by "
                                "all classes is supported")
            offs = codes.o * wi.sum(axis=1)
            lmin = int(codes.a * acc[0] + offs.min())
            lmax = int(codes.a * acc[-1] + offs.max())
            if lmax - lmin + 1 > MAX_ACC_VALUES:
                raise UserError(f"the output layer {node.name!r} has a logit range too large for an exact table")
            lv = np.arange(lmin, lmax + 1, dtype=np.int64)
            run_y = self._output_curve(node, m[0], lv, mh, seg)
            d = np.diff(run_y)
            sign = 1
            if np.all(d > 0):
                table = run_y
            elif np.all(d < 0):
                sign, table = -1, run_y[::-1]
                lmin, lmax = -lmax, -lmin
            else:
                raise UserError(f"the output of layer {node.name!r} is not strictly monotone in the accumulator, so "
                                "integer top-1 would differ from the float model")
            wi = sign * wi
            wm, k, sb = self._weight_mode(wi, mode)
            mvu = self.add("IntMVU", {"MW": mw_, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0, "NumVectors": 1,
                                      "InputBits": codes.bits, "WeightMode": wm,
                                      "WeightBits": _stored_weight_bits(wi, bits), "K": k, "ShiftBits": sb,
                                      "ram_style": "auto"}, {"weights": wi.astype(np.int64)}, [src])
            # hardware logits: a*acc' + sign*o*rowsum - lmin >= 0 (a constant shift keeps the argmax)
            acc_bits = self.dfg.ops()[-1].out_stream().bits
            bias = (sign * offs - lmin).astype(np.int64)
            lbits = max(1, int(lmax - lmin).bit_length())
            last = self.add("FixedScale", {"NumChannels": mh, "PE": 1, "NumVectors": 1, "InputBits": acc_bits,
                                           "InputSigned": 1, "OutputBits": lbits, "OutputSigned": 0, "Shift": 0,
                                           "Rounding": 0},
                            {"mult": np.full(mh, codes.a, dtype=np.int64), "bias": bias}, [mvu.output[0]])
        self.add("LabelSelect", {"Labels": mh, "PE": 1, "InputBits": lbits}, {}, [last.output[0]])
        table = np.asarray(table, dtype=np.float32)
        n = len(table) - 1
        sc = float((np.float64(table[-1]) - np.float64(table[0])) / n) if n else 0.0
        idx = np.arange(len(table), dtype=np.float64)
        self.dfg.set_initializer("output_table", table)
        self.dfg.set_meta("output", {"scale": sc, "bias": float(table[0]), "logits": "integer, 0-based",
                                     "max_affine_error": float(np.max(np.abs(sc * idx + float(table[0]) - table)))})

    def _output_curve(self, node, m, lv, mh, seg):
        """The output segment evaluated on every integer logit; one curve for all classes."""
        x = np.repeat((np.float32(m) * lv.astype(np.float32))[:, None], mh, axis=1)
        if seg:
            run = _ort_session(self.mw, seg, node.output[0], ("N", mh), self.out_name)
            step = max(1, (1 << 22) // mh)
            x = np.concatenate([np.asarray(run(x[i:i + step]), dtype=np.float32).reshape(-1, mh)
                                for i in range(0, len(x), step)])
        if not np.all(x == x[:, :1]):
            raise UserError(f"the output layer {node.name!r} is followed by a per-class affine; only one scale and "
                            "bias shared by all classes is supported")
        return _finite_logits(x[:, 0], node)


def _pads4(p) -> tuple:
    return (p,) * 4 if isinstance(p, int) else tuple(p)


def conv_geometry(node, at: dict, w: np.ndarray) -> tuple:
    """((KH, KW), (SH, SW), (top, left, bottom, right), (DH, DW)) of a 2-D Conv, or of a
    1-D one as a 2-D convolution of height 1."""
    rank = w.ndim - 2
    if rank not in (1, 2):
        raise UserError(f"Conv {node.name!r}: {rank}-D convolutions are not supported; 1-D and 2-D are")
    k = list(at.get("kernel_shape", list(w.shape[2:])))
    s, d = list(at.get("strides", [1] * rank)), list(at.get("dilations", [1] * rank))
    p = list(at.get("pads", [0] * 2 * rank))
    if at.get("group", 1) != 1:
        raise UserError(f"Conv {node.name!r}: grouped convolutions are not supported")
    if at.get("auto_pad", "NOTSET") != "NOTSET":
        raise UserError(f"Conv {node.name!r}: auto_pad is not supported; explicit pads are")
    if rank == 1:
        return (1, k[0]), (1, s[0]), (0, p[0], 0, p[1]), (1, d[0])
    return (k[0], k[1]), (s[0], s[1]), (p[0], p[1], p[2], p[3]), (d[0], d[1])


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
