"""Formal proofs of the engines' stream protocol with SymbiYosys (`bnnflow prove`).

For each engine (flow.ir.registry.engines) and each configuration its op declares
(`HWOp.formal`, a flow.ops.base.Formal), a wrapper `formal_top` binds the checkers of
rtl/formal/axis_formal.sv around the engine's ports: assumptions on the environment (input
TVALID held until TREADY, TDATA stable while stalled, output TREADY free) and assertions
(output TVALID held, TDATA stable while stalled, no TVALID out of reset, no beat created and,
where the op declares a capacity, none lost). Ops with `equiv` get a second proof: with the
input beats of `testbench_case` as stimulus (under any valid/ready timing), every output
beat equals the op's numpy semantics. Each proof is a bounded model check (`mode bmc`,
engine smtbmc with z3) of `depth` cycles from reset; the memories hold the case's contents.
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flow.core import tools
from flow.core.assets import asset_path
from flow.core.errors import UserError
from flow.ir.registry import engines
from flow.ops.base import EngineCase, Formal

CHECKS = ("protocol", "semantics", "cover")  # bmc with free data, bmc on the stimulus, cover
TIMEOUT_S = 900


@dataclass(frozen=True)
class ProofResult:
    """One proof: engine, configuration label, check, BMC depth, PASS / FAIL / ERROR, seconds."""

    engine: str
    config: str
    check: str
    depth: int
    status: str
    seconds: float
    detail: str = ""  # the first failed assertion, or why the tools stopped

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def formal_engines() -> dict[str, type]:
    """Engine module -> owning op class, for the engines whose op declares formal proofs."""
    return {m: cls for m, cls in sorted(engines().items()) if getattr(cls, "formal", None) is not None}


def config_label(params: dict) -> str:
    """The configuration as `K=V` pairs, memory-file names and synthesis-only parameters left out."""
    return " ".join(f"{k}={v}" for k, v in params.items() if not isinstance(v, str))


def _sv_value(v) -> str:
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def _case_table(name: str, width: int, beats: list[int], cw: int) -> str:
    """A function returning beat k of a port (0 past the end)."""
    rows = "\n".join(f"            {cw}'d{k}: {name} = {width}'h{b:x};" for k, b in enumerate(beats))
    return (f"    function automatic logic [{width - 1}:0] {name}(input logic [{cw - 1}:0] k);\n"
            f"        case (k)\n{rows}\n            default: {name} = '0;\n        endcase\n    endfunction\n")


@dataclass(frozen=True)
class _Instance:
    """One engine instance to prove: its op, parameters, case (memories, stimulus) and bounds."""

    module: str
    cls: type
    params: dict
    case: EngineCase
    depth: int

    @property
    def cw(self) -> int:
        return max(4, math.ceil(math.log2(self.depth + 2)) + 1)

    def widths(self) -> tuple[list[int], list[int]]:
        return self.cls.port_widths(self.params)


def _ports_text(inst: _Instance) -> tuple[list[str], list[str]]:
    """formal_top's port list and the declarations of the engine's outputs."""
    ins, outs = inst.widths()
    ports, decls = ["input logic ap_clk"], ["    logic ap_rst_n;"]
    for p, w in zip(inst.cls.engine.inputs, ins):
        ports += [f"input logic [{w - 1}:0] {p}_tdata", f"input logic {p}_tvalid"]
        decls.append(f"    logic {p}_tready;")
    for p, w in zip(inst.cls.engine.outputs, outs):
        ports.append(f"input logic {p}_tready")
        decls += [f"    logic [{w - 1}:0] {p}_tdata;", f"    logic {p}_tvalid;"]
    return ports, decls


def _checkers_text(inst: _Instance, formal: Formal) -> list[str]:
    """The checker instances: one per port, one beat counter per (input, output) pair."""
    ins, outs = inst.widths()
    eng, p, case = inst.cls.engine, inst.params, inst.case
    cap = formal.capacity_of(p)
    lines = ["    axis_formal_reset u_reset (.ap_clk, .ap_rst_n);"]
    for side, ports, widths in (("source", eng.inputs, ins), ("sink", eng.outputs, outs)):
        for port, w in zip(ports, widths):
            lines.append(f"    axis_formal_{side} #(.W({w})) u_{port} (.ap_clk, .ap_rst_n, .tdata({port}_tdata), "
                         f".tvalid({port}_tvalid), .tready({port}_tready));")
    for i in eng.inputs:
        for o in eng.outputs:
            lines.append(f"    axis_formal_beats #(.IN_BPF({case.in_bpf_of(i)}), .OUT_BPF({case.out_bpf}), "
                         f".LEAD({formal.lead_of(i, p)}), .CAP({-1 if cap is None else cap}), .CW({inst.cw})) "
                         f"u_{i}_{o} (.ap_clk, .ap_rst_n, .in_fire({i}_tvalid & {i}_tready), "
                         f".out_fire({o}_tvalid & {o}_tready));")
    return lines


def _scoreboard_text(inst: _Instance) -> list[str]:
    """Stimulus assumptions on the inputs and expected-beat assertions on the outputs."""
    ins, outs = inst.widths()
    eng, case, cw, n = inst.cls.engine, inst.case, inst.cw, inst.depth + 1
    lines: list[str] = []
    for role, ports, widths, beats in (("stim", eng.inputs, ins, case.ins), ("expect", eng.outputs, outs, case.outs)):
        for port, w in zip(ports, widths):
            table = beats[port][:n]
            lines.append(_case_table(f"{role}_{port}", w, table, cw))
            lines.append(f"    logic [{cw - 1}:0] k_{port};")
            lines.append(f"    axis_formal_index #(.CW({cw})) n_{port} (.ap_clk, .ap_rst_n, "
                         f".fire({port}_tvalid & {port}_tready), .index(k_{port}));")
            rule = ("assume" if role == "stim" else "assert")
            lines.append(f"    always_comb if (ap_rst_n && {port}_tvalid && k_{port} < {cw}'d{len(table)}) "
                         f"{rule} ({port}_tdata == {role}_{port}(k_{port}));")
            if role == "stim":
                lines.append(f"    always_comb if (k_{port} >= {cw}'d{len(table)}) assume (!{port}_tvalid);")
    return lines


def wrapper_text(inst: _Instance, formal: Formal, semantics: bool) -> str:
    """formal_top: the engine, its checkers and (for the semantics check) the scoreboard."""
    ports, decls = _ports_text(inst)
    eng = inst.cls.engine
    params = ", ".join(f".{k}({_sv_value(v)})" for k, v in inst.params.items())
    conns = [".ap_clk", ".ap_rst_n"] + [f".{p}_{s}" for p in eng.inputs + eng.outputs for s in ("tdata", "tvalid", "tready")]
    body = decls + [f"    {inst.module} #({params}) dut ({', '.join(conns)});"] + _checkers_text(inst, formal)
    if semantics:
        body += _scoreboard_text(inst)
    return ("// generated by flow.sim.prove: one engine inside the stream checkers of axis_formal.sv\n"
            "module formal_top (\n    " + ",\n    ".join(ports) + "\n);\n" + "\n".join(body) + "\nendmodule\n")


def sby_text(sources: list[Path], memories: list[str], depth: int, mode: str = "bmc") -> str:
    names = [s.name for s in sources]
    reads = "\n".join(f"read -formal {n}" for n in names + ["formal_top.sv"])
    files = "\n".join([str(s) for s in sources] + memories + ["formal_top.sv"])
    return (f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\nsmtbmc z3\n\n"
            f"[script]\n{reads}\nprep -top formal_top\n\n[files]\n{files}\n")


def _instance(module: str, cls: type, params: dict, depth: int) -> _Instance:
    """The instance with a case long enough to feed `depth` cycles on every port."""
    formal = cls.formal
    first = cls.testbench_case(params, np.random.default_rng(formal.seed), 1)
    bpfs = [first.in_bpf_of(p) for p in cls.engine.inputs] + [first.out_bpf]
    frames = max(1, -(-(depth + 1) // max(1, min(bpfs))))
    return _Instance(module, cls, dict(params), cls.testbench_case(params, np.random.default_rng(formal.seed), frames),
                     depth)


def _sources(cls: type, rtl: Path) -> list[Path]:
    return [asset_path("rtl") / "formal" / "axis_formal.sv"] + [Path(rtl) / s for s in cls.engine.sources]


def _outcome(proc: subprocess.CompletedProcess) -> tuple[str, str]:
    """PASS / FAIL / ERROR and a one-line detail, from sby's exit code and log."""
    log = proc.stdout + proc.stderr
    status = {0: "PASS", 2: "FAIL"}.get(proc.returncode, "ERROR")
    failed = re.findall(r"failed assertion \S+ at (\S+)", log)
    if failed:
        return status, f"assertion at {failed[0]}"
    unreached = re.findall(r"[Uu]nreached cover statement at (\S+)", log)
    if unreached:
        return status, f"cover not reached at {unreached[0]}"
    reached = [int(s) for s in re.findall(r"Reached cover statement in step (\d+)", log)]
    if reached:
        return status, f"first beat out in step {min(reached)}, every cover by step {max(reached)}"
    if status == "ERROR":
        tail = [ln for ln in log.splitlines() if "ERROR" in ln or "rror" in ln][-2:]
        return status, " | ".join(t.strip() for t in tail) or f"sby exit code {proc.returncode}"
    return status, ""


def run_sby(work: Path, name: str, sby: str, timeout: int = TIMEOUT_S) -> tuple[str, str, float]:
    """Run `yowasp-sby -f <name>.sby` in `work`; (status, detail, seconds)."""
    cmd, env = tools.sby_cmd_env()
    for exe in [cmd[0], env["YOSYS"], env["SMTBMC"], str(work)]:
        if not tools.shell_safe(exe):
            raise UserError(f"SymbiYosys runs its tools through a shell and cannot use the path {exe!r}: "
                            f"use a path of letters, digits, '_', '-', '.', '/'")
    (work / f"{name}.sby").write_text(sby)
    t0 = time.monotonic()
    try:
        proc = subprocess.run([*cmd, "-f", f"{name}.sby"], cwd=work, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return "ERROR", f"timed out after {timeout} s", time.monotonic() - t0
    status, detail = _outcome(proc)
    return status, detail, time.monotonic() - t0


def prove_config(module: str, params: dict, work: Path, depth: int | None = None, rtl: Path | None = None,
                 checks: tuple[str, ...] = CHECKS) -> list[ProofResult]:
    """Prove one engine configuration; `rtl`: the folder its sources come from (default rtl/)."""
    cls = engines()[module]
    formal: Formal = cls.formal
    depth = depth or formal.depth
    inst = _instance(module, cls, params, depth)
    rtl = Path(rtl) if rtl is not None else asset_path("rtl")
    out = []
    for check in checks:
        if check == "semantics" and not formal.equiv:
            continue
        d = Path(work) / f"{module}_{check}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for fname, text in inst.case.memories.items():
            (d / fname).write_text(text)
        (d / "formal_top.sv").write_text(wrapper_text(inst, formal, check == "semantics"))
        sby = sby_text(_sources(cls, rtl), sorted(inst.case.memories), depth, "cover" if check == "cover" else "bmc")
        status, detail, secs = run_sby(d, "proof", sby)
        out.append(ProofResult(module, config_label(params), check, depth, status, round(secs, 1), detail))
    return out


def select(names: list[str]) -> dict[str, type]:
    """The engines to prove (all with formal proofs when `names` is empty); UserError names an unknown one."""
    known = formal_engines()
    for n in names:
        if n not in known:
            raise UserError(f"unknown engine {n!r}; engines with formal proofs: {', '.join(known)}")
    return {n: known[n] for n in (list(dict.fromkeys(names)) or known)}


def prove_engines(names: list[str], work: Path, depth: int | None = None, checks: tuple[str, ...] = CHECKS,
                  on_result=None) -> list[ProofResult]:
    """Every check of every configuration of the named engines (all when empty), in `work`."""
    out: list[ProofResult] = []
    for module, cls in select(names).items():
        for i, params in enumerate(cls.formal.configs):
            for r in prove_config(module, params, Path(work) / f"{module}_{i}", depth, checks=checks):
                out.append(r)
                if on_result is not None:
                    on_result(r)
    return out


def format_results(results: list[ProofResult]) -> str:
    """A plain-text table: engine, configuration, check, depth, result, seconds, detail."""
    head = ("engine", "config", "check", "depth", "result", "s", "detail")
    rows = [head] + [(r.engine, r.config, r.check, str(r.depth), r.status, f"{r.seconds:.1f}", r.detail)
                     for r in results]
    widths = [max(len(row[k]) for row in rows) for k in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
