"""Every hardware op has an RTL engine with a cocotb testbench and at least one configuration,
and an HLS stream function; everything is read from the op registry (flow.ir.registry).

- op -> engine: each op class names an `engine` whose sources exist under rtl/ and whose
  testbench module exists in sim/; each engine has one owning op (`engines()`).
- configurations: `random_params` gives a legal configuration whose `testbench_case` drives
  every declared port with whole frames and whose `port_widths` match the beats it packs.
- HLS: each op names an `hls` function that its header in hls_templates/ defines, and an
  `hls_stage()` of its own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flow.codegen.hlsgen import library_functions
from flow.ir.registry import engines, registry

REPO = Path(__file__).resolve().parent.parent
OPS = sorted(registry())
ENGINES = sorted(engines())


@pytest.mark.parametrize("op_type", OPS)
def test_op_has_engine_and_testbench(op_type):
    cls = registry()[op_type]
    eng = cls.engine
    assert eng is not None and eng.module, f"{op_type} declares no engine"
    assert eng.sources, f"{op_type}: engine {eng.module} lists no sources"
    for src in eng.sources:
        assert (REPO / "rtl" / src).is_file(), f"{eng.module}: source rtl/{src} is missing"
    assert (REPO / "sim" / f"{eng.testbench}.py").is_file(), f"{eng.module}: testbench sim/{eng.testbench}.py missing"
    assert engines()[eng.module] is cls, f"engine {eng.module} is owned by {engines()[eng.module].op_type} too"


def test_every_engine_has_one_owner():
    modules = [cls.engine.module for cls in registry().values()]
    assert sorted(modules) == ENGINES, f"engines shared by several ops: {modules}"


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_has_a_configuration(engine):
    """A random configuration of each engine gives a case on every port, of whole frames,
    whose beats fit the port widths."""
    cls = engines()[engine]
    rng = np.random.default_rng(sum(map(ord, engine)))
    for _ in range(5):
        params = cls.random_params(rng)
        case = cls.testbench_case(params, rng, 3)
        assert list(case.ins) == list(cls.engine.inputs), f"{engine}: case inputs {list(case.ins)}"
        assert list(case.outs) == list(cls.engine.outputs), f"{engine}: case outputs {list(case.outs)}"
        win, wout = cls.port_widths(params)
        assert len(win) == len(case.ins) and len(wout) == len(case.outs)
        for beats, width in [*zip(case.ins.values(), win), *zip(case.outs.values(), wout)]:
            assert beats and all(0 <= b < (1 << width) for b in beats), f"{engine}: a beat wider than {width} bits"
        assert all(len(b) == 3 * case.in_bpf_of(p) for p, b in case.ins.items()), f"{engine}: inputs are not 3 frames"
        assert all(len(b) == 3 * case.out_bpf for b in case.outs.values()), f"{engine}: outputs are not 3 frames"
        assert case.ideal_cpf >= 1


@pytest.mark.parametrize("op_type", OPS)
def test_op_has_hls_function(op_type):
    cls = registry()[op_type]
    assert cls.hls is not None and cls.hls.function, f"{op_type} declares no hls function"
    assert cls.hls.function in library_functions(), f"{op_type}: {cls.hls.function!r} is not defined in hls_templates/"
    assert "hls_stage" in vars(cls) or "hls_config" in vars(cls), f"{op_type} has no hls_stage() or hls_config() of its own"
