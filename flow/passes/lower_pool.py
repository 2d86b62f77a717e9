"""Lowering of average pooling to sum pooling (a mixin of the Streamliner, flow/passes/streamline.py).

    quantized -> GlobalAveragePool | AveragePool (window = the whole map)   GlobalAccPool
               | ReduceMean (over the spatial axes: AdaptiveAvgPool2d(1))
    quantized -> AveragePool (a k x k window, stride s)                     SlidingWindow + GlobalAccPool
    quantized -> AveragePool -> Trunc (Brevitas TruncAvgPool2d)             GlobalAccPool + Thresholding

The hardware sums the codes; the 1/(H*W) of the average goes into the scale of the sum's
codes, so the next layer's thresholds (or the output logits' scale) absorb it. A QONNX
Trunc after the pool maps each possible sum to its truncated code, evaluated with QONNX's
own Trunc on every reachable sum, and becomes a Thresholding unit on the sums.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from flow.core.errors import UserError
from flow.core.quant import Codes, bit_width, derive_thresholds
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
