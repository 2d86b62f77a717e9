"""Lint every engine with `verilator --lint-only -Wall` and synthesise bnn_mvu with yosys;
the slow tier synthesises every engine for xcup, xc7 and ECP5 (benchmarks/bench_synth.py's
parameter sets) and requires 0 DSP for the binary, add/subtract and shift-add engines."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flow.core import tools
from flow.ir.registry import engines
from flow.ops.binary_mvu import mvu_weight_words
from flow.ops.packing import mem_text, thresh_words

RTL = Path(__file__).resolve().parent.parent / "rtl"

LINT_CASES = [
    ("bnn_mvu", {}),
    ("bnn_mvu", {"MW": 784, "MH": 64, "SIMD": 16, "PE": 16, "USE_THRESH": 1, "T": 1, "TB": 10, "OUT_BITS": 1}),
    ("bnn_mvu", {"MW": 8, "MH": 3, "SIMD": 1, "PE": 1, "USE_THRESH": 1, "T": 3, "TB": 4, "OUT_BITS": 2}),
    ("bnn_mvu", {"MW": 64, "MH": 10, "SIMD": 64, "PE": 10, "OUT_BITS": 7}),
    ("bnn_mvu", {"MW": 784, "MH": 4, "SIMD": 196, "PE": 2, "USE_THRESH": 1, "T": 1, "TB": 10, "OUT_BITS": 1}),  # grouped
    ("thresholding", {}),
    ("thresholding", {"C": 3, "PE": 1, "IN_BITS": 10, "IN_SIGNED": 0, "T": 1, "TB": 4, "OUT_BITS": 1}),
    ("thresholding", {"C": 4, "PE": 2, "IN_BITS": 8, "IN_SIGNED": 1, "T": 255, "TB": 8, "OUT_BITS": 8}),  # loops
    ("thresholding", {"C": 6, "PE": 2, "IN_BITS": 8, "IN_SIGNED": 0, "T": 255, "TB": 8, "OUT_BITS": 8, "SHARED": 1}),
    ("label_select", {}),
    ("label_select", {"L": 10, "PE": 10, "IN_BITS": 7, "OUT_BITS": 4}),
    ("label_select", {"L": 4, "PE": 1, "IN_BITS": 3, "OUT_BITS": 2}),
    ("dwc", {"IN_ELEMS": 8, "OUT_ELEMS": 2, "ELEM_BITS": 1}),
    ("dwc", {"IN_ELEMS": 2, "OUT_ELEMS": 8, "ELEM_BITS": 3}),
    ("dwc", {"IN_ELEMS": 4, "OUT_ELEMS": 4, "ELEM_BITS": 2}),
    ("fifo", {"DEPTH": 1, "WIDTH": 1}),
    ("fifo", {"DEPTH": 17, "WIDTH": 130}),
    ("fifo", {"DEPTH": 1, "WIDTH": 3, "SYNC_READ": 1}),
    ("fifo", {"DEPTH": 512, "WIDTH": 64, "SYNC_READ": 1}),
    ("bnn_mvu", {"MW": 64, "MH": 2, "SIMD": 64, "PE": 1, "OUT_BITS": 7}),
    ("bnn_mvu", {"MW": 2, "MH": 2, "SIMD": 2, "PE": 1, "OUT_BITS": 2}),
    ("int_mvu", {}),
    ("int_mvu", {"W_MODE": 1, "K": 3, "SB": 2, "IN_SIGNED": 0}),
    ("int_mvu", {"W_MODE": 2, "W_BITS": 3, "USE_THRESH": 1, "T": 3, "TB": 13, "OUT_BITS": 2}),
    ("int_mvu", {"MW": 5, "MH": 3, "SIMD": 1, "PE": 1, "IN_BITS": 1, "ACC_BITS": 4, "OUT_BITS": 4}),
    ("vvu", {}),
    ("vvu", {"C": 4, "PE": 4, "SIMD": 3, "W_MODE": 1, "USE_THRESH": 1, "T": 3, "TB": 13, "OUT_BITS": 2}),
    ("vvu", {"C": 1, "PE": 1, "TAPS": 1, "W_MODE": 0, "IN_BITS": 1, "ACC_BITS": 2, "OUT_BITS": 2}),
    ("streaming_concat", {}),
    ("streaming_concat", {"SIMD": 2, "A_BEATS": 3, "B_BEATS": 1, "A_BITS": 2, "B_BITS": 4, "OUT_BITS": 4}),
    ("sliding_window", {}),
    ("sliding_window", {"IFM_H": 32, "IFM_W": 32, "C": 64, "K": 3, "STRIDE": 2, "PAD": 0, "SIMD": 16,
                        "ELEM_BITS": 1}),
    ("sliding_window", {"IFM_H": 1, "IFM_W": 1, "C": 1, "K": 1, "STRIDE": 1, "PAD": 0, "SIMD": 1}),
    ("maxpool", {}),
    ("maxpool", {"H": 7, "W": 5, "C": 6, "K": 3, "STRIDE": 1, "PE": 3, "ELEM_BITS": 1}),
    ("maxpool", {"H": 2, "W": 2, "C": 1, "K": 2, "STRIDE": 2, "PE": 1, "ELEM_BITS": 5, "SIGNED": 1}),
    ("global_acc_pool", {}),
    ("global_acc_pool", {"H": 1, "W": 1, "C": 1, "PE": 1, "IN_BITS": 1, "OUT_BITS": 1}),
    ("global_acc_pool", {"H": 8, "W": 8, "C": 64, "PE": 8, "IN_BITS": 4, "IN_SIGNED": 1, "OUT_BITS": 11}),
    ("label_select", {"L": 100, "PE": 4, "IN_BITS": 8, "OUT_BITS": 7, "K": 5}),
    ("label_select", {"L": 3, "PE": 3, "IN_BITS": 1, "OUT_BITS": 2, "K": 3}),
    ("duplicate", {}),
    ("duplicate", {"WIDTH": 1}),
    ("add_streams", {}),
    ("add_streams", {"PE": 1, "A_BITS": 1, "B_BITS": 7, "SIGNED": 0, "OUT_BITS": 8}),
    ("fixed_scale", {}),
    ("fixed_scale", {"MULT_MODE": 0, "K": 3, "SB": 2, "ROUND": 1, "OUT_SIGNED": 0, "SHIFT": 0}),
    ("fixed_scale", {"C": 1, "PE": 1, "IN_BITS": 1, "IN_SIGNED": 0, "MULT_BITS": 2, "BIAS_BITS": 2, "SHIFT": 6,
                     "OUT_BITS": 1, "ROUND": 1}),
]


@pytest.mark.sim
@pytest.mark.parametrize("module,params", LINT_CASES, ids=[f"{m}{i}" for i, (m, _) in enumerate(LINT_CASES)])
def test_lint_clean(module, params):
    cmd = [tools.verilator_bin(), "--lint-only", "-Wall", "--top-module", module,
           *[f"-G{k}={v}" for k, v in params.items()], *[str(RTL / s) for s in engines()[module].engine.sources]]
    res = subprocess.run(cmd, capture_output=True, text=True, env=tools.tool_env())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "%Warning" not in res.stderr, res.stderr


def _yosys_stat(tmp_path: Path, module: str, params: dict, synth: str, mems: dict | None = None) -> dict:
    for name, text in (mems or {}).items():
        (tmp_path / name).write_text(text)
    for s in engines()[module].engine.sources:
        shutil.copyfile(RTL / s, tmp_path / Path(s).name)
    files = " ".join(Path(s).name for s in engines()[module].engine.sources)
    chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
    script = (f"read_verilog -sv {files}; chparam {chparam} {module}; {synth} -top {module}; "
              "tee -q -o stat.json stat -json")
    res = subprocess.run([*tools.yosys_cmd(), "-q", "-p", script], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]


@pytest.mark.parametrize("synth", ["synth_xilinx -family xcup -flatten", "synth_ecp5"])
def test_mvu_synthesises_without_dsp(tmp_path, synth):
    rng = np.random.default_rng(0)
    w = rng.integers(0, 2, size=(16, 64), dtype=np.uint8)
    thr = np.sort(rng.integers(0, 65, size=(16, 1)), axis=1)
    mems = {"w.mem": mem_text(mvu_weight_words(w, 4, 16), 64), "t.mem": mem_text(thresh_words(thr, 4, 7), 28)}
    params = {"MW": 64, "MH": 16, "SIMD": 16, "PE": 4, "USE_THRESH": 1, "T": 1, "TB": 7, "OUT_BITS": 1,
              "WEIGHTS_FILE": '"w.mem"', "THRESH_FILE": '"t.mem"'}
    cells = _yosys_stat(tmp_path, "bnn_mvu", params, synth, mems)
    assert not any("DSP" in c or "MULT" in c for c in cells), cells
    assert any(c.startswith("LUT") for c in cells), cells


def test_every_engine_is_linted():
    assert {m for m, _ in LINT_CASES} == set(engines())


@pytest.mark.slow
@pytest.mark.parametrize("target", ["xcup", "xc7", "ecp5"])
def test_engines_synthesise(target):
    import sys

    sys.path.insert(0, str(RTL.parent / "benchmarks"))
    from bench_synth import NO_DSP, classify, engine_configs, synth

    for label, module, params, mems in engine_configs():
        cells = classify(synth(module, params, target, mems))
        assert cells["LUT"] + cells["FF"] > 0, (label, cells)
        if label in NO_DSP:
            assert cells["DSP"] == 0, f"{label} maps to {cells['DSP']} DSP on {target}"
