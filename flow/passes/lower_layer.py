"""Lowering of one Conv/MatMul/Gemm layer and its float segment to integer hardware ops.

A mixin of the Streamliner (flow/passes/streamline.py). The float segment after a layer (affine
ops, BatchNorm) up to the next quantizer is evaluated, exactly as the ONNX file computes
it in float32, on every reachable accumulator value when the range has at most
MAX_ACC_VALUES values; beyond that the thresholds are found by bisection, which is exact
because every op allowed in the segment (multiplication, addition, division by constants,
BatchNorm, rounding quantizers) is monotone in float32 arithmetic.
"""
from __future__ import annotations

from dataclasses import replace
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
            k = at.get("kernel_shape", list(w.shape[2:]))
            s, p = at.get("strides", [1, 1]), at.get("pads", [0, 0, 0, 0])
            if any(d != 1 for d in at.get("dilations", [1, 1])):
                raise UserError(f"Conv {node.name!r}: dilated convolutions are not supported")
            w = _block_diagonal(w, at.get("group", 1), t.shape[0], node)
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

    def layer(self, t: Tensor, node, seg, qnext):
        """Emit (sliding window +) MVU (+ thresholds) for one layer; return the new tensor."""
        if self.is_depthwise(t, node):
            return self.depthwise(t, node, seg, qnext)
        wi, rs, mode, bits, geom = self.layer_weights(t, node)
        mh, mw_ = wi.shape
        codes = t.codes
        m = (np.float64(codes.scale) * rs).astype(np.float32)  # per-row value of one accumulator step
        vectors = 1
        src = t.hw
        if geom is not None:
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
            vectors = oh * ow
            out_shape = (mh, oh, ow)
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
        conv_rank = geom is not None
        target = qnext.input[0] if qnext is not None else self.out_name
        run = _ort_session(self.mw, seg, node.output[0], ("N", mh, 1, 1) if conv_rank else ("N", mh), target) if seg else None

        def evaluate(a: np.ndarray) -> np.ndarray:
            """Float32 segment output for accumulators a (K, MH), one column per neuron."""
            out = []
            step = max(1, (1 << 22) // mh)
            for i in range(0, len(a), step):
                x = value(a[i:i + step]).astype(np.float32)
                if conv_rank:
                    x = x[:, :, None, None]
                y = run(x) if run else x
                out.append(np.asarray(y, dtype=np.float32).reshape(len(x), -1))
            y = np.concatenate(out)
            if y.shape[1] != mh:
                raise UserError(f"the float ops after layer {node.name!r} produce {y.shape[1]} values per position; "
                                f"expected {mh}")
            return y

        if qnext is not None:
            nxt = next_codes(self.mw, qnext, mh)
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
            return Tensor(nxt, out_shape, hw)
        acc = np.arange(lo, hi + 1, dtype=np.int64)
        if len(acc) > MAX_ACC_VALUES:
            raise UserError(f"the output layer {node.name!r} has an accumulator range too large for an exact logits table")
        y = _finite_logits(evaluate(np.repeat(acc[:, None], mh, axis=1)), node)
        self._emit_output(node, y, acc, wi, w_bits if binary else None, mode, bits, binary, mw_, codes, vectors, m,
                          src, seg)
        return None

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
        """Integer kernels (C, K*K) in (ky, kx) tap order, per-channel scale, mode, bits, (k, s, p)."""
        w = self.mw.get_initializer(node.input[1])
        if w is None:
            raise UserError(f"layer {node.name!r} ({node.op_type}) has no constant weights")
        w = np.asarray(w, dtype=np.float32)
        at = _attrs(node)
        if len(t.shape) != 3:
            raise UserError(f"Conv {node.name!r} needs an image input")
        c = t.shape[0]
        if at.get("group") != c or w.ndim != 4 or w.shape[:2] != (c, 1):
            raise UserError(f"Conv {node.name!r} has {at.get('group')} groups over {c} channels; grouped convolutions "
                            "are supported as depthwise convolutions (groups = input channels = output channels)")
        k = at.get("kernel_shape", list(w.shape[2:]))
        s, p = at.get("strides", [1, 1]), at.get("pads", [0, 0, 0, 0])
        if any(d != 1 for d in at.get("dilations", [1, 1])):
            raise UserError(f"Conv {node.name!r}: dilated convolutions are not supported")
        if k[0] != k[1] or s[0] != s[1] or len(set(p)) > 1 or at.get("auto_pad", "NOTSET") != "NOTSET":
            raise UserError(f"Conv {node.name!r}: square kernels, equal strides and symmetric padding are supported")
        if len(node.input) > 2 and node.input[2]:
            raise UserError(f"Conv {node.name!r} has a bias; convolutions without bias are supported")
        wi, rs, mode, bits = weight_integers(w.reshape(c, -1), self.wq.get(node.input[1]), f"layer {node.name!r}")
        return wi, rs, mode, bits, (k[0], s[0], p[0] if p else 0)

    def depthwise(self, t: Tensor, node, seg, qnext):
        """Emit (sliding window +) VVU + thresholds for a depthwise convolution; the codes'
        scale may be per channel (each channel's accumulator has its own step)."""
        wi, rs, mode, bits, (k, s, p) = self.depthwise_weights(t, node)
        codes = t.codes
        if codes.bipolar:
            raise UserError(f"layer {node.name!r}: depthwise convolutions of binary inputs are not supported")
        if qnext is None:
            raise UserError(f"the depthwise convolution {node.name!r} must be followed by an activation quantizer")
        c, h, w = t.shape
        pad_code = 0
        if p:
            pad_code = codes.zero_code()
            if pad_code is None:
                raise UserError(f"Conv {node.name!r} pads with zeros, which its quantized input cannot represent")
        if t.pad is not None:
            if p and t.pad[1] != pad_code:
                raise UserError(f"Conv {node.name!r}: a Pad and the convolution's own padding use different values")
            p, pad_code = p + t.pad[0], t.pad[1]
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        src = t.hw
        if not (k == 1 and s == 1 and p == 0):
            src = self.add("SlidingWindow", {"IFM_H": h, "IFM_W": w, "C": c, "K": k, "Stride": s, "Pad": p,
                                             "PadValue": pad_code, "SIMD": 1, "ElemBits": codes.bits}, {}, [src]).output[0]
        m = (codes.scales(c) * rs).astype(np.float32)  # per channel: the value of one accumulator step
        umax = codes.levels - 1
        lo, hi = int(np.minimum(wi, 0).sum(axis=1).min()) * umax, int(np.maximum(wi, 0).sum(axis=1).max()) * umax
        offs = (codes.o * wi.sum(axis=1)).astype(np.int64)
        nxt, flip, thr = self.segment_thresholds(node, seg, qnext, m, offs, codes.a, lo, hi)
        wi = np.where(flip[:, None], -wi, wi)
        wm, kh, sb = self._weight_mode(wi, mode)
        vvu = self.add("VVU", {"Channels": c, "Taps": k * k, "NumVectors": oh * ow, "PE": 1, "SIMD": 1,
                               "InputBits": codes.bits, "WeightMode": wm, "WeightBits": _stored_weight_bits(wi, bits),
                               "K": kh, "ShiftBits": sb, "NumThresholds": thr.shape[1], "ram_style": "auto"},
                       {"weights": wi.astype(np.int64), "thresholds": thr.astype(np.int64)}, [src])
        return replace(t, codes=nxt, shape=(c, oh, ow), hw=vvu.output[0], pad=None)

    def segment_thresholds(self, node, seg, qnext, m, offs, a: int, lo: int, hi: int):
        """(next codes, flip, thresholds) of the float segment from a per-channel layer's
        accumulators (value m * (a*acc + offs) per channel) to the next quantizer."""
        ch = len(m)
        nxt = next_codes(self.mw, qnext, ch)
        where = f"layer {node.name!r}"
        run = _ort_session(self.mw, seg, node.output[0], ("N", ch, 1, 1), qnext.input[0]) if seg else None

        def codes_of(acc: np.ndarray) -> np.ndarray:
            out = []
            step = max(1, (1 << 22) // ch)
            for i in range(0, len(acc), step):
                x = (m[None, :] * (a * acc[i:i + step] + offs[None, :]).astype(np.float32)).astype(np.float32)
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
