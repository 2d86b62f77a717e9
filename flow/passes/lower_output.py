"""Lowering of a model's output: class scores (integer logits and a label select), or the
codes of a final quantizer.

A mixin of the Streamliner (flow/passes/streamline.py), next to the layer lowering. The output
layer's float map f (its float segment, shared by all classes) is evaluated on every integer
logit; it must be strictly monotone, so the integer argmax (ties -> lowest index) is the
argmax of the float logits. Up to MAX_TABLE_VALUES logits the exact float32 value of every
integer logit is kept (the graph's `output_table`); beyond, up to MAX_OUTPUT_VALUES, the map
is still checked on every logit and the report gives its affine fit and largest error; beyond
that, on logit_grid's sample (the report says so: `output.checked`, `exact_table` false).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from flow.core.errors import UserError
from flow.core.quant import common_step
from flow.passes.accumulator import Accumulator, stored_weight_bits, weight_mode
from flow.passes.segments import ort_session as _ort_session
from flow.passes.tensor import Tensor

MAX_TABLE_VALUES = 1 << 20    # the longest exact logits table kept in the graph
MAX_OUTPUT_VALUES = 1 << 25   # integer logits beyond 2^24 have no exact float32 value anyway
CURVE_CHUNK = 1 << 22         # float values evaluated per onnxruntime call
MAX_LOGIT_BITS = 62           # integer logits (and x * mult + bias in FixedScale) stay inside int64


class OutputLowering:
    def _emit_output(self, acc: Accumulator, seg) -> None:
        """The last layer: integer logits, a label select, and the logits -> float map."""
        node = acc.node
        if acc.place.vectors != 1:
            raise UserError(f"the output layer {node.name!r} produces {acc.place.vectors} positions; a flat class "
                            "vector is required")
        facts = {"kind": "class", "logits": "integer, 0-based"}
        self.logit_positions = None  # set where the logits' range is too long to evaluate whole (logit_grid)
        if acc.bias is not None or not np.all(acc.m == acc.m[0]):
            last, lbits, table, k, whole = self._biased_logits(acc, seg)
            facts.update(fraction_bits=k, exact=whole)
        else:
            last, lbits, table = self._binary_logits(acc, seg) if acc.binary else self._int_logits(acc, seg)
        self.add("LabelSelect", {"Labels": acc.mh, "PE": 1, "InputBits": lbits}, {}, [last])
        if self.logit_positions is not None:
            facts.update(exact=False, checked=f"on {len(table)} of {int(self.logit_positions[-1] - self.logit_positions[0]) + 1} "
                                              "integer logits (logit_grid)")
        self._output_meta(np.asarray(table, dtype=np.float32), facts, self.logit_positions)

    def _binary_logits(self, acc: Accumulator, seg) -> tuple[str, int, np.ndarray]:
        """Popcount logits of a binary output layer and their float values."""
        node, mw_ = acc.node, acc.mw
        col = self._output_curve(acc, lambda lv: acc.m[0] * (2 * lv - mw_).astype(np.float32), np.arange(mw_ + 1),
                                 seg)
        sign, table = _monotone(col, node, seg)
        w_bits = acc.w_bits if sign > 0 else (1 - acc.w_bits).astype(np.uint8)  # popcount' = MW - popcount
        last = self.add("BinaryMVU", {"MW": mw_, "MH": acc.mh, "PE": 1, "SIMD": 1, "NumThresholds": 0,
                                      "NumVectors": 1, "ram_style": "auto"}, {"weights": w_bits}, [acc.place.src])
        return last.output[0], max(1, int(mw_).bit_length()), table

    def _int_logits(self, acc: Accumulator, seg) -> tuple[str, int, np.ndarray]:
        """Integer logits L = a*acc + o*rowsum(W) of a multi-bit output layer, shifted to L - min >= 0."""
        node, mh, codes = acc.node, acc.mh, acc.codes
        offs = acc.offsets()
        lmin = int(codes.a * acc.lo + offs.min())
        lmax = int(codes.a * acc.hi + offs.max())
        m = np.float32(acc.m[0])
        lv = logit_grid(lmin, lmax)
        run_y = self._output_curve(acc, lambda lv: m * lv.astype(np.float32), lv, seg)
        sign, table = _monotone(run_y, node, seg)
        self.logit_positions = None if len(lv) == lmax - lmin + 1 else (lv if sign > 0 else -lv[::-1])
        if sign < 0:
            lmin, lmax = -lmax, -lmin
        mvu = self._logit_mvu(acc, sign * acc.wi)
        # hardware logits: a*acc' + sign*o*rowsum - lmin >= 0 (a constant shift keeps the argmax)
        acc_bits = self.dfg.ops()[-1].out_stream().bits
        bias = (sign * offs - lmin).astype(np.int64)
        lbits = max(1, int(lmax - lmin).bit_length())
        last = self.add("FixedScale", {"NumChannels": mh, "PE": 1, "NumVectors": 1, "InputBits": acc_bits,
                                       "InputSigned": 1, "OutputBits": lbits, "OutputSigned": 0, "Shift": 0,
                                       "Rounding": 0},
                        {"mult": np.full(mh, codes.a, dtype=np.int64), "bias": bias}, [mvu.output[0]])
        return last.output[0], lbits, table

    def _biased_logits(self, acc: Accumulator, seg) -> tuple[str, int, np.ndarray, int, bool]:
        """Integer logits of an output layer with a per-class bias or per-class steps:
        2^k * (sign*M*L + n) + s - min, M the class's step in units of a step m all classes share
        (_class_steps), n the integer part of the class's bias in those units and s the slot of
        its fraction on a grid of 2^k (_bias_grid): every pair of classes compares as M*L + bias/m
        in exact arithmetic (L the integer logit); the table holds the float value of each logit
        a class can give."""
        node, mh = acc.node, acc.mh
        # a class whose weights are all zero gives its bias whatever its step: M = 0 keeps it out of m
        m, M = _class_steps(acc.m, np.ones(mh, bool) if acc.binary else np.any(acc.wi != 0, axis=1), node)
        bias = np.zeros(mh, np.float32) if acc.bias is None else np.asarray(acc.bias, np.float32)
        B = bias.astype(np.float64) / np.float64(m)
        a, offs = (2, np.full(mh, -acc.mw, np.int64)) if acc.binary else (acc.codes.a, acc.offsets())
        span = np.stack([M * (a * acc.lo + offs), M * (a * acc.hi + offs)]).astype(np.float64) + B
        ends = self._output_curve(acc, lambda lv: m * lv.astype(np.float32), np.array([span.min(), span.max()]), seg)
        if not ends[1] != ends[0]:
            raise UserError(f"the output of layer {node.name!r} is constant over its accumulator range")
        sign = 1 if ends[1] > ends[0] else -1
        k, beta, frac = _bias_grid([sign * Fraction(float(b)) / Fraction(float(m)) for b in bias])
        if acc.binary:  # popcount' in [0, MW] (the complement where sign < 0); sign*L = 2*pop' - MW
            w_bits = acc.w_bits if sign > 0 else (1 - acc.w_bits).astype(np.uint8)
            mvu = self.add("BinaryMVU", {"MW": acc.mw, "MH": mh, "PE": 1, "SIMD": 1, "NumThresholds": 0,
                                         "NumVectors": 1, "ram_style": "auto"}, {"weights": w_bits}, [acc.place.src])
            alo, ahi = acc.lo, acc.hi
        else:  # negated weights where the output decreases: sign*L = a*acc' + sign*offs
            mvu = self._logit_mvu(acc, sign * acc.wi)
            alo, ahi = (acc.lo, acc.hi) if sign > 0 else (-acc.hi, -acc.lo)
            offs = sign * offs
        ends_h = [[int(M[c]) * (a * e + int(offs[c])) * (1 << k) + int(beta[c]) for e in (alo, ahi)] for c in range(mh)]
        lmin, lmax = min(map(min, ends_h)), max(map(max, ends_h))
        lbits = max(1, int(lmax - lmin).bit_length())
        if lbits > MAX_LOGIT_BITS:
            raise UserError(f"the output layer {node.name!r} needs {lbits}-bit integer logits to keep its classes' "
                            f"steps and biases exact; at most {MAX_LOGIT_BITS} bits are supported (class steps "
                            "closer to one another, or one step shared by all classes, fit)")
        last = self.add("FixedScale", {"NumChannels": mh, "PE": 1, "NumVectors": 1,
                                       "InputBits": self.dfg.ops()[-1].out_stream().bits,
                                       "InputSigned": 0 if acc.binary else 1, "OutputBits": lbits, "OutputSigned": 0,
                                       "Shift": 0, "Rounding": 0},
                        {"mult": (a * M) << k, "bias": np.array([int(M[c]) * int(offs[c]) * (1 << k) + int(beta[c]) - lmin
                                                                  for c in range(mh)], dtype=np.int64)},
                        [mvu.output[0]])

        def value(h: np.ndarray) -> np.ndarray:  # the float output of hardware logits h - lmin
            steps = (h >> k).astype(np.float64) + frac[h & ((1 << k) - 1)]
            return m * (sign * steps).astype(np.float32)

        # classes of their own steps with no float op after the layer: the map is value() itself
        lv = logit_grid(lmin, lmax, 16 if np.any(M != 1) and not seg else 22)
        self.logit_positions = None if len(lv) == lmax - lmin + 1 else lv
        table = self._output_curve(acc, value, lv, seg)
        whole = k == 0 and not frac.any()  # every bias a whole number of steps
        d = np.diff(table)
        if not (np.all(d > 0) if whole else np.all(d >= 0) and table[-1] > table[0]):
            raise UserError(f"the output of layer {node.name!r} is not strictly monotone in the accumulator, so "
                            "integer top-1 would differ from the float model")
        return last.output[0], lbits, table, k, whole

    def _logit_mvu(self, acc: Accumulator, wi: np.ndarray):
        """The IntMVU (no thresholds) of an output layer with weights wi."""
        wm, k, sb = weight_mode(wi, acc.mode)
        return self.add("IntMVU", {"MW": acc.mw, "MH": acc.mh, "PE": 1, "SIMD": 1, "NumThresholds": 0, "NumVectors": 1,
                                   "InputBits": acc.codes.bits, "WeightMode": wm,
                                   "WeightBits": stored_weight_bits(wi, acc.bits), "K": k, "ShiftBits": sb,
                                   "ram_style": "auto"}, {"weights": wi.astype(np.int64)}, [acc.place.src])

    def _output_curve(self, acc: Accumulator, value, lv: np.ndarray, seg) -> np.ndarray:
        """The output segment evaluated on every integer logit lv (value(lv) is the layer's float
        output), a chunk at a time; one curve shared by all classes is required."""
        node, mh = acc.node, acc.mh
        run = _ort_session(self.mw, seg, acc.place.start, ("N", mh), self.out_name) if seg else None
        step = max(1, CURVE_CHUNK // mh)
        curve = np.empty(len(lv), dtype=np.float32)
        for i in range(0, len(lv), step):
            x = np.repeat(np.asarray(value(lv[i:i + step]), np.float32)[:, None], mh, axis=1)
            y = np.asarray(run(x), dtype=np.float32).reshape(len(x), -1) if run else x
            if y.shape[1] != mh or not np.all(y == y[:, :1]):
                raise UserError(f"the output layer {node.name!r} is followed by a per-class affine; only one scale "
                                "and bias shared by all classes is supported")
            curve[i:i + step] = _finite_logits(y[:, 0], node)
        return curve

    def _output_meta(self, table: np.ndarray, facts: dict, at: np.ndarray | None = None) -> None:
        """The output's affine description (scale, bias, worst error) and, when short enough, its exact table.
        `at`: the integer logits the table holds where it holds a sample of them (default: all, from 0)."""
        pos = np.arange(len(table), dtype=np.float64) if at is None else np.asarray(at, np.float64) - float(at[0])
        n = pos[-1] if len(pos) else 0.0
        sc = float((np.float64(table[-1]) - np.float64(table[0])) / n) if n else 0.0
        err = 0.0
        for i in range(0, len(table), CURVE_CHUNK):
            idx = pos[i:i + CURVE_CHUNK]
            err = max(err, float(np.max(np.abs(sc * idx + float(table[0]) - table[i:i + CURVE_CHUNK]))))
        if at is None and len(table) <= MAX_TABLE_VALUES:
            self.dfg.set_initializer("output_table", table)
        exact = facts.pop("exact", True) and at is None and len(table) <= MAX_TABLE_VALUES
        self.dfg.set_meta("output", {**facts, "scale": sc, "bias": float(table[0]), "max_affine_error": err,
                                     "exact_table": exact})

    def codes_output(self, t: Tensor, decision: bool) -> None:
        """The model ends in a quantizer (or a single-output decision): the output is its codes."""
        reordered = t.perm is not None and list(t.perm) != list(range(len(t.perm)))
        if len(t.shape) != 1 or reordered or t.flipped is not None:
            raise UserError(f"the model ends in a quantized tensor of shape {t.shape}; a flat vector of codes after "
                            "a MatMul/Gemm layer is supported as the output")
        c = t.codes
        if decision:
            facts = {"kind": "decision", "logits": "none: the output is the decision, 1 where the float output >= 0"}
            table = np.array([0.0, 1.0], dtype=np.float32)
        else:
            facts = {"kind": "codes", "levels": c.levels, "code_a": c.a, "code_o": c.o, "code_scale": c.scale,
                     "logits": "none: the output is the final quantizer's codes u, value = scale * u + bias"}
            table = (np.float32(c.scale) * (c.a * np.arange(c.levels) + c.o).astype(np.float32)).astype(np.float32)
        self._output_meta(table, facts)


def logit_grid(lmin: int, lmax: int, reach: int = 22) -> np.ndarray:
    """The integer logits on which the output's float map is checked: all of them up to
    MAX_OUTPUT_VALUES; beyond (an output layer with wide weights, activations and fan-in, say
    ResNet18-4w4a's: 1.5e8), every logit within 2^reach of zero, where real logits lie, and
    2^reach more spread over the range with each float32 value once, the ends included (float32
    holds no two logits apart beyond 2^24, so a denser grid would only repeat values)."""
    if lmax - lmin + 1 <= MAX_OUTPUT_VALUES:
        return np.arange(lmin, lmax + 1, dtype=np.int64)
    near = np.arange(max(lmin, -(1 << reach)), min(lmax, 1 << reach) + 1, dtype=np.int64)
    spread = np.linspace(lmin, lmax, 1 << reach).round().astype(np.int64)
    lv = np.unique(np.concatenate([near, spread, [lmin, lmax]]))
    _, first = np.unique(lv.astype(np.float32), return_index=True)
    return lv[np.sort(first)]


def _monotone(curve: np.ndarray, node, seg) -> tuple[int, np.ndarray]:
    """(1, curve) for a strictly increasing curve, (-1, reversed curve) for a strictly
    decreasing one; anything else is refused, naming the float ops after the layer."""
    d = np.diff(curve)
    if np.all(d > 0):
        return 1, curve
    if np.all(d < 0):
        return -1, curve[::-1]
    after = f" through {', '.join(f'{n.name!r} ({n.op_type})' for n in seg)}" if seg else ""
    raise UserError(f"the output of layer {node.name!r}{after} is not strictly monotone in the accumulator, so "
                    "integer top-1 would differ from the float model")


def _finite_logits(y: np.ndarray, node) -> np.ndarray:
    """The float logits over the accumulator range, refused where one is NaN or infinite."""
    bad = ~np.isfinite(y)
    if np.any(bad):
        raise UserError(f"the output layer {node.name!r} gives {float(y[bad].flat[0])} for some accumulator values; "
                        "its float parameters overflow, so the logits table would not be finite")
    return y


def _class_steps(m: np.ndarray, live: np.ndarray, node) -> tuple[np.float32, np.ndarray]:
    """(m0, M): the largest float32 step m0 and positive integers M (C,) with m[c] = M[c] * m0
    exactly, for the float32 accumulator steps m of an output layer's classes (one shared step:
    m0 = m[0], M = 1); M = 0 for the classes that are not `live` (all-zero weights: their logit
    is 0 whatever the input). m0 is a power of two times the greatest common divisor of the
    mantissas."""
    every = np.asarray(m, np.float32)
    if not np.any(live):
        return every[0], np.zeros(len(every), dtype=np.int64)
    steps = [Fraction(float(v)) for v in every[live]]
    if any(v <= 0 for v in steps):
        raise UserError(f"the output layer {node.name!r} has a class whose accumulator step is not positive")
    found = common_step(every[live])
    if found is None:
        raise UserError(f"the output layer {node.name!r} has class steps with no common float32 step")
    m0, mult = found
    if max(mult).bit_length() > MAX_LOGIT_BITS // 2:
        raise UserError(f"the output layer {node.name!r} has class steps from {float(min(steps)):.3g} to "
                        f"{float(max(steps)):.3g}, whose ratio as integers needs more than {MAX_LOGIT_BITS // 2} bits")
    M = np.zeros(len(every), dtype=np.int64)
    M[live] = mult
    return m0, M


def _bias_grid(B: list) -> tuple[int, np.ndarray, np.ndarray]:
    """(k, beta, frac) for exact per-class biases B (Fractions, in accumulator steps): beta_c =
    2^k * floor(B_c) + s_c, with slots s_c in 0..2^k-1 in the order of the fractions B_c - floor(B_c)
    (equal fractions share a slot). Integer logits L compare as L + B in exact arithmetic: the
    integer parts first, then the fractions, so k = ceil(log2(distinct fractions)) bits suffice
    (0 when every bias is a whole number of steps or all share one fraction). frac[s] is the
    fraction each slot stands for (where no class uses it, that of the next used slot below, so
    the table stays monotone)."""
    fracs = [b - math.floor(b) for b in B]
    distinct = sorted(set(fracs))
    k = (len(distinct) - 1).bit_length()
    slots, prev = {}, -1
    for i, f in enumerate(distinct):  # nearest grid point, kept increasing and leaving room for the rest
        prev = min(max(math.floor(f * (1 << k) + Fraction(1, 2)), prev + 1), (1 << k) - len(distinct) + i)
        slots[f] = prev
    frac = np.zeros(1 << k, np.float64)
    used = sorted((s, float(f)) for f, s in slots.items())
    for s in range(1 << k):
        frac[s] = max((f for t, f in used if t <= s), default=used[0][1])
    beta = np.array([math.floor(b) * (1 << k) + slots[f] for b, f in zip(B, fracs)], np.int64)
    return k, beta, frac
