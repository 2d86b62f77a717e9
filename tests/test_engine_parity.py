"""Every hardware op has an RTL engine with a cocotb testbench, and every engine is used.

- op -> engine: each class in flow.ops.REGISTRY names an `rtl_module` that must be a key
  of flow.codegen.rtlgen.ENGINE_SOURCES and have a testbench entry in sim/engine_cases.TESTBENCHES
  (engine -> testbench module in sim/) whose file exists.
- engine -> op: each engine in ENGINE_SOURCES is the rtl_module of some op, or stream
  infrastructure (flow.codegen.rtlgen.INFRASTRUCTURE), or listed in ENGINES_AWAITING_OPS below.
- HLS: each op names an `hls_function` that the stream library (hls_templates/) defines,
  and an `hls_stage()` next to its `rtl_stage()`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flow.ops import REGISTRY
from flow.codegen.rtlgen import ENGINE_SOURCES, INFRASTRUCTURE

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

from engine_cases import TESTBENCHES  # noqa: E402

# engines in the library whose op class may still be missing (entries with an op are simply used)
ENGINES_AWAITING_OPS: frozenset = frozenset()


def hls_function_of(op_cls) -> str | None:
    """The HLS stream function implementing an op."""
    if getattr(op_cls, "hls", None) is not None:
        return op_cls.hls.function
    return getattr(op_cls, "hls_function", None) or None


def rtl_module_of(op_cls) -> str | None:
    """The RTL engine module implementing an op."""
    if getattr(op_cls, "engine", None) is not None:
        return op_cls.engine.module
    return getattr(op_cls, "rtl_module", None) or None


@pytest.mark.parametrize("op_type", sorted(REGISTRY))
def test_op_has_engine_and_testbench(op_type):
    cls = REGISTRY[op_type]
    module = rtl_module_of(cls)
    assert module, f"{op_type} names no rtl_module"
    assert module in ENGINE_SOURCES, f"{op_type}: rtl_module {module!r} is not in flow.codegen.rtlgen.ENGINE_SOURCES"
    for src in ENGINE_SOURCES[module]:
        assert (REPO / "rtl" / src).is_file(), f"{module}: source rtl/{src} is missing"
    assert module in TESTBENCHES, f"{op_type}: engine {module!r} has no cocotb testbench (sim/engine_cases.TESTBENCHES)"
    assert (REPO / "sim" / f"{TESTBENCHES[module]}.py").is_file(), f"testbench sim/{TESTBENCHES[module]}.py missing"


@pytest.mark.parametrize("op_type", sorted(REGISTRY))
def test_op_has_hls_function(op_type):
    from flow.codegen.hlsgen import library_functions

    cls = REGISTRY[op_type]
    fn = hls_function_of(cls)
    assert fn, f"{op_type} names no hls_function"
    assert fn in library_functions(), f"{op_type}: hls_function {fn!r} is not defined in hls_templates/"
    assert "hls_stage" in vars(cls) or "hls_config" in vars(cls), f"{op_type} has no hls_stage() next to its rtl_stage()"


def test_every_engine_is_used():
    used = {rtl_module_of(cls) for cls in REGISTRY.values()}
    unused = set(ENGINE_SOURCES) - used - INFRASTRUCTURE - ENGINES_AWAITING_OPS
    assert not unused, f"engines used by no op and not infrastructure: {sorted(unused)}"
    unknown = ENGINES_AWAITING_OPS - set(ENGINE_SOURCES)
    assert not unknown, f"ENGINES_AWAITING_OPS names unknown engines {sorted(unknown)}"


def test_every_engine_has_testbench():
    missing = set(ENGINE_SOURCES) - set(TESTBENCHES)
    assert not missing, f"engines without a cocotb testbench: {sorted(missing)}"
    extra = set(TESTBENCHES) - set(ENGINE_SOURCES)
    assert not extra, f"testbench entries for unknown engines: {sorted(extra)}"
