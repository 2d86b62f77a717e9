"""cocotb testbenches of the hand-written engines (Verilator through cocotb_tools.runner).

Each case builds one parameter set, streams many frames unstalled (exact results and
the ideal cycles per frame) and under random valid gaps / ready stalls. One simulator build
costs about 10 s, so the default run builds one case by itself (DEFAULT_ONE, through its own
testbench) and every other FAST case in the shared batch (test_engines_batched); the slow tier
runs each FAST and SLOW case through its own testbench."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

from cocotb_lib import run_cocotb  # noqa: E402
from engine_cases import make_case, sources  # noqa: E402

pytestmark = pytest.mark.sim


def _mvu(mw, mh, simd, pe, use_thresh, t=1, tb=8):
    ob = max(1, t.bit_length()) if use_thresh else (mw).bit_length()
    return ("bnn_mvu", {"MW": mw, "MH": mh, "SIMD": simd, "PE": pe, "USE_THRESH": use_thresh, "T": t, "TB": tb,
                        "OUT_BITS": ob, "WEIGHTS_FILE": "weights.mem",
                        "THRESH_FILE": "thresh.mem" if use_thresh else "", "RAM_STYLE": "auto"})


def _thr(c, pe, ib, signed, t, tb):
    return ("thresholding", {"C": c, "PE": pe, "IN_BITS": ib, "IN_SIGNED": signed, "T": t, "TB": tb,
                             "OUT_BITS": max(1, t.bit_length()), "THRESH_FILE": "thresh.mem"})


FAST = {
    "mvu_thresh_folded": (_mvu(16, 8, 4, 2, 1, t=3, tb=5), 200),
    "mvu_pc_pe1_simd1": (_mvu(6, 3, 1, 1, 0), 150),
    "mvu_pc_grouped": (_mvu(320, 4, 160, 2, 1, t=3, tb=9), 60),  # 5 popcount groups of 32, one more stage
    "thresholding_signed": (_thr(8, 2, 6, 1, 3, 7), 300),
    "label_select_ties": (("label_select", {"L": 10, "PE": 2, "IN_BITS": 5, "OUT_BITS": 4}), 80),
    "dwc_down": (("dwc", {"IN_ELEMS": 6, "OUT_ELEMS": 2, "ELEM_BITS": 3}), 60),
    "dwc_up": (("dwc", {"IN_ELEMS": 2, "OUT_ELEMS": 8, "ELEM_BITS": 1}), 60),
    "fifo4": (("fifo", {"DEPTH": 4, "WIDTH": 70}), 200),
}
SLOW = {
    "mvu_full_parallel": (_mvu(32, 8, 32, 8, 1, t=1, tb=6), 60),
    "mvu_nf1_sf4": (_mvu(16, 4, 4, 4, 0), 60),
    "mvu_nf4_sf1": (_mvu(8, 8, 8, 2, 1, t=2, tb=4), 60),
    "mvu_wide_pc": (_mvu(64, 16, 16, 4, 0), 30),
    "thresholding_unsigned_pe1": (_thr(5, 1, 4, 0, 15, 4), 60),
    "thresholding_full": (_thr(4, 4, 8, 1, 1, 8), 60),
    "label_select_pe1": (("label_select", {"L": 4, "PE": 1, "IN_BITS": 3, "OUT_BITS": 2}), 80),
    "label_select_pe_l": (("label_select", {"L": 10, "PE": 10, "IN_BITS": 4, "OUT_BITS": 4}), 80),
    "dwc_equal": (("dwc", {"IN_ELEMS": 3, "OUT_ELEMS": 3, "ELEM_BITS": 2}), 60),
    "dwc_down_wide": (("dwc", {"IN_ELEMS": 64, "OUT_ELEMS": 16, "ELEM_BITS": 2}), 30),
    "fifo1": (("fifo", {"DEPTH": 1, "WIDTH": 3}), 100),
    "fifo_odd": (("fifo", {"DEPTH": 5, "WIDTH": 9}), 200),
}


def _run(name, engine, params, frames, tmp_path_factory):
    seed = sum(map(ord, name))
    test_dir = tmp_path_factory.mktemp(name)
    case = make_case(engine, params, seed, frames)
    for fname, text in case.memories.items():
        (test_dir / fname).write_text(text)
    rtl = REPO / "rtl"
    cfg = {"engine": engine, "params": params, "seed": seed, "frames": frames}
    run_cocotb(engine, [rtl / s for s in sources(engine)],
               {k: v for k, v in params.items()}, test_dir / "build", test_dir,
               extra_env={"BNNFLOW_TB_CFG": json.dumps(cfg)})


DEFAULT_ONE = "mvu_thresh_folded"


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n == DEFAULT_ONE else [pytest.mark.slow])
                                  for n in sorted(FAST)])
def test_engine(name, tmp_path_factory):
    (engine, params), frames = FAST[name]
    _run(name, engine, params, frames, tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW))
def test_engine_slow(name, tmp_path_factory):
    (engine, params), frames = SLOW[name]
    _run(name, engine, params, frames, tmp_path_factory)


# ---------------------------------------------------------------- batched builds
# Several configurations share one simulator build (sim/batch.py); the representative
# set below covers every engine, each with its cycle-per-frame formula checked.
from batch import run_batch  # noqa: E402
from cocotb_lib import ICARUS_MISSING, have_icarus  # noqa: E402
from flow.ops.int_mvu import int_mvu_params  # noqa: E402
from flow.ops.vvu import engine_params as vvu_params  # noqa: E402
from flow.ops.sliding_window import buffer_param  # noqa: E402


def window_with_buffer(p: dict) -> dict:
    """sliding_window parameters p with the line buffer depth the flow gives them."""
    return {**p, **buffer_param(p)}

DEFAULT_BATCH = [
    ("int_mvu", int_mvu_params(8, 4, 2, 2, 4, 1, 0), 12),
    ("int_mvu", int_mvu_params(12, 6, 3, 2, 3, 0, 1, k=2, sb=2, use_thresh=1, t=3), 12),
    ("int_mvu", int_mvu_params(8, 4, 4, 1, 4, 1, 2, w_bits=3), 12),
    ("int_mvu", int_mvu_params(6, 4, 1, 4, 2, 1, 0, use_thresh=1, t=1), 12),
    ("sliding_window", dict(IFM_H=5, IFM_W=5, C=4, K=3, STRIDE=1, PAD=1, PAD_VALUE=3, SIMD=2, ELEM_BITS=3), 6),
    # reader-bound, its 4-row buffer exactly full: exactly 324 cycles per frame, no bubble while
    # the next frame's first rows come in (freeing the top row only per window row gave 327)
    ("sliding_window", dict(IFM_H=8, IFM_W=8, C=3, K=3, STRIDE=1, PAD=0, PAD_VALUE=0, SIMD=3, ELEM_BITS=2), 8,
     {"cpf_tolerance": 0.0}),
    # one window row, its dilated kernel spanning the image: the deeper buffer (BUF_BEATS 256,
    # line_buffer_beats) lets the next frame in while this one is read out, exactly 84 cycles per
    # frame (the default 128 beats gave 91)
    ("sliding_window", window_with_buffer(dict(IFM_H=7, IFM_W=6, C=2, K=4, STRIDE=2, PAD=0, PAD_VALUE=2, SIMD=1,
                                               ELEM_BITS=2, K_W=2, STRIDE_W=1, PAD_LEFT=1, PAD_BOTTOM=0,
                                               PAD_RIGHT=0, DIL_H=2, DIL_W=2)), 8, {"cpf_tolerance": 0.0}),
    ("sliding_window", dict(IFM_H=6, IFM_W=5, C=2, K=2, STRIDE=2, PAD=0, PAD_VALUE=0, SIMD=1, ELEM_BITS=2), 6),
    # non-square kernel, unequal strides, per-side padding, dilation; a 1-D window (height 1)
    ("sliding_window", dict(IFM_H=7, IFM_W=6, C=2, K=3, STRIDE=2, PAD=1, PAD_VALUE=1, SIMD=1, ELEM_BITS=2,
                            K_W=2, STRIDE_W=1, PAD_LEFT=0, PAD_BOTTOM=2, PAD_RIGHT=1, DIL_H=2, DIL_W=3), 4),
    ("sliding_window", dict(IFM_H=1, IFM_W=11, C=4, K=1, STRIDE=1, PAD=0, PAD_VALUE=2, SIMD=2, ELEM_BITS=3,
                            K_W=3, STRIDE_W=2, PAD_LEFT=1, PAD_BOTTOM=0, PAD_RIGHT=2, DIL_H=1, DIL_W=2), 6),
    ("sliding_window", dict(IFM_H=6, IFM_W=5, C=3, K=1, STRIDE=1, PAD=0, PAD_VALUE=0, SIMD=3, ELEM_BITS=2,
                            K_W=3, STRIDE_W=1, PAD_LEFT=1, PAD_BOTTOM=0, PAD_RIGHT=1, DIL_H=1, DIL_W=1), 4),
    # thresh_count unrolled (PE*T <= 256, an 8-bit input layer) and kept as loops (PE*T > 256)
    (*_thr(3, 1, 8, 0, 255, 8), 4),
    (*_thr(4, 2, 9, 1, 255, 10), 4),
    ("maxpool", dict(H=4, W=6, C=4, K=2, STRIDE=2, PE=2, ELEM_BITS=4, SIGNED=1), 6),
    ("maxpool", dict(H=7, W=6, C=2, K=3, STRIDE=2, PE=1, ELEM_BITS=3, SIGNED=0, K_W=1, STRIDE_W=1), 4),
    ("maxpool", dict(H=5, W=5, C=3, K=3, STRIDE=2, PE=1, ELEM_BITS=1, SIGNED=0), 6),
    ("global_acc_pool", dict(H=3, W=2, C=4, PE=2, IN_BITS=4, IN_SIGNED=1, OUT_BITS=7), 8),
    ("label_select", dict(L=10, PE=2, IN_BITS=3, OUT_BITS=4, K=3), 20),
    ("label_select", dict(L=6, PE=3, IN_BITS=2, OUT_BITS=3, K=1), 20),
    # K = 1 by a compare tree over the beat: full, odd and uneven levels, 2-bit values (many ties)
    ("label_select", dict(L=10, PE=10, IN_BITS=2, OUT_BITS=4, K=1), 30),
    ("label_select", dict(L=21, PE=7, IN_BITS=2, OUT_BITS=5, K=1), 30),
    ("label_select", dict(L=15, PE=5, IN_BITS=3, OUT_BITS=4, K=1), 30),
    ("duplicate", dict(WIDTH=9), 60),
    ("add_streams", dict(PE=2, A_BITS=4, B_BITS=3, SIGNED=1, OUT_BITS=5), 60),
    ("add_streams", dict(PE=1, A_BITS=3, B_BITS=5, SIGNED=0, OUT_BITS=6), 60),
    ("fixed_scale", dict(C=4, PE=2, IN_BITS=5, IN_SIGNED=1, MULT_BITS=6, BIAS_BITS=8, SHIFT=3, OUT_BITS=5,
                         OUT_SIGNED=1, ROUND=1, MULT_MODE=1, K=2, SB=3, PARAMS_FILE="p.mem"), 20),
    ("fixed_scale", dict(C=3, PE=1, IN_BITS=4, IN_SIGNED=0, MULT_BITS=6, BIAS_BITS=6, SHIFT=2, OUT_BITS=4,
                         OUT_SIGNED=0, ROUND=0, MULT_MODE=0, K=2, SB=2, PARAMS_FILE="p.mem"), 20),
    ("vvu", vvu_params(4, 9, 2, 1, 4, 2, w_bits=4), 8),                       # PE over channels, multiplier
    ("vvu", vvu_params(3, 9, 3, 3, 3, 1, k=2, sb=2, use_thresh=1, t=3), 8),   # SIMD over taps, shift-add
    ("vvu", vvu_params(4, 9, 1, 1, 2, 0, use_thresh=1, t=1), 4),              # add/subtract, PE = 1
    ("fifo", dict(DEPTH=3, WIDTH=12, SYNC_READ=1, RAM_STYLE="block"), 60),
    ("fifo", dict(DEPTH=1, WIDTH=5, SYNC_READ=1, RAM_STYLE="block"), 60),
    ("streaming_concat", dict(SIMD=2, A_BEATS=3, B_BEATS=1, A_BITS=4, B_BITS=2, OUT_BITS=4), 30),
    ("streaming_concat", dict(SIMD=1, A_BEATS=1, B_BEATS=2, A_BITS=1, B_BITS=3, OUT_BITS=3), 30),
]
# the FAST cases too (30 frames each): the default run builds them here, and the Icarus run
# covers the whole library
FAST_IN_BATCH = [(FAST[n][0][0], FAST[n][0][1], 30) for n in sorted(FAST)]


def _batch(entries):
    """Batch configurations of (engine, params, frames[, extra keys such as cpf_tolerance])."""
    return [{"engine": e, "params": p, "seed": 1000 + i, "frames": f, "name": f"default{i}", **(more[0] if more else {})}
            for i, (e, p, f, *more) in enumerate(entries)]


def test_engines_batched(tmp_path):
    stats = run_batch(_batch(DEFAULT_BATCH + FAST_IN_BATCH), tmp_path, "verilator")
    assert stats["configs"] == len(DEFAULT_BATCH) + len(FAST_IN_BATCH)
    print(f"{stats['configs']} configurations, {stats['beats']} beats, {stats['cycles']} cycles")


def test_engines_batched_icarus(tmp_path):
    if not have_icarus():
        pytest.skip(ICARUS_MISSING)
    stats = run_batch(_batch(DEFAULT_BATCH + FAST_IN_BATCH), tmp_path, "icarus")
    assert stats["configs"] == len(DEFAULT_BATCH) + len(FAST_IN_BATCH)
