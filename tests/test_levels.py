"""Logic levels of a yosys JSON netlist (flow.boards.levels) on netlists written by hand:
the count restarts at a register, carry blocks count once each, inverters not at all."""
from __future__ import annotations

from flow.boards.levels import logic_levels


def _cell(typ: str, ins: dict, outs: dict) -> dict:
    dirs = {**{p: "input" for p in ins}, **{p: "output" for p in outs}}
    return {"type": typ, "port_directions": dirs, "connections": {**ins, **outs}}


def _netlist(cells: dict) -> dict:
    return {"modules": {"top": {"cells": cells}}}


def test_levels_restart_at_registers():
    # in(2) -> LUT -> LUT -> FF -> LUT -> out: two levels, not three
    cells = {"a": _cell("LUT2", {"I0": [2], "I1": ["0"]}, {"O": [3]}),
             "b": _cell("LUT6", {"I0": [3], "I1": [2]}, {"O": [4]}),
             "r": _cell("FDRE", {"D": [4], "C": [9]}, {"Q": [5]}),
             "c": _cell("LUT3", {"I0": [5]}, {"O": [6]})}
    assert logic_levels(_netlist(cells), "top") == 2


def test_carry_blocks_count_once_each_and_inverters_not_at_all():
    cells = {"l": _cell("LUT4", {"I0": [2]}, {"O": [3]}),
             "n": _cell("INV", {"I": [3]}, {"O": [4]}),
             "c0": _cell("CARRY4", {"S": [4, 4, 4, 4], "CI": ["0"]}, {"O": [10, 11, 12, 13], "CO": [14, 15, 16, 17]}),
             "c1": _cell("CARRY4", {"S": [2, 2, 2, 2], "CI": [17]}, {"O": [20, 21, 22, 23], "CO": [24, 25, 26, 27]}),
             "m": _cell("MUXF7", {"I0": [23], "I1": [2], "S": [2]}, {"O": [30]})}
    assert logic_levels(_netlist(cells), "top") == 4  # LUT4 -> CARRY4 -> CARRY4 -> MUXF7


def test_a_combinational_loop_ends():
    cells = {"a": _cell("LUT2", {"I0": [3]}, {"O": [2]}), "b": _cell("LUT2", {"I0": [2]}, {"O": [3]})}
    assert logic_levels(_netlist(cells), "top") in (1, 2)
