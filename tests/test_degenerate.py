"""Degenerate designs are exact or refused.

Tiny QONNX networks (tests/_tiny_nets.py) with weight and activation bit widths 1-8 and
bipolar, all-zero and constant weights, 1-bit accumulators and BatchNorms that make an
activation constant (thresholds outside the accumulator range) go through the flow's own
steps (load_qonnx, streamline, a folding file, width converters, FIFOs); the numpy
reference, the Verilator simulation and the C simulation must agree exactly
(np.array_equal) on integer logits (top-1 for some structures), and the numpy top-1 must
equal the float QONNX model's. NaN/inf/overflowing parameters and unsupported weight bit
widths are refused with one sentence.

Cost: a Verilator binary is cached by its sources only (weights and thresholds are
$readmemh files read at run time), so the structures (shapes, folding, bit widths, weight
kinds) come from a fixed list and the weights, BatchNorms and scales are random; random
weights keep one row at the largest and one at the smallest value, which fixes the
accumulator widths of a structure. All networks of a test share one simulator cache.
The C simulation compiles the weights into the binary (one g++ run of 3-9 s per network),
so it runs on every CSIM_EVERY-th network: 5 of the 50 default networks, >= 50 of the
>= 500 slow ones.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from _tiny_nets import Layer, TinyNet, save
from flow.sim.csim import run_csim
from flow.core.errors import UserError
from flow.sim.execute import execute_numpy, logits_to_float
from flow.passes.fifo import size_fifos
from flow.passes.fold import apply_folding_file, insert_width_converters
from flow.frontend.load import load_qonnx
from flow.sim.simulate import run_rtlsim
from flow.passes.streamline import streamline

pytestmark = pytest.mark.sim

CSIM_EVERY = 10
IMAGES = 24


@dataclass(frozen=True)
class Hidden:
    mh: int
    w_bits: int           # 0: bipolar weights
    act_bits: int         # 0: bipolar activation
    kind: str = "random"  # random | zero | max | min | one | minus_one
    narrow: int = 0
    act_signed: int = 0
    gamma: str = "any"    # any | pos | neg: the BatchNorm's signs (neg: no degenerate channels)


@dataclass(frozen=True)
class Structure:
    features: int
    in_bits: int          # 0: bipolar input
    hidden: tuple
    classes: int
    out_w_bits: int
    out_kind: str = "random"
    fold: str = "max"     # max | min | mid: PE/SIMD from the divisors of MH/MW
    logits: bool = True
    out_narrow: int = 0
    out_muls: tuple = (None, 0.5, -2.0)


# Random weights are symmetric (narrow) here and the signs of constant-weight layers fixed,
# so that each structure is one design (one Verilator build) whatever the values drawn.
DEFAULT = (
    # signed 1-bit weights (QONNX executes them as +1/-1), then the reported bug: valid 2-bit
    # weights that all quantize to 0 (a 1-bit accumulator; threshold 1 means "never")
    Structure(4, 1, (Hidden(3, 1, 2, "random", gamma="pos"), Hidden(3, 2, 3, "zero")), 3, 2, out_narrow=1),
    # 8-bit constant weights at the largest value into signed 8-bit activations; random 6-bit
    # weights (multipliers); all +1 weights with negative BatchNorms into one bipolar neuron;
    # binary layers on it (a 1-input popcount), all -1 weights among them
    Structure(3, 8, (Hidden(3, 8, 8, "max", act_signed=1, gamma="pos"), Hidden(3, 6, 3, "random", narrow=1),
                     Hidden(1, 4, 0, "one", gamma="neg"), Hidden(4, 0, 0, "random"), Hidden(3, 0, 0, "minus_one")),
              2, 0, fold="mid"),
)
SLOW_EXTRA = (
    # a binary network to top-1 (the label select on popcounts)
    Structure(1, 0, (Hidden(4, 0, 0, "random"), Hidden(3, 0, 0, "minus_one")), 3, 0, fold="min", logits=False),
    # multi-bit to top-1: narrow signed 1-bit weights at 0 (+1 in QONNX), all -1 output weights
    Structure(4, 3, (Hidden(3, 3, 2, "random", narrow=1), Hidden(2, 1, 1, "zero", narrow=1)), 2, 3, "minus_one",
              logits=False, out_muls=(None, 0.5)),
)


def _slow_structures(n: int = 40) -> tuple:
    """Random structures: every weight and activation bit width 1-8 and bipolar, every
    weight kind, both BatchNorm signs drawn freely (so some give several designs)."""
    rng = np.random.default_rng(13)
    out = []
    for _ in range(n):
        in_bits = int(rng.integers(0, 9))
        hidden, binary = [], in_bits == 0
        for _ in range(int(rng.integers(1, 3))):
            wb = 0 if binary else int(rng.integers(0, 9))
            kinds = ["random", "one", "minus_one"] + ([] if wb == 0 else ["zero", "max", "min"])
            hidden.append(Hidden(int(rng.integers(2, 5)), wb, int(rng.integers(0, 9)), str(rng.choice(kinds)),
                                 narrow=int(rng.integers(0, 2)), act_signed=int(rng.integers(0, 2))))
            binary = hidden[-1].act_bits == 0 or (hidden[-1].act_bits == 1 and hidden[-1].act_signed == 1)
        wb = 0 if binary else int(rng.integers(0, 9))
        kinds = ["random", "one", "minus_one"] + ([] if wb == 0 else ["zero", "max", "min"])
        out.append(Structure(int(rng.integers(1, 6)), in_bits, tuple(hidden), int(rng.integers(2, 4)), wb,
                             str(rng.choice(kinds)), str(rng.choice(["max", "min", "mid"])), bool(rng.integers(0, 2)),
                             int(rng.integers(0, 2))))
    return DEFAULT + SLOW_EXTRA + tuple(out)


def _range(w_bits: int, narrow: int) -> tuple[int, int]:
    if w_bits == 0:
        return -1, 1
    return -(1 << (w_bits - 1)) + narrow, (1 << (w_bits - 1)) - 1


def _weights(rng, kind: str, mh: int, mw: int, w_bits: int, narrow: int) -> np.ndarray:
    lo, hi = _range(w_bits, narrow)
    if kind == "random":
        w = rng.integers(lo, hi + 1, (mh, mw))
        if w_bits == 0:
            w = np.where(rng.integers(0, 2, (mh, mw)) > 0, 1, -1)
        w[0], w[min(1, mh - 1)] = hi, lo  # the extremes fix the accumulator width
        if w_bits >= 5 and mh > 2:
            w[2, 0] = 11  # three power-of-two terms: always the multiplier
        return w
    value = {"zero": 0, "max": hi, "min": lo, "one": 1, "minus_one": -1}[kind]
    if not lo <= value <= hi:
        value = hi if value > 0 else lo
    return np.full((mh, mw), value)


def _bn(rng, h: Hidden, modes: list[str]):
    """BatchNorm parameters per channel; degenerate modes make the activation constant."""
    gamma = rng.standard_normal(h.mh) * 2
    beta, mean = rng.standard_normal(h.mh) * 2, rng.standard_normal(h.mh) * 3
    var = rng.random(h.mh) * 8 + 0.05
    for c, mode in enumerate(modes if h.gamma != "neg" else []):
        if mode == "gamma0":
            gamma[c] = 0.0
        elif mode == "var":
            var[c] = 1e30
        elif mode == "mean":
            mean[c] = 1e6 * rng.choice([-1, 1])
        elif mode == "beta":
            beta[c] = 1e4 * rng.choice([-1, 1])
    if h.gamma != "any":
        gamma = (np.abs(gamma) + 0.1) * (-1 if h.gamma == "neg" else 1) * (gamma != 0)
    elif h.kind == "random":
        gamma[:2] = np.abs(gamma[:2]) + 0.1  # the extreme rows increase: not negated
    return gamma, beta, mean, var


BN_MODES = st.sampled_from(["normal", "normal", "normal", "gamma0", "var", "mean", "beta"])


@st.composite
def networks(draw, structures):
    s = draw(st.sampled_from(structures))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers, mw = [], s.features
    for h in s.hidden:
        w = _weights(rng, h.kind, h.mh, mw, h.w_bits, h.narrow)
        modes = draw(st.lists(BN_MODES, min_size=h.mh, max_size=h.mh))
        layers.append(Layer(w, h.w_bits, draw(st.sampled_from([0.25, 0.5, 1.0])), h.narrow, _bn(rng, h, modes),
                            h.act_bits, h.act_signed, draw(st.sampled_from([0.125, 0.5, 1.0, 3.0]))))
        mw = h.mh
    w = _weights(rng, s.out_kind, s.classes, mw, s.out_w_bits, s.out_narrow)
    layers.append(Layer(w, s.out_w_bits, draw(st.sampled_from([0.25, 1.0])), s.out_narrow))
    out_mul = draw(st.sampled_from(s.out_muls))
    return s, TinyNet(s.features, s.in_bits, layers, out_mul=out_mul), int(rng.integers(0, 2**31))


def _fold(graph, how: str, path):
    spec = {}
    for op in graph.ops():
        if op.op_type in ("BinaryMVU", "IntMVU"):
            pick = {"max": lambda d: d[-1], "min": lambda d: d[0], "mid": lambda d: d[len(d) // 2]}[how]
            spec[op.name] = {k: pick([d for d in range(1, op.attr(n) + 1) if op.attr(n) % d == 0])
                             for k, n in (("PE", "MH"), ("SIMD", "MW"))}
    path.write_text(json.dumps(spec))
    return size_fifos(insert_width_converters(apply_folding_file(graph, path)))


def _float_top1(net: TinyNet, images: np.ndarray) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from _tiny_nets import to_onnx

    mw = ModelWrapper(to_onnx(net, batch=len(images))).transform(InferShapes())
    x = images.astype(np.float32) / np.float32(255.0)
    return np.argmax(execute_onnx(mw, {"x": x})["y"], axis=1)


def check_network(s: Structure, net: TinyNet, seed: int, d, cache, csim: bool) -> dict:
    """Build one network in `d` (simulators cached in `cache`); assert every engine agrees."""
    d.mkdir(parents=True)
    (d / "sim").symlink_to(cache, target_is_directory=True)
    graph = _fold(streamline(load_qonnx(save(net, d / "m.onnx"))), s.fold, d / "fold.json")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (IMAGES, 1, s.features), dtype=np.uint8).reshape(IMAGES, s.features)
    x[0], x[1] = 0, 255
    want = execute_numpy(graph, x, logits=s.logits)
    got, _ = run_rtlsim(graph, d, x, logits=s.logits)
    assert np.array_equal(got, want), f"rtlsim: {int(np.sum(np.any(np.atleast_2d(got != want), axis=-1)))} mismatches"
    if csim:
        got_c, _ = run_csim(graph, d, x, logits=s.logits)
        assert np.array_equal(got_c, want), "csim differs from numpy"
    top1 = np.argmax(want, axis=1) if s.logits else want
    assert np.array_equal(top1, _float_top1(net, x)), "numpy top-1 differs from the float model"
    if s.logits:
        assert np.all(np.isfinite(logits_to_float(graph, want)))
    return {"networks": 1, "csim": int(csim)}


def _property(structures, examples: int, derandomize: bool, tmp, counts: dict):
    cache = tmp / "simcache"
    cache.mkdir()
    tries = itertools.count()

    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(networks(structures))
    def prop(drawn):
        s, net, seed = drawn
        k = counts["networks"]
        for key, v in check_network(s, net, seed, tmp / f"n{next(tries)}", cache, k % CSIM_EVERY == 0).items():
            counts[key] += v

    prop()


def assert_only_simulators(sim) -> None:
    """A build's sim/ folder holds one simulator binary (at most 20 MB) per cached design:
    `<top>-<key>/harness` (Verilator) or `csim-<key>/csim` (g++), no objects, no logs."""
    entries = sorted(sim.iterdir())
    assert entries, "no simulator was cached"
    for d in entries:
        files = sorted(str(f.relative_to(d)) for f in d.rglob("*"))
        want = "csim" if d.name.startswith("csim-") else "harness"
        assert files == [want], (d.name, files)
        assert (d / want).stat().st_size <= 20 << 20, (d.name, (d / want).stat().st_size)


def test_degenerate_networks_are_exact(tmp_path):
    counts = {"networks": 0, "csim": 0}
    _property(DEFAULT, 50, True, tmp_path, counts)
    assert counts["networks"] >= 50 and counts["csim"] >= 5, counts
    assert_only_simulators(tmp_path / "simcache")


@pytest.mark.slow
def test_degenerate_networks_are_exact_500(tmp_path):
    counts = {"networks": 0, "csim": 0}
    _property(_slow_structures(), 500, False, tmp_path, counts)
    assert counts["networks"] >= 500 and counts["csim"] >= 50, counts


# -- the threshold and weight fields, without simulators -------------------------------------


def _fields(words: list[int], pe: int, t: int, tb: int, signed: bool) -> np.ndarray:
    """Read a threshold memory back as the engines do: (NF*PE, T) TB-bit fields."""
    out = []
    for w in words:
        for k in range(pe * t):
            v = (int(w) >> (k * tb)) & ((1 << tb) - 1)
            out.append(v - (1 << tb) if signed and v >> (tb - 1) else v)
    return np.array(out, dtype=np.int64).reshape(-1, t)


def _assert_fields_exact(op, lo: int, hi: int) -> None:
    """Every reachable value compares with the stored fields as with the op's thresholds."""
    p = op.rtl_stage()["params"]
    words = op.rtl_stage()["memories"]["THRESH_FILE"]["words"]
    signed = op.op_type == "IntMVU" or bool(p.get("IN_SIGNED", 0))
    stored = _fields(words, p["PE"], p["T"], p["TB"], signed)
    v = np.arange(lo, hi + 1)[:, None, None]
    thr = op.param("thresholds")
    assert np.array_equal((v >= stored[None]).sum(axis=2), (v >= thr[None]).sum(axis=2)), op.name


def _tiny(kind: str, w_bits: int, gamma: str = "any", out_mul=None, narrow: int = 0, act_bits: int = 2) -> TinyNet:
    rng = np.random.default_rng(1)
    h = Hidden(3, w_bits, act_bits, kind, narrow=narrow, gamma=gamma)
    lay = Layer(_weights(rng, kind, 3, 4, w_bits, narrow), w_bits, 0.5, narrow, _bn(rng, h, ["normal"] * 3),
                act_bits, 0, 0.5)
    return TinyNet(4, 2, [lay, Layer(_weights(rng, kind, 2, 3, w_bits, narrow), w_bits, 0.25, narrow)],
                   out_mul=out_mul)


def test_all_zero_weights_store_thresholds_that_read_back(tmp_path):
    """2-bit weights that all quantize to 0: the accumulator is 1 bit, threshold 1 ("never")
    needs a 2-bit two's complement field (a 1-bit field reads it back as -1)."""
    graph = streamline(load_qonnx(save(_tiny("zero", 2), tmp_path / "m.onnx")))
    mvu = [o for o in graph.ops() if o.op_type == "IntMVU"][0]
    assert mvu.acc_bits() == 1 and mvu.param("thresholds").max() == 1
    assert mvu.rtl_stage()["params"]["TB"] == 2
    _assert_fields_exact(mvu, *mvu.acc_range())


def test_thresholds_outside_the_range_are_clamped(tmp_path):
    """Thresholds far outside the accumulator (or input) range are stored as lo or hi + 1,
    which every reachable value compares with the same way, in a field of the range's width."""
    from flow.ir.graph import DataflowGraph
    from flow.ops import REGISTRY

    g = DataflowGraph.empty()
    thr = np.array([[-(1 << 40), 3, 1 << 40], [0, 255, 256], [7, 1 << 33, 1 << 34]], dtype=np.int64)
    g.add_node("Thresholding", "t", {"NumChannels": 3, "PE": 3, "InputBits": 8, "InputSigned": 1,
                                     "NumVectors": 1}, {"thresholds": thr})
    w = np.array([[1, -1], [0, 1], [1, 1]], dtype=np.int64)
    g.add_node("IntMVU", "m", {"MW": 2, "MH": 3, "PE": 1, "SIMD": 2, "NumThresholds": 3, "NumVectors": 1,
                               "InputBits": 2, "WeightMode": 2, "WeightBits": 2, "K": 1, "ShiftBits": 1,
                               "ram_style": "auto"}, {"weights": w, "thresholds": thr})
    t_op, m_op = (REGISTRY[n.op_type](n, g) for n in g.nodes)
    assert t_op.rtl_stage()["params"]["TB"] == 9 and m_op.rtl_stage()["params"]["TB"] == 4
    _assert_fields_exact(t_op, -128, 127)
    _assert_fields_exact(m_op, *m_op.acc_range())


def test_thresh_words_refuse_a_value_the_field_misreads():
    from flow.ops.packing import thresh_words

    with pytest.raises(ValueError, match="1-bit two's complement"):
        thresh_words(np.array([[1]]), 1, 1, signed=True)
    with pytest.raises(ValueError, match="unsigned"):
        thresh_words(np.array([[-1]]), 1, 4, signed=False)
    assert thresh_words(np.array([[1]]), 1, 2, signed=True) == [1]


@pytest.mark.parametrize("out_mul", [None, -2.0])
def test_negated_rows_fit_their_weight_field(tmp_path, out_mul):
    """Non-narrow 6-bit weights at -32 in rows that a negative BatchNorm (or a negative
    output scale) negates become +32, one bit more than the quantizer's width."""
    from flow.sim.simulate import generate_rtl

    graph = streamline(load_qonnx(save(_tiny("min", 6, gamma="neg", out_mul=out_mul), tmp_path / "m.onnx")))
    for op in graph.ops():
        if op.op_type == "IntMVU":
            b = op.attr("WeightBits")
            assert -(1 << (b - 1)) <= op.param("weights").min() and op.param("weights").max() < 1 << (b - 1)
    generate_rtl(graph, tmp_path / "rtl", logits=True)  # packs every weight into its field


def test_a_signed_one_bit_activation_is_bipolar(tmp_path):
    """QONNX executes a signed 1-bit Quant as bipolar (y >= 0 -> +1, else -1), not as {-1, 0}."""
    rng = np.random.default_rng(3)
    h = Hidden(3, 3, 1, "random", narrow=1, act_signed=1)
    net = TinyNet(4, 2, [Layer(_weights(rng, "random", 3, 4, 3, 1), 3, 0.5, 1, _bn(rng, h, ["normal"] * 3), 1, 1, 0.5),
                         Layer(_weights(rng, "random", 3, 3, 0, 0), 0, 0.25)])
    graph = streamline(load_qonnx(save(net, tmp_path / "m.onnx")))
    x = rng.integers(0, 256, (200, 4), dtype=np.uint8)
    assert np.array_equal(execute_numpy(graph, x), _float_top1(net, x))
    assert "BinaryMVU" in [o.op_type for o in graph.ops()]


# -- refusals -------------------------------------------------------------------------------


def _tamper(net: TinyNet, tmp_path, op_type: str, k: int, value: float, index=0):
    """The network with one input `index` of the k-th `op_type` node set to `value`."""
    import onnx

    from _tiny_nets import to_onnx

    m = to_onnx(net)
    node = [n for n in m.graph.node if n.op_type == op_type][k]
    init = [i for i in m.graph.initializer if i.name == node.input[index]][0]
    arr = onnx.numpy_helper.to_array(init).copy()
    arr.flat[0] = value
    init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), init.name))
    onnx.save(m, str(tmp_path / "bad.onnx"))
    return tmp_path / "bad.onnx"


REFUSALS = {  # case: (op type, k-th node, input index, value, words in the one sentence)
    "weight bit width 0": ("Quant", 1, 3, 0.0, ["bit width 0", "1..16"]),
    "weight bit width 17": ("Quant", 1, 3, 17.0, ["bit width 17"]),
    "weight bit width nan": ("Quant", 1, 3, float("nan"), ["nan"]),
    "nan weight": ("Quant", 1, 0, float("nan"), ["holds nan", "finite"]),
    "inf weight": ("Quant", 1, 0, float("inf"), ["holds inf", "finite"]),
    "1e38 weight": ("Quant", 1, 0, 1e38, ["overflows", "weight quantizer"]),
    "nan batchnorm gamma": ("BatchNormalization", 0, 1, float("nan"), ["holds nan", "BatchNormalization"]),
    "inf batchnorm var": ("BatchNormalization", 0, 4, float("inf"), ["holds inf", "BatchNormalization"]),
    "-inf batchnorm mean": ("BatchNormalization", 0, 3, float("-inf"), ["holds -inf"]),
    "1e38 batchnorm gamma": ("BatchNormalization", 0, 1, 1e38, ["overflow", "layer"]),
    "1e38 batchnorm beta": ("BatchNormalization", 0, 2, 1e38, ["overflow"]),
    "nan weight scale": ("Quant", 1, 1, float("nan"), ["holds nan"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_parameters_are_refused(case, tmp_path):
    op_type, k, index, value, words = REFUSALS[case]
    path = _tamper(_tiny("random", 3), tmp_path, op_type, k, value, index)
    with pytest.raises(UserError) as exc:
        streamline(load_qonnx(path))
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)


def test_a_constant_batchnorm_is_exact_not_refused(tmp_path):
    """A variance of 1e38 makes the activation constant: accepted, and the thresholds say so."""
    path = _tamper(_tiny("random", 3), tmp_path, "BatchNormalization", 0, 1e38, 4)
    graph = streamline(load_qonnx(path))
    mvu = [o for o in graph.ops() if o.op_type == "IntMVU"][0]
    lo, hi = mvu.acc_range()
    thr = mvu.param("thresholds")[0]
    assert np.all((thr <= lo) | (thr > hi))  # channel 0 has the same code for every accumulator


def test_cli_refuses_a_nan_batchnorm(tmp_path):
    from test_cli_errors import assert_refused, bnnflow

    path = _tamper(_tiny("random", 3), tmp_path, "BatchNormalization", 0, float("nan"), 1)
    res = bnnflow("build", path, "--out", tmp_path / "out", "--quiet")
    assert_refused(res, "holds nan", "finite")
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_dead_channel_batchnorm_saturates_as_the_file_does(tmp_path):
    """A BatchNorm of gain 1e9 (a channel dead in training: running variance near 0, gamma over
    sqrt(epsilon)) sends extreme accumulators 1e9-1e10 quantizer steps away: beyond 2^31 but
    finite, so the quantizer saturates there as the file computes it. Accepted, and numpy top-1
    equals the float QONNX model."""
    import onnx

    net = _tiny("random", 3)
    path = _tamper(net, tmp_path, "BatchNormalization", 0, 1e9, 1)
    graph = streamline(load_qonnx(path))
    x = np.random.default_rng(5).integers(0, 256, (64, 4), dtype=np.uint8)
    x[0], x[1] = 0, 255
    m = onnx.load(str(path))
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = len(x)
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_value = len(x)
    mw = ModelWrapper(m).transform(InferShapes())
    want = np.argmax(execute_onnx(mw, {"x": x.astype(np.float32) / np.float32(255.0)})["y"], axis=1)
    assert np.array_equal(execute_numpy(graph, x), want)
