"""Deterministic stimulus + expected output for each engine, from the op that owns it.

Both sides call `make_case` with the same arguments: the pytest side to write the memory
files before the simulator starts, the cocotb testbench to drive and score the design.
Everything engine-specific comes from the op contract (flow.ops.base): the registry maps an
engine module to its op class (flow.ir.registry.engines), whose `engine` names the sources,
ports and testbench and whose classmethods give the port widths and the case."""
from __future__ import annotations

import numpy as np

from flow.ir.registry import engines
from flow.ops.base import EngineCase

Case = EngineCase


def op_of(engine: str) -> type:
    """The op class owning an engine module."""
    cls = engines().get(engine)
    if cls is None:
        raise ValueError(f"unknown engine {engine!r}")
    return cls


def sources(engine: str) -> list[str]:
    """The engine's library files (relative to rtl/, in compile order)."""
    return list(op_of(engine).engine.sources)


def testbench(engine: str) -> str:
    """The cocotb testbench module (in sim/) that covers the engine."""
    return op_of(engine).engine.testbench


def make_case(engine: str, p: dict, seed: int, frames: int) -> EngineCase:
    return op_of(engine).testbench_case(p, np.random.default_rng(seed), frames)


def port_prefixes(engine: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input port prefixes, output port prefixes) of an engine."""
    eng = op_of(engine).engine
    return eng.inputs, eng.outputs


def port_widths(engine: str, p: dict) -> tuple[list[int], list[int]]:
    """Stream widths (input ports, output ports) of an engine instance."""
    return op_of(engine).port_widths(p)
