"""cocotb testbenches of the hand-written engines (Verilator through cocotb_tools.runner).

Each case builds one parameter set, streams many frames unstalled (exact results and
the ideal cycles per frame) and under random valid gaps / ready stalls."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

from cocotb_lib import run_cocotb  # noqa: E402
from engine_cases import SOURCES, make_case  # noqa: E402

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
    run_cocotb(engine, [rtl / s for s in SOURCES[engine]],
               {k: v for k, v in params.items()}, test_dir / "build", test_dir,
               extra_env={"BNNFLOW_TB_CFG": json.dumps(cfg)})


@pytest.mark.parametrize("name", sorted(FAST))
def test_engine(name, tmp_path_factory):
    (engine, params), frames = FAST[name]
    _run(name, engine, params, frames, tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW))
def test_engine_slow(name, tmp_path_factory):
    (engine, params), frames = SLOW[name]
    _run(name, engine, params, frames, tmp_path_factory)
