"""Render a small chain (thresholding -> bnn_mvu -> label_select), compile it with the
Verilator harness and compare every frame with flow.ops.semantics."""
from __future__ import annotations

import numpy as np
import pytest

from flow.ops import semantics
from flow.codegen.rtlgen import render_top
from flow.ops.binary_mvu import mvu_weight_words
from flow.ops.packing import thresh_words
from flow.sim.rtlsim import RTLSim
from flow.core.errors import UserError
from flow.core.tools import PCH_HEADER
from flow.core.wire import pack_beats, unpack_beats

pytestmark = pytest.mark.sim

MW, MH, C_PE, SIMD, PE, IN_BITS, TB = 32, 10, 4, 4, 2, 8, 8
ACC_BITS = int(np.ceil(np.log2(MW + 1)))


def _design(rng):
    thr0 = np.sort(rng.integers(-20, 20, size=(MW, 1)), axis=1)
    w = rng.integers(0, 2, size=(MH, MW), dtype=np.uint8)
    stages = [
        {"module": "thresholding", "name": "binarize", "in_bits": C_PE * IN_BITS, "out_bits": C_PE,
         "params": {"C": MW, "PE": C_PE, "IN_BITS": IN_BITS, "IN_SIGNED": 1, "T": 1, "TB": TB, "OUT_BITS": 1},
         "memories": {"THRESH_FILE": {"word_bits": C_PE * TB, "words": thresh_words(thr0, C_PE, TB)}}},
        {"module": "bnn_mvu", "name": "fc0", "in_bits": SIMD, "out_bits": PE * ACC_BITS,
         "params": {"MW": MW, "MH": MH, "SIMD": SIMD, "PE": PE, "USE_THRESH": 0, "T": 1, "TB": 8,
                    "OUT_BITS": ACC_BITS, "RAM_STYLE": "auto"},
         "memories": {"WEIGHTS_FILE": {"word_bits": PE * SIMD, "words": mvu_weight_words(w, PE, SIMD)}}},
        {"module": "label_select", "name": "top1", "in_bits": PE * ACC_BITS, "out_bits": 4,
         "params": {"L": MH, "PE": PE, "IN_BITS": ACC_BITS, "OUT_BITS": 4}, "memories": {}},
    ]
    return stages, thr0, w


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    rng = np.random.default_rng(7)
    stages, thr0, w = _design(rng)
    out = tmp_path_factory.mktemp("rtl")
    info = render_top(stages, out)
    sim = RTLSim(out, info["top"], info["in_bits"], info["out_bits"], out_beats_per_frame=1,
                 in_beats_per_frame=MW // C_PE, cache_dir=tmp_path_factory.mktemp("cache"), files=info["files"])
    sim.build()
    return sim, stages, thr0, w, out, info


def _expected(x, thr0, w):
    xb = semantics.multithreshold(x, thr0)
    pc = semantics.binary_mvu(xb.astype(np.uint8), w)
    return semantics.label_select(pc)


@pytest.mark.parametrize("stall_seed", [None, 3])
def test_chain_matches_semantics(built, stall_seed):
    sim, _, thr0, w, _, _ = built
    rng = np.random.default_rng(11)
    x = rng.integers(-30, 30, size=(200, MW))
    out, stats = sim.run(pack_beats(x, C_PE, IN_BITS), stall_seed=stall_seed)
    got = unpack_beats(out, 1, 4)[:, 0]
    np.testing.assert_array_equal(got, _expected(x, thr0, w))
    if stall_seed is None:
        slowest = max(MW // C_PE, (MH // PE) * (MW // SIMD), MH // PE)
        assert abs(stats["cycles_per_frame"] - slowest) <= 0.02 * slowest


def test_render_is_reproducible(built, tmp_path):
    _, stages, _, _, out, info = built
    info2 = render_top(stages, tmp_path)
    assert info2 == info
    for name in sorted(p.name for p in out.iterdir() if p.is_file()):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_rebuild_uses_cache(built):
    sim = built[0]
    again = RTLSim(sim.rtl_dir, sim.top, sim.in_bits, sim.out_bits, sim.out_bpf, sim.in_bpf, sim.cache_dir,
                   files=sim.files)
    assert again.build() == sim.binary


def test_shared_cache_gives_other_builds_the_compiled_binary(built, tmp_path, monkeypatch):
    """$BNNFLOW_SIM_CACHE: a second build folder of the same design takes the binary a first one
    compiled (no compile), keeps its own copy, and simulates the same frames; another design
    (one parameter changed) is compiled, not confused with it."""
    sim, stages, thr0, w, out, info = built
    shared = tmp_path / "shared"
    monkeypatch.setenv("BNNFLOW_SIM_CACHE", str(shared))
    first = RTLSim(out, info["top"], sim.in_bits, sim.out_bits, 1, sim.in_bpf, tmp_path / "a", files=info["files"])
    first.build()
    assert first.compile_seconds > 0 and len(list(shared.glob("*/harness"))) == 1
    second = RTLSim(out, info["top"], sim.in_bits, sim.out_bits, 1, sim.in_bpf, tmp_path / "b", files=info["files"])
    second.build()
    assert second.compile_seconds == 0 and second.binary.is_file() and tmp_path / "b" in second.binary.parents
    x = np.random.default_rng(5).integers(-30, 30, size=(20, MW))
    got = [unpack_beats(s.run(pack_beats(x, C_PE, IN_BITS))[0], 1, 4)[:, 0] for s in (first, second)]
    np.testing.assert_array_equal(got[0], _expected(x, thr0, w))
    np.testing.assert_array_equal(got[1], got[0])
    other = [dict(st) for st in stages]
    other[2]["params"] = dict(other[2]["params"], OUT_BITS=5)
    other[2]["out_bits"] = 5
    info2 = render_top(other, tmp_path / "rtl2")
    third = RTLSim(tmp_path / "rtl2", info2["top"], sim.in_bits, 5, 1, sim.in_bpf, tmp_path / "c", files=info2["files"])
    third.build()
    assert third.compile_seconds > 0 and len(list(shared.glob("*/harness"))) == 2


def test_shared_cache_shares_the_verilator_run_time_objects(built, tmp_path):
    """Builds sharing a simulator cache compile Verilator's design-independent run-time objects
    (verilated.o, verilated_threads.o) and a precompiled verilated.h once: the first build offers
    them, a build of another design links the cached objects (a corrupted cached object makes its
    link fail: it is really used) and compiles with the cached header (gcc would say so if it
    could not use it; a corrupted header is reported and verilated.h read instead)."""
    sim, stages, thr0, w, out, info = built
    shared = tmp_path / "shared"
    first = RTLSim(out, info["top"], sim.in_bits, sim.out_bits, 1, sim.in_bpf, tmp_path / "a", files=info["files"],
                   shared_cache=shared)
    first.build()
    runtime = list(shared.glob("verilator-runtime-*"))
    assert len(runtime) == 1 and {p.name for p in runtime[0].iterdir()} == {"verilated.o", "verilated_threads.o",
                                                                            f"{PCH_HEADER}.gch"}
    designs = []
    for bits in (5, 6):
        other = [dict(st) for st in stages]
        other[2]["params"] = dict(other[2]["params"], OUT_BITS=bits)
        other[2]["out_bits"] = bits
        designs.append((render_top(other, tmp_path / f"rtl{bits}"), tmp_path / f"rtl{bits}", bits))
    info2, rtl2, bits = designs[0]
    second = RTLSim(rtl2, info2["top"], sim.in_bits, bits, 1, sim.in_bpf, tmp_path / "b", files=info2["files"],
                    shared_cache=shared)
    second.build()
    x = np.random.default_rng(6).integers(-30, 30, size=(20, MW))
    np.testing.assert_array_equal(unpack_beats(first.run(pack_beats(x, C_PE, IN_BITS))[0], 1, 4)[:, 0],
                                  _expected(x, thr0, w))
    assert second.compile_seconds > 0 and second.run(pack_beats(x, C_PE, IN_BITS))[0].shape[0] == 20
    assert "-include" in second.compile_log and "Winvalid-pch" in second.compile_log
    assert "warning" not in second.compile_log, second.compile_log
    (runtime[0] / f"{PCH_HEADER}.gch").unlink()
    (runtime[0] / f"{PCH_HEADER}.gch").write_bytes(b"not a header")
    other = [dict(st) for st in stages]
    other[2]["params"] = dict(other[2]["params"], OUT_BITS=7)
    other[2]["out_bits"] = 7
    info4 = render_top(other, tmp_path / "rtl7")
    fourth = RTLSim(tmp_path / "rtl7", info4["top"], sim.in_bits, 7, 1, sim.in_bpf, tmp_path / "d",
                    files=info4["files"], shared_cache=shared)
    fourth.build()
    assert "PCH file [-Winvalid-pch]" in fourth.compile_log, fourth.compile_log
    assert fourth.run(pack_beats(x, C_PE, IN_BITS))[0].shape[0] == 20
    (runtime[0] / "verilated.o").unlink()
    (runtime[0] / "verilated.o").write_bytes(b"not an object file")
    info3, rtl3, bits = designs[1]
    third = RTLSim(rtl3, info3["top"], sim.in_bits, bits, 1, sim.in_bpf, tmp_path / "c", files=info3["files"],
                   shared_cache=shared)
    with pytest.raises(UserError, match="Verilator build"):
        third.build()


def test_bad_names_and_widths(tmp_path):
    rng = np.random.default_rng(0)
    stages, _, _ = _design(rng)
    bad = [dict(stages[0], name="1bad")]
    with pytest.raises(ValueError):
        render_top(bad, tmp_path)
    mism = [stages[0], dict(stages[1], in_bits=SIMD + 1)]
    with pytest.raises(ValueError):
        render_top(mism, tmp_path)


def test_pack_roundtrip():
    rng = np.random.default_rng(1)
    for lanes, eb, signed in [(1, 1, False), (3, 5, True), (16, 9, False), (7, 13, True)]:
        lo, hi = (-(1 << (eb - 1)), 1 << (eb - 1)) if signed else (0, 1 << eb)
        v = rng.integers(lo, hi, size=(5, lanes * 4))
        beats = pack_beats(v, lanes, eb)
        assert beats.shape == (20, -(-lanes * eb // 8))
        np.testing.assert_array_equal(unpack_beats(beats, lanes, eb, signed).reshape(5, -1), v)


# ---------------------------------------------------------------- DAG (render_graph)
def _residual_design(rng, c=8, pe=2, ib=5):
    """in -> duplicate -> (fixed_scale | fifo) -> add_streams -> out: y = scale(x) + x."""
    from flow.ops.fixed_scale import fixed_scale_param_words

    mult = rng.integers(-8, 8, size=c)
    bias = rng.integers(-20, 20, size=c)
    words, wbits = fixed_scale_param_words(mult, bias, pe, 5, 6, mult_mode=1)
    ob = 6
    stages = [
        {"module": "duplicate", "name": "split", "in_bits": pe * ib, "out_bits": [pe * ib, pe * ib],
         "params": {"WIDTH": pe * ib}},
        {"module": "fixed_scale", "name": "scale", "in_bits": pe * ib, "out_bits": pe * ob,
         "params": {"C": c, "PE": pe, "IN_BITS": ib, "IN_SIGNED": 1, "MULT_BITS": 5, "BIAS_BITS": 6, "SHIFT": 2,
                    "OUT_BITS": ob, "OUT_SIGNED": 1, "ROUND": 1, "MULT_MODE": 1},
         "memories": {"PARAMS_FILE": {"word_bits": wbits, "words": words}}},
        {"module": "fifo", "name": "skip", "in_bits": pe * ib, "out_bits": pe * ib,
         # latency 1 < the scale path's 2: the skip branch buffers, both stream at full rate
         "params": {"DEPTH": 4, "WIDTH": pe * ib, "SYNC_READ": 0}},
        {"module": "add_streams", "name": "merge", "in_bits": [pe * ob, pe * ib], "out_bits": pe * (ob + 1),
         "params": {"PE": pe, "A_BITS": ob, "B_BITS": ib, "SIGNED": 1, "OUT_BITS": ob + 1}},
    ]
    edges = [["in", "split"], [["split", 0], "scale"], [["split", 1], "skip"], ["scale", ["merge", 0]],
             ["skip", ["merge", 1]], ["merge", "out"]]
    return stages, edges, mult, bias


def test_graph_residual_matches_semantics(tmp_path):
    from flow.codegen.rtlgen import render_graph

    rng = np.random.default_rng(5)
    c, pe, ib = 8, 2, 5
    stages, edges, mult, bias = _residual_design(rng, c, pe, ib)
    info = render_graph(stages, edges, tmp_path / "rtl", "residual_top")
    assert info["order"][0] == "split" and info["order"][-1] == "merge"
    sim = RTLSim(tmp_path / "rtl", info["top"], info["in_bits"], info["out_bits"], out_beats_per_frame=c // pe,
                 in_beats_per_frame=c // pe, cache_dir=tmp_path / "cache", files=info["files"])
    x = rng.integers(-16, 16, size=(300, c))
    expected = semantics.add_streams(semantics.fixed_scale(x, mult, bias, 2, 6, True, "half_up"), x)
    for stall_seed in (None, 4):
        out, stats = sim.run(pack_beats(x, pe, ib), stall_seed=stall_seed)
        np.testing.assert_array_equal(unpack_beats(out, pe, 7, signed=True).reshape(300, c), expected)
        if stall_seed is None:
            assert abs(stats["cycles_per_frame"] - c // pe) <= 0.02 * (c // pe)


def test_graph_rejects_bad_edges(tmp_path):
    from flow.codegen.rtlgen import render_graph

    stages, edges, _, _ = _residual_design(np.random.default_rng(0))
    bad_width = [dict(stages[0]), dict(stages[1]), dict(stages[2]), dict(stages[3], in_bits=[12, 9])]
    cases = [
        (stages, edges[:-1]),                                             # merge output unconnected
        (stages, edges + [["in", "skip"]]),                               # input driven twice
        (stages, [["in", "split"], [["split", 0], "scale"], [["split", 0], "skip"], *edges[3:]]),  # fan-out
        (bad_width, edges),                                               # width mismatch
        (stages, [*edges[:5], [["merge", 1], "out"]]),                     # no such port
        (stages, [["in", "split"], [["split", 0], "scale"], [["split", 1], ["merge", 1]], ["scale", ["merge", 0]],
                  ["merge", "skip"], ["skip", "out"]]),                    # width mismatch merge -> skip
    ]
    for st, ed in cases:
        with pytest.raises(ValueError):
            render_graph(st, ed, tmp_path)
