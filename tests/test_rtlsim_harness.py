"""Render a small chain (thresholding -> bnn_mvu -> label_select), compile it with the
Verilator harness and compare every frame with flow.ops.semantics."""
from __future__ import annotations

import numpy as np
import pytest

from flow.ops import semantics
from flow.rtlgen import mvu_weight_words, render_top, thresh_words
from flow.rtlsim import RTLSim, pack_beats, unpack_beats

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
