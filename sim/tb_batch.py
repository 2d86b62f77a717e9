"""cocotb testbench for a batch of engine instances (see sim/batch.py).

Every instance runs the same phases, independently of the others: unstalled (exact
results and the steady-state cycles per frame of the engine's formula), then random valid
gaps and ready stalls. Each phase streams whole frames and compares every output port
beat by beat with flow.ops.semantics, so a lost, duplicated or reordered beat fails."""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from cocotb_lib import StreamSink, StreamSource, check_frames, steady_cycles_per_frame
from engine_cases import make_case

PHASES = ((0.0, 0.0), (0.3, 0.3), (0.0, 0.7), (0.7, 0.0), (0.5, 0.5))
MAX_IDLE = 20_000


class Instance:
    def __init__(self, n: int, cfg: dict):
        self.n, self.cfg = n, cfg
        self.label = f"u{n} {cfg['engine']} {cfg.get('name', '')} {cfg['params']}"
        self.case = make_case(cfg["engine"], cfg["params"], cfg["seed"], cfg["frames"])
        self.phase = -1
        self.beats = 0
        self.cpf = None
        self.idle = 0
        self.quiet = False
        self.next_phase()

    @property
    def finished(self) -> bool:
        return self.phase >= len(PHASES)

    def next_phase(self) -> None:
        self.phase += 1
        if self.finished:
            return
        gap, stall = PHASES[self.phase]
        seed = self.cfg["seed"] * 100 + self.phase * 10
        self.srcs = [StreamSource(b, gap, seed + k, port=f"i{self.n}_{pfx}")
                     for k, (pfx, b) in enumerate(self.case.ins.items())]
        self.sinks = [StreamSink(len(b), stall, seed + 5 + k, port=f"i{self.n}_{pfx}")
                      for k, (pfx, b) in enumerate(self.case.outs.items())]
        self.idle = 0

    def drive(self, dut) -> None:
        if self.finished:
            if not self.quiet:          # release the ports once: no phantom beat
                for s in self.srcs:
                    s._handles(dut)[1].value = 0
                for s in self.sinks:
                    s._handles(dut)[2].value = 0
                self.quiet = True
            return
        for s in self.srcs:
            s.drive(dut)
        for s in self.sinks:
            s.drive(dut)

    def sample(self, dut, cycle: int) -> None:
        if self.finished:
            return
        before = sum(len(s.beats) for s in self.sinks) + sum(s.i for s in self.srcs)
        for s in self.srcs:
            s.sample(dut, cycle)
        for s in self.sinks:
            s.sample(dut, cycle)
        after = sum(len(s.beats) for s in self.sinks) + sum(s.i for s in self.srcs)
        self.idle = 0 if after != before else self.idle + 1
        assert self.idle < MAX_IDLE, (f"{self.label}: stalled in phase {PHASES[self.phase]}: "
                                      f"{[s.i for s in self.srcs]} beats in, {[len(s.beats) for s in self.sinks]} out")
        if all(s.done for s in self.sinks) and all(s.done for s in self.srcs):
            for sink, (pfx, exp) in zip(self.sinks, self.case.outs.items()):
                check_frames(sink.beats, exp, f"{self.label} port {pfx} phase {PHASES[self.phase]}")
                self.beats += len(exp)
            self.beats += sum(len(b) for b in self.case.ins.values())
            if self.phase == 0:
                self.cpf = steady_cycles_per_frame(self.sinks[0].cycles, self.case.out_bpf)
                ideal, tol = self.case.ideal_cpf, self.cfg.get("cpf_tolerance", 0.02)
                assert abs(self.cpf - ideal) <= tol * ideal, (
                    f"{self.label}: {self.cpf} cycles/frame in steady state, formula gives {ideal}")
            self.next_phase()


@cocotb.test()
async def batch_check(dut):
    with open(os.environ["BNNFLOW_BATCH"]) as f:
        configs = json.load(f)
    insts = [Instance(n, cfg) for n, cfg in enumerate(configs)]
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    dut.ap_rst_n.value = 0
    for inst in insts:
        for s in inst.srcs:
            s._handles(dut)[1].value = 0
        for s in inst.sinks:
            s._handles(dut)[2].value = 0
    for _ in range(3):
        await RisingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1

    cycle = 0
    while not all(i.finished for i in insts):
        await FallingEdge(dut.ap_clk)
        for inst in insts:
            inst.drive(dut)
        await ReadOnly()
        for inst in insts:
            inst.sample(dut, cycle)
        cycle += 1
    await FallingEdge(dut.ap_clk)
    stats = {"configs": len(insts), "beats": sum(i.beats for i in insts), "cycles": cycle,
             "cycles_per_frame": {i.label: [i.cpf, i.case.ideal_cpf] for i in insts}}
    for inst in insts:
        dut._log.info("%s: %.2f cycles/frame (formula %d)", inst.label, inst.cpf, inst.case.ideal_cpf)
    with open(os.environ["BNNFLOW_BATCH_STATS"], "w") as f:
        json.dump(stats, f)
