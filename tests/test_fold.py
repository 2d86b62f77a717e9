"""Folding: MVU lanes for a cycle target, whole-graph folding for a target, and the
fastest folding that fits a LUT budget."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _models import brevitas_tfc, export
from flow.cli import main
from flow.core.errors import UserError
from flow.passes.fold import (candidate_targets, divisors, fold_for_lut_budget, fold_for_target,
                       insert_width_converters, mvu_folding, total_luts)


@pytest.fixture(scope="module")
def tfc_onnx(tmp_path_factory):
    return export(brevitas_tfc(seed=5), tmp_path_factory.mktemp("fold") / "tfc.onnx")


@pytest.fixture(scope="module")
def tfc_graph(tfc_onnx):
    from flow.frontend.load import load_qonnx
    from flow.passes.streamline import streamline

    return streamline(load_qonnx(tfc_onnx), None, model_name="tfc")


@pytest.mark.parametrize("mw,mh,target,vectors", [(784, 64, 256, 1), (64, 64, 1, 1), (64, 10, 7, 1),
                                                   (27, 64, 3000, 900), (600, 40, 1000, 1)])
def test_mvu_folding_uses_the_fewest_lanes_that_meet_the_target(mw, mh, target, vectors):
    pe, simd = mvu_folding(mw, mh, target, vectors)
    assert mh % pe == 0 and mw % simd == 0
    assert vectors * (mh // pe) * (mw // simd) <= target
    fewest = min(p * s for p in divisors(mh) for s in divisors(mw) if vectors * (mh // p) * (mw // s) <= target)
    assert pe * simd == fewest


def test_mvu_folding_of_an_unreachable_target_is_fully_parallel():
    assert mvu_folding(64, 32, 0) == (32, 64)
    assert mvu_folding(27, 64, 10, vectors=900, simd_choices=[1, 3]) == (64, 3)


@pytest.mark.parametrize("target", [1, 16, 64, 256, 1024, 1 << 20])
def test_fold_for_target_meets_the_target(tfc_graph, target):
    before = tfc_graph.fingerprint()
    g = fold_for_target(tfc_graph, target)
    ops = g.ops()
    for op in ops:
        op.check()
    mvus = [o for o in ops if o.paces]
    assert len(mvus) == 4
    assert max(o.cycles() for o in mvus) <= max(target, 1)
    assert tfc_graph.fingerprint() == before  # the input graph is not changed
    for op in insert_width_converters(g).ops():
        assert op.cycles() <= max(target, max(o.cycles() for o in mvus))


def test_fold_for_target_refuses_a_zero_target(tfc_graph):
    with pytest.raises(UserError, match="at least 1"):
        fold_for_target(tfc_graph, 0)


def test_candidate_targets(tfc_graph):
    c = candidate_targets(tfc_graph)
    assert c == sorted(set(c)) and c[0] == 1
    assert {64, 256, 1024, 196, 784 * 64} <= set(c)
    assert c[-1] == 784 * 64  # the most folded first layer


def test_more_folding_needs_fewer_luts(tfc_graph):
    luts = [total_luts(fold_for_target(tfc_graph, t)) for t in (1, 16, 256, 4096)]
    assert luts == sorted(luts, reverse=True) and luts[0] > 10 * luts[-1]


@pytest.mark.parametrize("budget", [400, 1500, 5000, 20000])
def test_lut_budget_gives_the_fastest_fitting_design(tfc_graph, budget):
    g, target = fold_for_lut_budget(tfc_graph, budget)
    assert total_luts(g) <= budget
    faster = [t for t in candidate_targets(tfc_graph) if t < target]
    assert all(total_luts(fold_for_target(tfc_graph, t)) > budget for t in faster)
    assert max(o.cycles() for o in g.ops() if o.paces) <= target


def test_lut_budget_of_a_huge_device_is_fully_parallel(tfc_graph):
    g, target = fold_for_lut_budget(tfc_graph, 10**9)
    assert target == 1
    assert max(o.cycles() for o in g.ops() if o.paces) == 1


def test_lut_budget_too_small_is_refused_with_need_and_budget(tfc_graph):
    least = min(total_luts(fold_for_target(tfc_graph, t)) for t in candidate_targets(tfc_graph))
    with pytest.raises(UserError) as err:
        fold_for_lut_budget(tfc_graph, least - 1)
    msg = str(err.value)
    assert f"needs {least} LUTs" in msg and f"--lut-budget of {least - 1}" in msg
    assert fold_for_lut_budget(tfc_graph, least)[0] is not None


def test_cli_refuses_a_budget_below_the_smallest_design(tfc_onnx, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build", str(tfc_onnx), "--out", str(out), "--quiet", "--lut-budget", "50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bnnflow: error: even the most folded design needs") and "--lut-budget of 50" in err
    assert len(err.strip().splitlines()) == 1
    assert not (out / "report.json").exists()


def test_cli_lut_budget_excludes_other_folding_goals(tfc_onnx, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["build", str(tfc_onnx), "--out", str(tmp_path / "o"), "--lut-budget", "5000", "--target-cycles", "64"])
    assert exc.value.code == 2


def test_build_config_refuses_two_folding_goals(tmp_path):
    from flow.pipeline.build import BuildConfig, build

    with pytest.raises(UserError, match="choose one folding goal"):
        build(BuildConfig(model="x.onnx", out=tmp_path, lut_budget=5000, target_cycles=64))


@pytest.mark.sim
def test_build_with_a_lut_budget(tfc_onnx, tmp_path):
    out = tmp_path / "out"
    assert main(["build", str(tfc_onnx), "--out", str(out), "--quiet", "--lut-budget", "3000",
                 "--verify-images", "5"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete" and report["config"]["lut_budget"] == 3000
    assert report["resources"]["LUT"] <= 3000
    assert report["verification"]["rtlsim"]["mismatches"] == 0


@pytest.fixture(scope="module")
def fx_graph(tmp_path_factory):
    """fx-mlp untrained: its input quantizer has 255 thresholds, the same for all 784 channels."""
    from _models import randomize_norms

    from flow.frontend.export import export_qonnx
    from flow.frontend.load import load_qonnx
    from flow.passes.streamline import streamline
    from flow.train.zoo import build_model

    onnx = export_qonnx(randomize_norms(build_model("fx-mlp", seed=0), 1),
                        tmp_path_factory.mktemp("fx") / "fx.onnx", input_shape=(1, 1, 28, 28))
    return streamline(load_qonnx(onnx))


def _first_thresholding(graph):
    return next(o for o in graph.ops() if o.op_type == "Thresholding")


def test_a_costly_op_takes_its_fewest_lanes_and_a_width_converter(fx_graph):
    """At the MVU's SIMD (196) the 255-threshold quantizer would cost over 100x its one-lane
    form plus the converter; it takes one lane, and the converter is inserted."""
    g = fold_for_target(fx_graph, 1024)
    thr, mvu = _first_thresholding(g), next(o for o in g.ops() if o.paces)
    assert (thr.attr("PE"), mvu.attr("SIMD")) == (1, 196)
    assert thr.cycles() <= 1024
    kinds = [o.op_type for o in insert_width_converters(g).ops()]
    assert kinds[:3] == ["Thresholding", "DataWidthConverter", "IntMVU"]
    one = thr.resources()["LUT"]
    thr.set_attr("PE", 196)
    assert thr.resources()["LUT"] > 100 * one


def test_a_cheap_op_keeps_its_consumers_lanes(tfc_graph):
    """The binary input quantizer costs little at the MVU's lanes: no width converter."""
    g = fold_for_target(tfc_graph, 1024)
    thr, mvu = _first_thresholding(g), next(o for o in g.ops() if o.paces)
    assert thr.attr("PE") == mvu.attr("SIMD") > 1
    assert "DataWidthConverter" not in [o.op_type for o in insert_width_converters(g).ops()][:2]


def test_shared_thresholds_are_stored_once(fx_graph):
    """Thresholds equal over all channels: one memory word (SHARED), whatever the folding;
    per-channel thresholds keep a word per fold."""
    from flow.ops.packing import thresh_words

    for target in (1024, 4):
        thr = _first_thresholding(fold_for_target(fx_graph, target))
        if thr.attr("PE") == thr.attr("NumChannels"):
            continue
        assert thr.rtl_params()["SHARED"] == 1
        assert len(thr.memories()["THRESH_FILE"]["words"]) == 1
        assert thr.attr("PE") > 1 or thr.resources()["LUT"] < 2000  # no 784-word memory
        table = thr.stored_thresholds()
        assert thr.memories()["THRESH_FILE"]["words"] == thresh_words(table[:thr.attr("PE")], thr.attr("PE"),
                                                                      thr.threshold_bits())
    g = fx_graph.copy()
    per_channel = _first_thresholding(g)
    per_channel.set_attr("PE", 1)
    g.set_initializer(f"{per_channel.name}_thresholds", per_channel.param("thresholds") + np.arange(784)[:, None] % 2)
    assert per_channel.rtl_params()["SHARED"] == 0
    assert len(per_channel.memories()["THRESH_FILE"]["words"]) == 784
