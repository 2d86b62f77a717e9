"""Formal proofs of the engines (flow.sim.prove, SymbiYosys BMC with z3).

Default tier: the stream protocol of every engine at its smallest configurations (depth 12),
the semantics check of thresholding, and mutants: copies of an engine with one protocol or
semantics bug, each of which a proof must reject at the property the bug breaks. Slow tier:
every check (protocol, semantics, cover) of every engine, and deeper bounds."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from flow.cli import main
from flow.ir.registry import engines
from flow.sim.prove import formal_engines, prove_config, prove_engines

REPO = Path(__file__).resolve().parent.parent
CHECKER = REPO / "rtl" / "formal" / "axis_formal.sv"


def _line(marker: str) -> int:
    """The line of axis_formal.sv whose comment names a property."""
    return next(i for i, ln in enumerate(CHECKER.read_text().splitlines(), 1) if marker in ln)


def _configs():
    return [(m, i) for m, cls in formal_engines().items() for i in range(len(cls.formal.configs))]


def test_every_engine_declares_proofs():
    assert set(formal_engines()) == set(engines())


@pytest.mark.parametrize("module,i", _configs(), ids=lambda v: str(v))
def test_protocol(module, i, tmp_path):
    params = engines()[module].formal.configs[i]
    (r,) = prove_config(module, params, tmp_path, checks=("protocol",))
    assert r.status == "PASS", f"{module} {r.config}: {r.status} {r.detail}"


def test_thresholding_semantics(tmp_path):
    params = engines()["thresholding"].formal.configs[0]
    (r,) = prove_config("thresholding", params, tmp_path, checks=("semantics",))
    assert r.status == "PASS", r.detail


# (engine, source file, text, its mutation, check, where the proof must fail)
MUTANTS = {
    "valid_dropped_under_stall": ("thresholding", "thresholding/thresholding.sv",
                                  "else if (en) m_axis_tvalid <= v1;", "else m_axis_tvalid <= en & v1;",
                                  "protocol", "// held until taken"),
    "data_changed_under_stall": ("add_streams", "stream_ops/add_streams.sv",
                                 "if (fire) m_axis_tdata <= sum;", "m_axis_tdata <= sum;",
                                 "protocol", "// stable while stalled"),
    "beat_created": ("thresholding", "thresholding/thresholding.sv",
                     "v1 <= s_axis_tvalid;", "v1 <= 1'b1;", "protocol", "// no beat created"),
    "first_beat_dropped": ("fifo", "fifo/fifo.sv", "wire wr = s_axis_tvalid & s_axis_tready;",
                           "logic seen;\n    always_ff @(posedge ap_clk) seen <= ap_rst_n & (seen | s_axis_tvalid);\n"
                           "    wire wr = s_axis_tvalid & s_axis_tready & seen;", "protocol", "// no beat lost"),
    "valid_out_of_reset": ("thresholding", "thresholding/thresholding.sv",
                           "if (!ap_rst_n) m_axis_tvalid <= 1'b0;", "if (!ap_rst_n) m_axis_tvalid <= 1'b1;",
                           "protocol", "// no beat out of reset"),
    "threshold_gt_for_ge": ("thresholding", "common/thresh_count.sv", "c = c + OUT_BITS'(a >= th);", "c = c + OUT_BITS'(a > th);",
                            "semantics", "formal_top.sv"),
}


def _mutant_rtl(tmp_path: Path, module: str, source: str, old: str, new: str) -> Path:
    rtl = tmp_path / "rtl"
    for s in engines()[module].engine.sources:
        (rtl / s).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "rtl" / s, rtl / s)
    text = (rtl / source).read_text()
    # thresh_count writes its compare twice (the loops unrolled for Verilator or not): a mutant changes every copy
    assert text.count(old) == (2 if source == "common/thresh_count.sv" else 1), \
        f"the mutation's text is not found where expected in {source}"
    (rtl / source).write_text(text.replace(old, new))
    return rtl


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails(name, tmp_path):
    module, source, old, new, check, where = MUTANTS[name]
    rtl = _mutant_rtl(tmp_path, module, source, old, new)
    params = engines()[module].formal.configs[0]
    (r,) = prove_config(module, params, tmp_path / "work", rtl=rtl, checks=(check,))
    assert r.status == "FAIL", f"{name}: {r.status} {r.detail}"
    at = where if where.endswith(".sv") else f"axis_formal.sv:{_line(where)}."
    assert at in r.detail, f"{name} failed elsewhere: {r.detail}"


def test_never_valid_is_caught_by_cover(tmp_path):
    """An engine that never sends passes the safety checks vacuously; its cover fails."""
    rtl = _mutant_rtl(tmp_path, "thresholding", "thresholding/thresholding.sv",
                      "else if (en) m_axis_tvalid <= v1;", "else if (en) m_axis_tvalid <= 1'b0;")
    params = engines()["thresholding"].formal.configs[0]
    (r,) = prove_config("thresholding", params, tmp_path / "work", rtl=rtl, checks=("cover",))
    assert r.status == "FAIL" and "cover not reached" in r.detail, r.detail


def test_cli_unknown_engine(capsys):
    assert main(["prove", "no_such_engine"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown engine 'no_such_engine'" in err[0]


def test_cli_table(tmp_path, capsys):
    assert main(["prove", "dwc", "--depth", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^dwc\s+IN_ELEMS=4 OUT_ELEMS=2 ELEM_BITS=1\s+protocol\s+4\s+PASS", out, re.M), out
    assert (tmp_path / "dwc_0" / "dwc_protocol" / "formal_top.sv").is_file()


@pytest.mark.slow
def test_every_check_every_engine(tmp_path):
    res = prove_engines([], tmp_path)
    bad = [f"{r.engine} {r.check}: {r.status} {r.detail}" for r in res if not r.passed]
    assert not bad, bad


@pytest.mark.slow
@pytest.mark.parametrize("module,i", _configs(), ids=lambda v: str(v))
def test_protocol_deep(module, i, tmp_path):
    params = engines()[module].formal.configs[i]
    (r,) = prove_config(module, params, tmp_path, depth=20, checks=("protocol",))
    assert r.status == "PASS", f"{module} {r.config}: {r.status} {r.detail}"
