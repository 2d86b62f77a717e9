"""Logic levels of a synthesised netlist: the most combinational cells (LUTs, carry blocks,
wide-function muxes) on one path from a register, memory, DSP or port to the next, counted
as Vivado counts its logic levels, on the netlist yosys wrote (`write_json`, flattened).

A carry block (CARRY4/CARRY8, ECP5 CCU2C) counts once per block it passes through, the
path into its carry input included; LUT RAMs and shift registers end a path like a register."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

# combinational cell types after synth_xilinx / synth_ecp5 (upper case, without a leading '\\' or '$_')
COMBINATIONAL = ("LUT", "CARRY", "MUXF", "CCU2", "PFUMX", "L6MUX", "INV")


def _is_combinational(cell_type: str) -> bool:
    return cell_type.upper().lstrip("\\$_").startswith(COMBINATIONAL)


def logic_levels(netlist: dict, top: str, counted: Callable[[str], bool] | None = None) -> int:
    """Combinational cells on the longest path of module `top` in a yosys JSON netlist. INV
    cells (the inverters yosys leaves for Vivado to absorb) do not count as a level; with
    `counted` (cell type -> bool), only the cells it accepts count (e.g. LUTs alone), the
    paths still running through every combinational cell."""
    cells = netlist["modules"][top]["cells"]
    driver: dict[int, str] = {}
    inputs: dict[str, list[int]] = {}
    for name, cell in cells.items():
        if not _is_combinational(cell["type"]):
            continue
        dirs = cell.get("port_directions", {})
        inputs[name] = []
        for port, bits in cell["connections"].items():
            nets = [b for b in bits if isinstance(b, int)]  # constants are strings ("0", "1", "x")
            if dirs.get(port) == "output":
                driver.update((b, name) for b in nets)
            else:
                inputs[name].extend(nets)
    depth: dict[str, int] = {}
    for start in inputs:
        _depth_from(start, cells, inputs, driver, depth, counted)
    return max(depth.values(), default=0)


def _depth_from(start: str, cells: dict, inputs: dict, driver: dict, depth: dict,
                counted: Callable[[str], bool] | None) -> None:
    """depth[cell] for `start` and every cell behind it (iterative: carry chains are long)."""
    stack, open_ = [start], set()
    while stack:
        name = stack[-1]
        if name in depth:
            stack.pop()
            continue
        behind = {driver[b] for b in inputs[name] if b in driver}
        todo = [c for c in behind if c not in depth and c not in open_]
        if todo and name not in open_:
            open_.add(name)
            stack.extend(todo)
            continue
        typ = cells[name]["type"]
        own = int(counted(typ)) if counted is not None else 0 if typ.upper().lstrip("\\$_") == "INV" else 1
        depth[name] = own + max((depth.get(c, 0) for c in behind), default=0)  # a loop counts once
        open_.discard(name)
        stack.pop()


def levels_of_file(path: Path, top: str) -> int:
    """logic_levels of the netlist yosys wrote to `path`."""
    return logic_levels(json.loads(Path(path).read_text()), top)
