"""cocotb testbench shared by all engines: the case (engine, parameters, seed) comes
from the BNNFLOW_TB_CFG environment variable (JSON), the expected beats from
flow.ops.semantics through engine_cases.make_case."""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock

from cocotb_lib import StreamSink, StreamSource, check_frames, reset, run_streams, steady_cycles_per_frame
from engine_cases import make_case


@cocotb.test()
async def stream_check(dut):
    cfg = json.loads(os.environ["BNNFLOW_TB_CFG"])
    case = make_case(cfg["engine"], cfg["params"], cfg["seed"], cfg["frames"])
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    await reset(dut)

    # 1) never stalled: exact results and the ideal rate
    src, sink = StreamSource(case.in_beats), StreamSink(len(case.out_beats))
    await run_streams(dut, src, sink)
    check_frames(sink.beats, case.out_beats, "unstalled")
    cpf = steady_cycles_per_frame(sink.cycles, case.out_bpf)
    dut._log.info("steady state %.2f cycles/frame (ideal %d), latency %d cycles", cpf, case.ideal_cpf,
                  sink.cycles[case.out_bpf - 1] - src.first_cycle + 1)
    assert abs(cpf - case.ideal_cpf) <= 0.02 * case.ideal_cpf, f"{cpf} cycles/frame, expected {case.ideal_cpf}"

    # 2) random valid gaps and ready stalls: nothing lost, duplicated or reordered
    for k, (gap, stall) in enumerate([(0.3, 0.3), (0.0, 0.7), (0.7, 0.0)]):
        src = StreamSource(case.in_beats, gap_prob=gap, seed=cfg["seed"] + 10 + k)
        sink = StreamSink(len(case.out_beats), stall_prob=stall, seed=cfg["seed"] + 20 + k)
        await run_streams(dut, src, sink)
        check_frames(sink.beats, case.out_beats, f"stalled gap={gap} stall={stall}")
