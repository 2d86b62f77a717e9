"""Every hardware op has an RTL engine with a cocotb testbench, and every engine is used.

- op -> engine: each class in flow.ops.REGISTRY names an `rtl_module` that must be a key
  of flow.rtlgen.ENGINE_SOURCES and have a testbench entry in sim/engine_cases.TESTBENCHES
  (engine -> testbench module in sim/) whose file exists.
- engine -> op: each engine in ENGINE_SOURCES is the rtl_module of some op, or stream
  infrastructure (flow.rtlgen.INFRASTRUCTURE), or listed in ENGINES_AWAITING_OPS below.
- HLS: `hls_function_of` is the hook for the HLS stream-function library (hls_templates/);
  until that library exists the HLS check is skipped.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flow.ops import REGISTRY
from flow.rtlgen import ENGINE_SOURCES, INFRASTRUCTURE

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "sim"))

from engine_cases import TESTBENCHES  # noqa: E402

# engines in the library whose op class may still be missing (entries with an op are simply used)
ENGINES_AWAITING_OPS: frozenset = frozenset()


def hls_function_of(op_cls) -> str | None:
    """Hook: the HLS stream function implementing an op (None while no HLS library exists)."""
    return getattr(op_cls, "hls_function", None) or None


@pytest.mark.parametrize("op_type", sorted(REGISTRY))
def test_op_has_engine_and_testbench(op_type):
    cls = REGISTRY[op_type]
    module = cls.rtl_module
    assert module, f"{op_type} names no rtl_module"
    assert module in ENGINE_SOURCES, f"{op_type}: rtl_module {module!r} is not in flow.rtlgen.ENGINE_SOURCES"
    for src in ENGINE_SOURCES[module]:
        assert (REPO / "rtl" / src).is_file(), f"{module}: source rtl/{src} is missing"
    assert module in TESTBENCHES, f"{op_type}: engine {module!r} has no cocotb testbench (sim/engine_cases.TESTBENCHES)"
    assert (REPO / "sim" / f"{TESTBENCHES[module]}.py").is_file(), f"testbench sim/{TESTBENCHES[module]}.py missing"


@pytest.mark.parametrize("op_type", sorted(REGISTRY))
def test_op_has_hls_function(op_type):
    if not (REPO / "hls_templates").is_dir():
        pytest.skip("no HLS stream-function library (hls_templates/) yet: hls_function_of is the hook")
    assert hls_function_of(REGISTRY[op_type]), f"{op_type} names no hls_function"


def test_every_engine_is_used():
    used = {cls.rtl_module for cls in REGISTRY.values()}
    unused = set(ENGINE_SOURCES) - used - INFRASTRUCTURE - ENGINES_AWAITING_OPS
    assert not unused, f"engines used by no op and not infrastructure: {sorted(unused)}"
    unknown = ENGINES_AWAITING_OPS - set(ENGINE_SOURCES)
    assert not unknown, f"ENGINES_AWAITING_OPS names unknown engines {sorted(unknown)}"


def test_every_engine_has_testbench():
    missing = set(ENGINE_SOURCES) - set(TESTBENCHES)
    assert not missing, f"engines without a cocotb testbench: {sorted(missing)}"
    extra = set(TESTBENCHES) - set(ENGINE_SOURCES)
    assert not extra, f"testbench entries for unknown engines: {sorted(extra)}"
