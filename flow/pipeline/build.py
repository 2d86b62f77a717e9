"""The build pipeline: a list of typed steps (flow.pipeline.steps.STEPS) over a BuildConfig.

Each graph step saves `steps/NN_<step>.onnx` after its invariant check passed. A build
directory is marked complete (report.json with "status": "complete") only after every step
has passed; a failing build leaves no complete marker behind. `to_step` stops after a step
(report.json: "status": "stopped", "stopped_after": the step); `from_step` resumes at one.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from flow.boards.catalog import load_board, verification_gate
from flow.boards.ecp5_pll import check_clock
from flow.core import builddir
from flow.core.builddir import save_graph
from flow.core.errors import UserError
from flow.ir.graph import DataflowGraph, load_dataflow
from flow.pipeline.report import write_stopped_report
from flow.pipeline.state import BuildConfig, BuildState, Step, StepContext, config_dict
from flow.pipeline.steps import STEPS, run_in_memory, step_names, torch_model_for, with_step
from flow.sim.simulate import generate_rtl
from flow.sim.verify import Verification, load_record, record_mismatch, source_digests

__all__ = ["BuildConfig", "BuildState", "Step", "StepContext", "STEPS", "build", "config_dict", "load_build",
           "read_report", "run_in_memory", "stale_reason", "with_step"]

# written by every run of the report step: removed first, so no old build stays marked complete
RUN_OUTPUTS = ("report.json", "report.html", "dataflow.onnx", "folding_config.json")
_STEP_FILE = re.compile(r"^(\d\d)_([a-z_]+)\.onnx$")


def saving_steps(steps=STEPS) -> set[int]:
    """The 1-based numbers of the steps that save their graph."""
    return {i for i, s in enumerate(steps, start=1) if s.saves_graph}


def saved_steps(out: Path, steps=STEPS) -> dict[int, Path]:
    """{1-based step number: steps/NN_<step>.onnx} of the graphs a build saved; any other
    file in steps/ is not the build's and is ignored."""
    found = {}
    folder = Path(out) / "steps"
    saving = saving_steps(steps)
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        m = _STEP_FILE.match(p.name)
        if m and int(m.group(1)) in saving and steps[int(m.group(1)) - 1].name == m.group(2) and p.is_file():
            found[int(m.group(1))] = p
    return found


def _load_step_graph(path: Path, where: str) -> BuildState:
    try:
        if path.name.startswith("01_"):
            qonnx = ModelWrapper(str(path))
            qonnx.weight_quant = json.loads(qonnx.get_metadata_prop("bnnflow.weight_quant") or "{}")
            return BuildState(qonnx=qonnx)
        return BuildState(graph=DataflowGraph.load(path))
    except Exception as exc:  # a damaged or foreign file where a step's graph should be
        raise UserError(f"cannot resume at step {where!r}: {path} is not a readable graph "
                        f"({type(exc).__name__})") from None


def resume_state(ctx: StepContext, steps, step_index: int) -> BuildState:
    """Load what the steps before `step_index` (0-based) saved in the build directory, and
    check every loaded artefact against the graph it resumes from."""
    out, name = ctx.out, steps[step_index].name
    prev = [p for i, p in sorted(saved_steps(out, steps).items()) if i <= step_index]
    if not prev:
        raise UserError(f"cannot resume at step {name!r}: {out / 'steps'} has no graph from an earlier step")
    st = _load_step_graph(prev[-1], name)
    st.torch_model = torch_model_for(ctx.cfg.model)
    names = step_names(steps)
    if "verify" in names and step_index > names.index("verify"):
        st.verification = _resume_verification(ctx, st.graph, name, step_index, names)
        _resume_rtl(ctx, st.graph)
    return st


def _resume_verification(ctx: StepContext, graph: DataflowGraph, name: str, step_index: int,
                         names: list[str]) -> Verification | None:
    """The steps after verify read its record: only one made for this graph and these sources."""
    out = ctx.out
    rec, why = load_record(out)
    if why is None:
        why = record_mismatch(rec, graph, out)
    if why is None:
        return Verification(rec)
    if ctx.cfg.unverified:
        ctx.log(f"no verification for this design ({why}); --unverified goes on without one")
        return None
    if ctx.cfg.board is not None and "board" in names and step_index <= names.index("board"):
        verification_gate(graph, out)  # the gate's own refusal
    raise UserError(f"cannot resume at step {name!r}: {why}; run the build from the verify step "
                    "(--from-step verify)")


def _resume_rtl(ctx: StepContext, graph: DataflowGraph) -> None:
    """rtl/ must be what the graph renders to; otherwise the rtl step is redone."""
    rtl = ctx.out / "rtl"
    with tempfile.TemporaryDirectory(prefix="bnnflow-rtl-") as tmp:
        generate_rtl(graph, Path(tmp))
        fresh = source_digests(Path(tmp))
    if source_digests(rtl) != fresh:
        ctx.log(f"{rtl} does not match the graph it resumes from: regenerating it")
        builddir.remove_owned(ctx.out, "rtl")
        generate_rtl(graph, rtl)


def build(cfg: BuildConfig, steps: tuple[Step, ...] = STEPS) -> dict:
    """Run the steps (from cfg.from_step, up to cfg.to_step); return the report dict. The
    build directory is checked (never `/`, the home directory, the checkout; a foreign
    folder only with --force), claimed (its marker lists what the build owns) and locked
    for the duration."""
    cfg.out = builddir.check_out_path(cfg.out)
    start, stop = _check_config(cfg, steps)
    builddir.refuse_if_locked(cfg.out)
    if start and not builddir.is_build_dir(cfg.out):
        raise UserError(f"cannot resume at step {cfg.from_step!r}: {cfg.out} is not a bnnflow build directory "
                        f"(no {builddir.MARKER})")
    builddir.claim(cfg.out, cfg.force)
    with builddir.locked(cfg.out):  # the manifest keeps every path a build, run or verify may write
        return _run_steps(StepContext(cfg), steps, start, stop)


def _step_index(steps, name: str | None, option: str, default: int) -> int:
    names = step_names(steps)
    if name is None:
        return default
    if name not in names:
        raise UserError(f"unknown step {name!r} for {option}; steps: {', '.join(names)}")
    return names.index(name)


def _check_config(cfg: BuildConfig, steps) -> tuple[int, int]:
    """Refuse inconsistent options before anything is written; return the first and the
    last step to run (0-based)."""
    if cfg.board is not None:
        board = load_board(cfg.board)  # an unknown board or a malformed board file stops here
        check_clock(board, cfg.clock_mhz)  # the oscillator's clock, else one the board's PLL makes
    if cfg.verify_images < 1:
        raise UserError(f"--verify-images must be at least 1, got {cfg.verify_images}")
    chosen = [k for k in ("target_fps", "target_cycles", "folding", "lut_budget") if getattr(cfg, k) is not None]
    if len(chosen) > 1:
        raise UserError(f"choose one folding goal, not {' and '.join(chosen)} (target_fps, target_cycles, folding "
                        "or lut_budget)")
    cfg.cycles_target()  # validate early
    start = _step_index(steps, cfg.from_step, "--from-step", 0)
    stop = _step_index(steps, cfg.to_step, "--to-step", len(steps) - 1)
    if stop < start:
        raise UserError(f"--to-step {cfg.to_step} comes before --from-step {cfg.from_step}; "
                        f"steps: {', '.join(step_names(steps))}")
    return start, stop


def _clear_outputs(out: Path, steps, start: int) -> None:
    """Remove what the steps from `start` on wrote in an earlier run (only paths the marker
    lists), so nothing of that run is mistaken for this one's."""
    for i, step in enumerate(steps[start:], start=start + 1):
        for top in step.outputs:
            builddir.remove_owned(out, top)
        stale = out / "steps" / f"{i:02d}_{step.name}.onnx"
        if step.saves_graph and stale.is_file() and "steps" in builddir.owned_paths(out):
            stale.unlink()


def _run_steps(ctx: StepContext, steps, start: int, stop: int) -> dict:
    out = ctx.out
    for name in RUN_OUTPUTS:  # never leave an old build marked complete
        builddir.remove_owned(out, name)
    st = resume_state(ctx, steps, start) if start else BuildState()
    _clear_outputs(out, steps, start)
    for i, step in enumerate(steps[start:stop + 1], start=start + 1):
        ctx.log(f"step {i}/{len(steps)}: {step.name}")
        st = step.run(ctx, st)
        graph = st.graph if st.graph is not None else st.qonnx
        if step.check is not None and st.graph is not None:
            step.check(st.graph)
        if step.saves_graph and graph is not None:
            (out / "steps").mkdir(parents=True, exist_ok=True)
            save_graph(graph, out / "steps" / f"{i:02d}_{step.name}.onnx")
    if stop < len(steps) - 1:
        ctx.log(f"stopped after step {steps[stop].name} (--to-step); report: {out / 'report.json'}")
        return write_stopped_report(ctx, st, steps[stop].name)
    ctx.log(f"report: {out / 'report.json'}")
    return read_report(out)


def load_build(build_dir: Path) -> DataflowGraph:
    build_dir = Path(build_dir)
    path = build_dir / "dataflow.onnx"
    if not path.is_file():
        raise UserError(f"{build_dir} is not a bnnflow build directory (no dataflow.onnx); run `bnnflow build` first")
    return load_dataflow(path)


FINISHED = ("complete", "unverified")


def stale_reason(build_dir: Path, graph: DataflowGraph) -> str | None:
    """Why BUILD/dataflow.onnx is not the graph of a finished build (None when it is):
    report.json must be there, finished, and describe this very graph."""
    rep = read_report(build_dir)
    if not rep:
        return "belongs to no finished build (no report.json: the build that wrote it did not finish)"
    if rep.get("graph_hash") != graph.fingerprint():
        return "is not the graph report.json describes (it was left by another build)"
    if rep.get("status") not in FINISHED:
        return f"belongs to a build whose status is {rep.get('status')!r}, not complete"
    return None


def read_report(build_dir: Path) -> dict:
    p = Path(build_dir) / "report.json"
    try:
        rep = json.loads(p.read_text()) if p.is_file() else {}
    except (OSError, ValueError, RecursionError):
        return {}
    return rep if isinstance(rep, dict) else {}


