"""The battery (tests/_battery.py): ordinary Brevitas networks of the kinds FINN's end-to-end tests
and notebooks compile, random weights and BatchNorm, exported to QONNX and built with the command
line. For each: the build's own verification (RTL simulation == numpy reference) has no mismatch,
`bnnflow run` gives the same outputs with the numpy and rtlsim engines, both equal PyTorch's
with exact accumulation (array_equal; exact float ties counted apart; the count against PyTorch's
own float32 accumulation is printed beside it), and the measured cycles per frame are within 2% of
the estimate. Default run: a small variant on a few inputs; slow tier: the full model on >= 50.

Models that bnnflow does not compile yet are strict xfails whose reason is today's refusal (a refusal
with another sentence, or any other failure, fails the test); when
support lands the test passes, the xfail turns into a failure, and the entry leaves REFUSED."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _battery import BATTERY, INPUTS
from _battery_run import PLAN, check

# `bnnflow build`'s sentence for each model it refuses today (benchmarks/battery_status.py)
REFUSED: dict = {
    # a per-channel QuantReLU scale before MaxPool, then a dense Conv: its inputs' per-channel steps cannot
    # stay integer in the accumulator (FINN's streamlining cannot move the per-channel Mul past a dense Conv either)
    "vgg_per_channel_relu": "layer 'Conv_1' reads a tensor with per-channel activation scales; those are supported "
                            "before depthwise convolutions, pooling and requantization.",
    # a 1x1 conv head averaged by AdaptiveAvgPool2d(1) with no quantizer: not supported yet (a GlobalAccPool of the
    # last layer's accumulators would be exact; a gap, not a design limit)
    "fully_conv_head": "node 'ReduceMean_0' has op type 'ReduceMean', which is not supported after the output layer "
                       "(a class-score layer followed only by per-class float ops; a fully convolutional head averaged "
                       "by a pool without a quantizer is not supported)",
}


class Refused(Exception):
    """A REFUSED model refused with the sentence recorded there (any other failure is a failure)."""


def _models():
    return [pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, raises=Refused, reason=REFUSED[name])]
                         if name in REFUSED else []) for name in BATTERY]


def _check(name: str, variant: str, tmp_path):
    o = check(name, variant, tmp_path)
    if name in REFUSED and not o.built and REFUSED[name] in (o.refusal or ""):
        raise Refused(o.refusal)
    return o


def _assert_exact(o) -> None:
    _target, n, n_rtl = PLAN[o.name][o.variant]
    assert o.built, f"bnnflow refused {o.name} ({o.variant}): {o.refusal}"
    rtl = o.report["verification"]["rtlsim"]
    assert (rtl["mismatches"], rtl["images"]) == (0, n_rtl), rtl
    assert [len(o.outputs[e]) for e in ("numpy", "rtlsim")] == [n, n_rtl]
    assert np.array_equal(o.outputs["numpy"][:n_rtl], o.outputs["rtlsim"])
    for engine in ("numpy", "rtlsim"):
        assert o.mismatches(engine) == 0, (engine, o.outputs[engine], o.expected)
    print(f"{o.name} ({o.variant}): numpy vs PyTorch with its float32 accumulation: "
          f"{o.mismatches('numpy', plain=True)}/{len(o.outputs['numpy'])} mismatches (reported, not asserted)")
    if o.ties is not None and o.ties.any():
        print(f"{o.name}: {int(o.ties.sum())} inputs with exactly tied PyTorch logits, "
              f"{o.tie_rows_not_lowest('numpy')} answered with another tied index than the lowest")
    est, meas = o.report["estimated_cycles_per_frame"], o.report["measured_cycles_per_frame"]
    assert abs(meas - est) <= 0.02 * est, (est, meas)


@pytest.mark.sim
@pytest.mark.parametrize("name", _models())
def test_small_variant_is_exact(name, tmp_path):
    _assert_exact(_check(name, "small", tmp_path))


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name", _models())
def test_full_model_is_exact(name, tmp_path):
    _assert_exact(_check(name, "full", tmp_path))


@pytest.mark.parametrize("name", sorted(BATTERY))
def test_battery_model_is_a_fair_test(name):
    """The fixture itself: BatchNorm with both signs of gamma, inputs in range of their type,
    and outputs that differ between inputs (not one class or decision for all)."""
    entry = BATTERY[name](seed=0, small=True)
    assert not entry.model.training
    gammas = [m.weight.detach() for m in entry.model.modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine]
    if gammas:  # (mlp_per_channel has none)
        gammas = torch.cat(gammas)
        assert (gammas < 0).any() and (gammas > 0).any()
    x = entry.inputs(32, 1)
    lo, hi, _scale = INPUTS[entry.input_type]
    assert x.shape == (32, *entry.shape) and x.min() >= lo and x.max() <= hi
    assert len(np.unique(x.reshape(32, -1), axis=0)) == 32
    expected, _ties, _allowed = entry.torch_outputs(x)
    assert len(np.unique(expected)) >= 2, expected


def test_comparison_counts_ties_apart():
    """The comparison with PyTorch: a wrong index counts; on an exact tie any tied index is
    accepted and one other than the lowest is counted separately; codes compare exactly."""
    from _battery_run import Outcome

    allowed = np.array([[True, False, False], [False, True, True], [True, False, False]])
    o = Outcome("x", "small", {}, expected=np.array([0, 1, 0]), ties=np.array([False, True, False]), allowed=allowed)
    o.outputs = {"numpy": np.array([0, 2, 0]), "rtlsim": np.array([0, 1, 2])}
    assert (o.mismatches("numpy"), o.tie_rows_not_lowest("numpy")) == (0, 1)
    assert o.mismatches("rtlsim") == 1
    o.outputs["numpy"] = np.array([[0, 1, 0]] * 3)  # logits where classes were due: all wrong
    assert o.mismatches("numpy") == 3
    codes = Outcome("y", "small", {}, expected=np.array([1, -1, 1]), ties=np.zeros(3, bool))
    codes.outputs = {"numpy": np.array([1, -1, -1])}
    assert codes.mismatches("numpy") == 1
