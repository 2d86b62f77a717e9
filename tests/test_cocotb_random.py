"""Slow tier: random legal configurations of every engine chosen by hypothesis, batched
several per simulator build (sim/batch.py), each streamed unstalled (exact results, the
engine's cycles-per-frame formula) and under four random stall patterns, beat by beat
against flow.ops.semantics (no beat lost, duplicated or reordered).

Totals over the tier: >= 200 configurations and >= 100,000 stream beats."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from batch import run_batch  # noqa: E402
from engine_cases import int_mvu_params  # noqa: E402
from flow.ops.vvu import VVU  # noqa: E402

pytestmark = [pytest.mark.sim, pytest.mark.slow]

PER_BATCH = 12          # configurations per build
BATCHES = 2             # hypothesis examples (builds) per engine
TOTALS = {"configs": 0, "beats": 0, "batches": 0}


@st.composite
def int_mvu_cfg(draw):
    simd, sf, pe, nf = (draw(st.integers(1, n)) for n in (6, 4, 4, 3))
    mode = draw(st.integers(0, 2))
    use_thresh = draw(st.integers(0, 1))
    p = int_mvu_params(simd * sf, pe * nf, simd, pe, draw(st.integers(1, 6)), draw(st.integers(0, 1)), mode,
                       w_bits=draw(st.integers(2, 5)), k=draw(st.integers(1, 3)), sb=draw(st.integers(1, 3)),
                       use_thresh=use_thresh, t=draw(st.integers(1, 4)) if use_thresh else 1,
                       ram_style=draw(st.sampled_from(["auto", "block", "distributed"])))
    return "int_mvu", p, 8


@st.composite
def sliding_window_cfg(draw):
    k = draw(st.integers(1, 4))
    pad = draw(st.integers(0, min(k - 1, 2)))
    h, w = (draw(st.integers(max(1, k - 2 * pad), 7)) for _ in range(2))
    simd, cf = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    eb = draw(st.integers(1, 4))
    return "sliding_window", dict(IFM_H=h, IFM_W=w, C=simd * cf, K=k, STRIDE=draw(st.integers(1, 3)), PAD=pad,
                                  PAD_VALUE=draw(st.integers(0, (1 << eb) - 1)), SIMD=simd, ELEM_BITS=eb), 4


@st.composite
def maxpool_cfg(draw):
    k = draw(st.integers(1, 3))
    h, w = (draw(st.integers(k, 7)) for _ in range(2))
    pe, cf = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return "maxpool", dict(H=h, W=w, C=pe * cf, K=k, STRIDE=draw(st.integers(1, 3)), PE=pe,
                           ELEM_BITS=draw(st.integers(1, 5)), SIGNED=draw(st.integers(0, 1))), 4


@st.composite
def global_acc_pool_cfg(draw):
    h, w, pe, cf = (draw(st.integers(1, n)) for n in (4, 4, 3, 3))
    ib, sg = draw(st.integers(1, 6)), draw(st.integers(0, 1))
    return "global_acc_pool", dict(H=h, W=w, C=pe * cf, PE=pe, IN_BITS=ib, IN_SIGNED=sg,
                                   OUT_BITS=ib + (h * w).bit_length() + sg), 8


@st.composite
def label_select_cfg(draw):
    pe, nb = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    lab = pe * nb
    return "label_select", dict(L=lab, PE=pe, IN_BITS=draw(st.integers(1, 5)), OUT_BITS=max(1, (lab - 1).bit_length()),
                                K=draw(st.integers(1, min(lab, 4)))), 30


@st.composite
def duplicate_cfg(draw):
    return "duplicate", dict(WIDTH=draw(st.integers(1, 80))), 150


@st.composite
def add_streams_cfg(draw):
    a, b = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    return "add_streams", dict(PE=draw(st.integers(1, 4)), A_BITS=a, B_BITS=b, SIGNED=draw(st.integers(0, 1)),
                               OUT_BITS=max(a, b) + 1), 150


@st.composite
def fixed_scale_cfg(draw):
    pe, cf = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return "fixed_scale", dict(
        C=pe * cf, PE=pe, IN_BITS=draw(st.integers(1, 8)), IN_SIGNED=draw(st.integers(0, 1)),
        MULT_BITS=draw(st.integers(2, 8)), BIAS_BITS=draw(st.integers(2, 10)), SHIFT=draw(st.integers(0, 6)),
        OUT_BITS=draw(st.integers(1, 8)), OUT_SIGNED=draw(st.integers(0, 1)), ROUND=draw(st.integers(0, 1)),
        MULT_MODE=draw(st.integers(0, 1)), K=draw(st.integers(1, 3)), SB=draw(st.integers(1, 3)),
        PARAMS_FILE="p.mem", RAM_STYLE=draw(st.sampled_from(["auto", "block"]))), 30


@st.composite
def fifo_cfg(draw):
    sync = draw(st.integers(0, 1))
    return "fifo", dict(DEPTH=draw(st.integers(1, 9)), WIDTH=draw(st.integers(1, 40)), SYNC_READ=sync,
                        RAM_STYLE="block" if sync else "auto"), 150


def vvu_cfg():
    """The VVU's own random legal configurations (flow.ops.vvu.VVU.random_params)."""
    return st.integers(0, 2**32 - 1).map(lambda s: ("vvu", VVU.random_params(np.random.default_rng(s)), 12))


STRATEGIES = {
    "int_mvu": int_mvu_cfg(), "sliding_window": sliding_window_cfg(), "maxpool": maxpool_cfg(),
    "global_acc_pool": global_acc_pool_cfg(), "label_select": label_select_cfg(), "duplicate": duplicate_cfg(),
    "add_streams": add_streams_cfg(), "fixed_scale": fixed_scale_cfg(), "fifo": fifo_cfg(),
    "vvu": vvu_cfg(),
}


@pytest.mark.parametrize("engine", sorted(STRATEGIES))
def test_random_configurations(engine, tmp_path_factory):
    @settings(max_examples=BATCHES, deadline=None, database=None, phases=[Phase.generate], derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(STRATEGIES[engine], min_size=PER_BATCH, max_size=PER_BATCH),
           seed=st.integers(0, 10_000))
    def check(batch, seed):
        configs = [{"engine": e, "params": p, "seed": seed + i, "frames": f} for i, (e, p, f) in enumerate(batch)]
        stats = run_batch(configs, tmp_path_factory.mktemp(engine), "verilator")
        assert stats["configs"] == len(configs)
        TOTALS["configs"] += stats["configs"]
        TOTALS["beats"] += stats["beats"]
        TOTALS["batches"] += 1

    check()


def test_random_totals():
    """Runs after the random batches (file order): the tier's coverage targets."""
    if TOTALS["batches"] < BATCHES * len(STRATEGIES):
        pytest.skip("not every random batch ran in this session")
    print(f"random tier: {TOTALS['configs']} configurations, {TOTALS['beats']} beats")
    assert TOTALS["configs"] >= 200
    assert TOTALS["beats"] >= 100_000
