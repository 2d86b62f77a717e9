"""Lint every engine with `verilator --lint-only -Wall` and synthesise bnn_mvu with yosys."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flow import tools
from flow.rtlgen import ENGINE_SOURCES, mem_text, mvu_weight_words, thresh_words

RTL = Path(__file__).resolve().parent.parent / "rtl"

LINT_CASES = [
    ("bnn_mvu", {}),
    ("bnn_mvu", {"MW": 784, "MH": 64, "SIMD": 16, "PE": 16, "USE_THRESH": 1, "T": 1, "TB": 10, "OUT_BITS": 1}),
    ("bnn_mvu", {"MW": 8, "MH": 3, "SIMD": 1, "PE": 1, "USE_THRESH": 1, "T": 3, "TB": 4, "OUT_BITS": 2}),
    ("bnn_mvu", {"MW": 64, "MH": 10, "SIMD": 64, "PE": 10, "OUT_BITS": 7}),
    ("thresholding", {}),
    ("thresholding", {"C": 3, "PE": 1, "IN_BITS": 10, "IN_SIGNED": 0, "T": 1, "TB": 4, "OUT_BITS": 1}),
    ("label_select", {}),
    ("label_select", {"L": 10, "PE": 10, "IN_BITS": 7, "OUT_BITS": 4}),
    ("label_select", {"L": 4, "PE": 1, "IN_BITS": 3, "OUT_BITS": 2}),
    ("dwc", {"IN_ELEMS": 8, "OUT_ELEMS": 2, "ELEM_BITS": 1}),
    ("dwc", {"IN_ELEMS": 2, "OUT_ELEMS": 8, "ELEM_BITS": 3}),
    ("dwc", {"IN_ELEMS": 4, "OUT_ELEMS": 4, "ELEM_BITS": 2}),
    ("fifo", {"DEPTH": 1, "WIDTH": 1}),
    ("fifo", {"DEPTH": 17, "WIDTH": 130}),
]


@pytest.mark.sim
@pytest.mark.parametrize("module,params", LINT_CASES, ids=[f"{m}{i}" for i, (m, _) in enumerate(LINT_CASES)])
def test_lint_clean(module, params):
    cmd = [tools.verilator_bin(), "--lint-only", "-Wall", "--top-module", module,
           *[f"-G{k}={v}" for k, v in params.items()], *[str(RTL / s) for s in ENGINE_SOURCES[module]]]
    res = subprocess.run(cmd, capture_output=True, text=True, env=tools.tool_env())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "%Warning" not in res.stderr, res.stderr


def _yosys_stat(tmp_path: Path, module: str, params: dict, synth: str, mems: dict | None = None) -> dict:
    for name, text in (mems or {}).items():
        (tmp_path / name).write_text(text)
    for s in ENGINE_SOURCES[module]:
        shutil.copyfile(RTL / s, tmp_path / Path(s).name)
    files = " ".join(Path(s).name for s in ENGINE_SOURCES[module])
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
